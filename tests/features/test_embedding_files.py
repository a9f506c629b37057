"""`poseembroider embed`: files of raw inputs -> one safetensors file with ids; the same vectors as the Python API,
resumable after a kill, refusing bad inputs before the model loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from poseembroider.cli import main as cli_main
from poseembroider.features import embedding_files
from poseembroider.features.embedding_files import EmbeddingJobError, embed_to_file, read_embeddings, read_inputs
from poseembroider.representation import Representation
from tiny_models import make_core_models

TEXTS = ["the person kneels on the floor", "someone sits on a chair", "both arms are raised", "a deep squat", "leaning"]
N = len(TEXTS)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("embed")
    models = make_core_models(folder / "models", TEXTS * 3)
    images = folder / "images"
    (images / "sub").mkdir(parents=True)
    generator = np.random.default_rng(0)
    for i in range(N):
        target = images / ("sub" if i % 2 else "") / f"person_{i}.png"
        Image.fromarray(generator.integers(0, 256, size=(64 + 4 * i, 48, 3), dtype=np.uint8)).save(target)
    (images / "notes.txt").write_text("not an image")
    poses = folder / "poses.npz"
    np.savez(
        poses,
        poses=generator.normal(0, 0.3, size=(N, 52, 3)).astype(np.float32),
        ids=np.array([f"p{i}" for i in range(N)]),
    )
    texts = folder / "texts.txt"
    texts.write_text("\n".join([TEXTS[0], "", *TEXTS[1:]]) + "\n", encoding="utf-8")
    return {"models": models, "images": images, "poses": poses, "texts": texts, "dir": folder}


def test_inputs_are_read_with_their_ids(files):
    inputs = read_inputs(str(files["images"]), str(files["poses"]), str(files["texts"]))
    assert inputs.modalities == ("image", "pose", "text")
    assert inputs.ids["image"] == [
        "person_0.png",
        "person_2.png",
        "person_4.png",
        "sub/person_1.png",
        "sub/person_3.png",
    ]
    assert inputs.ids["pose"] == [f"p{i}" for i in range(N)]
    assert inputs.ids["text"] == ["1", "3", "4", "5", "6"]  # the empty line 2 is skipped
    glob = read_inputs(images=str(files["images"] / "sub" / "*.png"))
    assert glob.ids["image"] == ["person_1.png", "person_3.png"]


def test_the_file_holds_the_api_vectors_and_ids(files, tmp_path):
    rep = Representation.from_pretrained(files["models"]["PoseEmbroider"])
    inputs = read_inputs(poses=str(files["poses"]), texts=str(files["texts"]))
    out = embed_to_file(rep, "tiny", inputs, tmp_path / "emb.safetensors", chunk_size=2, progress=False)
    read = read_embeddings(out)
    assert set(read.tensors) == {"pose", "pose_xbar", "text", "text_xbar"}
    torch.testing.assert_close(read.tensors["text"], rep.embed_texts(TEXTS), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        read.tensors["pose_xbar"], rep.represent(poses=inputs.items["pose"]), atol=1e-5, rtol=1e-4
    )
    assert read.ids == inputs.ids and read.metadata["model"] == "tiny" and read.metadata["combine"] is False
    assert not (tmp_path / "emb.safetensors.partial").exists()


def test_combine_writes_the_joint_representation(files, tmp_path):
    rep = Representation.from_pretrained(files["models"]["Aligner"])
    inputs = read_inputs(poses=str(files["poses"]), texts=str(files["texts"]))
    out = embed_to_file(rep, "tiny", inputs, tmp_path / "joint.safetensors", combine=True, progress=False)
    tensors = load_file(str(out))
    assert set(tensors) == {"xbar"}
    expected = rep.represent(poses=inputs.items["pose"], texts=TEXTS)
    torch.testing.assert_close(tensors["xbar"], expected, atol=1e-5, rtol=1e-4)
    with pytest.raises(EmbeddingJobError, match="--combine needs as many items of each input"):
        uneven = read_inputs(images=str(files["images"] / "sub" / "*.png"), texts=str(files["texts"]))
        embed_to_file(rep, "tiny", uneven, tmp_path / "uneven.safetensors", combine=True, progress=False)


def test_a_killed_run_resumes_and_ends_with_the_same_file(files, tmp_path, monkeypatch):
    rep = Representation.from_pretrained(files["models"]["PoseEmbroider"])
    inputs = read_inputs(texts=str(files["texts"]))
    reference = read_embeddings(
        embed_to_file(rep, "tiny", inputs, tmp_path / "ref.safetensors", chunk_size=2, progress=False)
    )

    calls = {"n": 0}
    real = embedding_files._chunk_outputs

    def dies_on_the_second_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(embedding_files, "_chunk_outputs", dies_on_the_second_chunk)
    out = tmp_path / "run.safetensors"
    with pytest.raises(KeyboardInterrupt):
        embed_to_file(rep, "tiny", inputs, out, chunk_size=2, progress=False)
    assert not out.exists() and sorted(p.name for p in (tmp_path / "run.safetensors.partial").iterdir()) == [
        "chunk_000000.safetensors",
        "manifest.json",
    ]
    calls["n"] = 0
    monkeypatch.setattr(
        embedding_files, "_chunk_outputs", lambda *a, **k: (calls.__setitem__("n", calls["n"] + 1), real(*a, **k))[1]
    )
    resumed = read_embeddings(embed_to_file(rep, "tiny", inputs, out, chunk_size=2, progress=False))
    assert calls["n"] == 2  # chunks 1 and 2 only: chunk 0 was reused
    for key, tensor in reference.tensors.items():
        torch.testing.assert_close(resumed.tensors[key], tensor)
    assert resumed.ids == reference.ids


def test_a_partial_folder_of_another_job_is_refused(files, tmp_path):
    rep = Representation.from_pretrained(files["models"]["PoseEmbroider"])
    out = tmp_path / "emb.safetensors"
    partial = tmp_path / "emb.safetensors.partial"
    partial.mkdir()
    (partial / "manifest.json").write_text(json.dumps({"model": "another", "chunk_size": 7}))
    inputs = read_inputs(texts=str(files["texts"]))
    with pytest.raises(
        EmbeddingJobError, match=r"emb\.safetensors\.partial holds the chunks of another job .*chunk_size"
    ):
        embed_to_file(rep, "tiny", inputs, out, progress=False)
    assert embed_to_file(rep, "tiny", inputs, out, overwrite=True, progress=False).is_file()


# ---------------------------------------------------------------------------------------------- the command


def test_the_command_writes_the_file(files, tmp_path, capsys):
    out = tmp_path / "cli.safetensors"
    argv = [
        "embed",
        "--model",
        str(files["models"]["PoseEmbroider"]),
        "--images",
        str(files["images"]),
        "--out",
        str(out),
    ]
    assert cli_main([*argv, "--no-progress"]) == 0
    assert f"wrote {out} (5 image)" in capsys.readouterr().out
    read = read_embeddings(out)
    assert read.tensors["image"].shape == (N, 16) and len(read.ids["image"]) == N
    assert cli_main([*argv, "--no-progress"]) == 2
    assert "the file exists (use --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--texts", "{dir}/missing.txt"], r"--texts .*missing\.txt: no such file"),
        (["--poses", "{dir}/texts.txt"], r"--poses .*texts\.txt is not a pose file: not an \.npz archive"),
        (["--images", "{dir}/no_such_folder"], r"--images .*no_such_folder: neither a folder nor a glob"),
        (["--images", "{dir}/*.jpg"], r"no image file"),
        ([], r"give at least one of --images, --poses, --texts"),
        (
            ["--texts", "{dir}/texts.txt", "--out", "{dir}/out.npz"],
            r"--out .*out\.npz: the output file must end in \.safetensors",
        ),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(files, capsys, monkeypatch, flags, message):
    monkeypatch.setattr(Representation, "from_pretrained", lambda *a, **k: pytest.fail("model loaded before the check"))
    words = [w.format(dir=files["dir"]) for w in flags]
    if "--out" not in words:
        words += ["--out", str(files["dir"] / "never.safetensors")]
    assert cli_main(["embed", "--model", "whatever", *words]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err), err


def test_unknown_model_shortname_is_named(files, capsys):
    out = files["dir"] / "x.safetensors"
    assert cli_main(["embed", "--model", "no_such_shortname", "--texts", str(files["texts"]), "--out", str(out)]) == 2
    assert "no_such_shortname" in capsys.readouterr().err and not out.exists()
