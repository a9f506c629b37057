"""Bad inputs, images and text files: image files (random bytes, truncated or damaged PNG / JPEG, odd modes and
sizes) read by the datasets, `embed --images` and the Python API, and text files (empty, binary, other
encodings, huge lines) read by `embed --texts` and `--corpus`: an RGB image / a list of texts, or an error
naming the file (and the line), never a raw PIL or codec error. Uploads in the demos are the uploads tests'."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from reliability_strategies import FUZZ, FUZZ_SLOW, JUNK_BYTES, damaged, expect_clear_error

from poseembroider.datasets.image_processing import image_size, load_image
from poseembroider.representation import _image_tensor
from poseembroider.text.text_files import MAX_LINE_CHARS, read_text_lines


def _encoded(mode: str, size: tuple[int, int], fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=7 if mode in ("L", "P", "1", "I", "I;16") else None).save(buffer, fmt)
    return buffer.getvalue()


VALID_IMAGES = [_encoded("RGB", (12, 9), "PNG"), _encoded("RGB", (12, 9), "JPEG"), _encoded("L", (5, 3), "PNG")]
ODD_IMAGES = st.sampled_from(
    [
        _encoded("RGBA", (4, 4), "PNG"),
        _encoded("P", (3, 2), "PNG"),
        _encoded("I;16", (3, 2), "PNG"),
        _encoded("1", (9, 1), "PNG"),
        _encoded("RGB", (1, 1), "JPEG"),
        _encoded("CMYK", (2, 2), "JPEG"),
        _encoded("RGB", (3, 3), "BMP"),
        _encoded("RGB", (3, 3), "WEBP"),
        _encoded("RGB", (3, 3), "GIF"),
    ]
)
image_bytes = st.one_of(JUNK_BYTES, ODD_IMAGES, st.sampled_from(VALID_IMAGES).flatmap(damaged))


def _fuzz_image(tmp_path, cases, data, suffix):
    cases.tried()
    path = tmp_path / f"image{suffix}"
    path.write_bytes(data)

    def read():
        image = load_image(path)
        assert image.mode == "RGB" and image.width >= 1 and image.height >= 1
        tensor = _image_tensor(path, 0)  # the Python API's and `embed --images`' reader
        assert tensor.dtype == torch.uint8 and tensor.shape[0] == 3
        assert image_size(path) == (image.width, image.height)  # the header read of the 2D-keypoint items

    expect_clear_error(read, [str(path)], "image file")


@pytest.mark.reliability(area="bad_inputs", subject="image files (random, truncated, odd modes)")
def test_image_files(tmp_path, cases):
    @FUZZ
    @given(data=image_bytes, suffix=st.sampled_from([".png", ".jpg", ".webp"]))
    def run(data, suffix):
        _fuzz_image(tmp_path, cases, data, suffix)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="image files (random, truncated, odd modes)")
def test_image_files_many(tmp_path, cases):
    @FUZZ_SLOW
    @given(data=image_bytes, suffix=st.sampled_from([".png", ".jpg", ".webp"]))
    def run(data, suffix):
        _fuzz_image(tmp_path, cases, data, suffix)

    run()


array_images = hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.float32, np.int64, np.bool_]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
)


@pytest.mark.reliability(area="bad_inputs", subject="image arrays in memory (Representation.embed_images)")
def test_image_arrays(cases):
    @FUZZ
    @given(array=array_images)
    def run(array):
        cases.tried()
        result = expect_clear_error(lambda: _image_tensor(array, 0), ["images[0]"], "image array")
        if not isinstance(result, BaseException):
            assert result.shape == (3, *array.shape[:2]) and result.dtype == torch.uint8

    run()


# --------------------------------------------------------------------------- text files

TEXT_FILES = st.one_of(
    JUNK_BYTES,
    st.text(max_size=200).map(lambda t: t.encode("utf-8")),
    st.text(alphabet="abc \n\r\t", max_size=50).map(lambda t: t.encode("utf-8")),
    st.text(max_size=40).map(lambda t: t.encode("utf-16")),
    st.sampled_from(
        [
            b"",
            b"\n\n  \n",
            "caf\xe9 au lait\n".encode("latin-1"),
            "\ufeffthe person stands\n".encode("utf-8"),
            b"line one\r\nline two\r\n",
            b"text\x00with nul\n",
            b"a" * (MAX_LINE_CHARS + 1),
            b"ok\n" + b"b" * (MAX_LINE_CHARS + 5) + b"\n",
        ]
    ),
)


def _fuzz_text(tmp_path, cases, data):
    from poseembroider.features.embedding_files import read_inputs

    cases.tried()
    path = tmp_path / "texts.txt"
    path.write_bytes(data)
    result = expect_clear_error(lambda: read_text_lines(path), [str(path)], "read_text_lines")
    if not isinstance(result, BaseException):
        texts, numbers = result
        assert texts and len(texts) == len(numbers) and all(t == t.strip() and t for t in texts)
        assert all("\0" not in t and len(t) <= MAX_LINE_CHARS for t in texts)
    inputs = expect_clear_error(lambda: read_inputs(texts=str(path)), [str(path)], "embed --texts")
    if not isinstance(inputs, BaseException):
        assert inputs.items["text"] == result[0]


@pytest.mark.reliability(area="bad_inputs", subject="text files (embed --texts, --corpus)")
def test_text_files(tmp_path, cases):
    @FUZZ
    @given(data=TEXT_FILES)
    def run(data):
        _fuzz_text(tmp_path, cases, data)

    run()
    cases.tried()  # a folder given as a text file
    expect_clear_error(lambda: read_text_lines(tmp_path), [str(tmp_path)], "a folder")


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="text files (embed --texts, --corpus)")
def test_text_files_many(tmp_path, cases):
    @FUZZ_SLOW
    @given(data=TEXT_FILES)
    def run(data):
        _fuzz_text(tmp_path, cases, data)

    run()


@pytest.mark.reliability(area="bad_inputs", subject="text files (embed --texts, --corpus)")
def test_corpus_flag_names_the_file(tmp_path, capsys, cases):
    """`poseembroider text train-tokenizer --corpus FILE` with a file of another encoding: one error line."""
    from poseembroider.cli import main

    path = tmp_path / "corpus.txt"
    path.write_bytes("the person\n".encode("utf-16"))
    cases.tried()
    assert main(["text", "train-tokenizer", "--out", str(tmp_path / "tok"), "--corpus", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "not UTF-8" in err[0], err
