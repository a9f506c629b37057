"""Safetensors files whose header lies, at every place the toolkit reads one; `.npy` headers that lie, in the
feature stores.

The lies (`reliability_hostile.lying_safetensors`): a header length past the end of the file, of 2**63 - 1, over
the 100 MB cap; offsets beyond the file, overlapping or reversed; a shape larger than its bytes or whose size
overflows; a negative dimension; a dtype that disagrees with the byte count or is unknown; a header that is a
pickle or a JSON list; non-string metadata; truncated data; a 3-byte and an empty file; and, for state dicts,
tied-weight metadata that is not JSON, not a mapping, points nowhere or shadows a stored tensor. Each reader
must refuse with an error naming the file, without a large allocation: the slow test runs every case in a
child process whose address space is capped 1.5 GB above what it uses after the imports, and adds a header
of 101 MB of real JSON (over safetensors' cap). Read sites: `models.pretrained.load_state_dict_file` (and
through it every model folder, `load_pretrained`), SMPLer-X weights converted to safetensors, embedding files
of `poseembroider embed` and the chunks an interrupted embed job resumes from, text-backbone folders.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from reliability_hostile import lying_npy, lying_safetensors, safetensors_bytes, safetensors_parts

TESTS = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _valid_parts() -> tuple[dict, bytes]:
    return safetensors_parts({"a.weight": torch.arange(12.0).reshape(4, 3), "b.bias": torch.ones(2)})


def _tied_lies() -> dict[str, bytes]:
    """State-dict files whose tied-weight metadata (`poseembroider.tied`) lies."""
    header, body = _valid_parts()
    lies = {
        "tied metadata not JSON": "{not json",
        "tied metadata a list": json.dumps(["a.weight", "b.bias"]),
        "tied metadata maps to a list": json.dumps({"c": ["a.weight"]}),
        "tied weight pointing nowhere": json.dumps({"c": "missing.weight"}),
        "tied weight shadowing a stored tensor": json.dumps({"b.bias": "a.weight"}),
    }
    return {
        name: safetensors_bytes({**header, "__metadata__": {"poseembroider.tied": v}}, body) for name, v in lies.items()
    }


def _read_state_dict(path: Path) -> Any:
    from poseembroider.models.pretrained import load_state_dict_file

    return load_state_dict_file(path)


def _model_folder(path: Path) -> Any:
    """`load_pretrained` of a saved model folder whose model.safetensors is `path`'s content."""
    sys.path.insert(0, str(TESTS / "training"))
    from toy_contrastive import make_model

    from poseembroider.models.pretrained import load_pretrained

    folder = path.parent / "model"
    make_model(0).save_pretrained(folder)
    shutil.copyfile(path, folder / "model.safetensors")
    return load_pretrained(folder)


def _smplerx(path: Path) -> Any:
    from poseembroider.assisting_models.imageEncoder.smplerx_weights import read_smplerx_network

    return read_smplerx_network(path)


def _embeddings(path: Path) -> Any:
    from poseembroider.features.embedding_files import read_embeddings

    return read_embeddings(path)


def _embed_resume(path: Path) -> Any:
    """The assembly of an interrupted embed job whose one finished chunk is `path`."""
    from poseembroider.features.embedding_files import EmbeddingInputs, _assemble

    return _assemble(path.parent, 1, path.parent.parent / "out.safetensors", {}, EmbeddingInputs())


def _text_backbone(path: Path, distilbert: Path) -> Any:
    from poseembroider.assisting_models.textBackbone.model_textBackbone import load_distilbert

    folder = path.parent / "distilbert"
    shutil.copytree(distilbert, folder)
    shutil.copyfile(path, folder / "model.safetensors")
    return load_distilbert(folder)


SITES: dict[str, tuple[str, Callable[..., Any], Callable[[Path], Path]]] = {
    # name: (file name, reader, the file the error must name)
    "state dict (load_state_dict_file)": ("model.safetensors", _read_state_dict, lambda p: p),
    "model folder (load_pretrained)": (
        "w.safetensors",
        _model_folder,
        lambda p: p.parent / "model" / "model.safetensors",
    ),
    "SMPLer-X weights (.safetensors)": ("smpler_x_b32.safetensors", _smplerx, lambda p: p),
    "embedding file (read_embeddings)": ("embeddings.safetensors", _embeddings, lambda p: p),
    "embed job resumed from its chunks": ("chunk_000000.safetensors", _embed_resume, lambda p: p),
    "text backbone folder": ("w.safetensors", _text_backbone, lambda p: p.parent / "distilbert" / "model.safetensors"),
}


def _cases(site: str) -> dict[str, bytes]:
    cases = lying_safetensors(*_valid_parts())
    del cases["header of 101 MB of JSON"]  # 101 MB to write per site: in the slow test
    if site in ("state dict (load_state_dict_file)", "model folder (load_pretrained)"):
        cases.update(_tied_lies())
    return cases


@pytest.mark.parametrize("site", list(SITES))
@pytest.mark.reliability(area="hostile_files", subject="lying safetensors headers at every safetensors reader")
def test_a_lying_safetensors_header_is_refused_naming_the_file(site, tmp_path, cases, fake_distilbert_dir):
    file_name, read, named = SITES[site]
    extra = (fake_distilbert_dir,) if site == "text backbone folder" else ()
    for k, (name, data) in enumerate(_cases(site).items()):
        folder = tmp_path / f"case_{k}"
        folder.mkdir()
        path = folder / file_name
        path.write_bytes(data)
        cases.tried()
        with pytest.raises(Exception) as err:  # noqa: PT011 - any refusal, checked below to name the file
            read(path, *extra)
        message = str(err.value)
        assert str(named(path)) in message, f"{site}: {name}: {type(err.value).__name__}: {message[:400]}"
        assert not isinstance(err.value, MemoryError), f"{site}: {name}: {message[:200]}"


_CHILD = textwrap.dedent(
    """
    import resource, sys, json, torch
    sys.path[:0] = {paths!r}
    torch.set_num_threads(1)
    import test_hostile_safetensors as t
    from pathlib import Path
    for site in t.SITES: t.SITES[site][1]  # imports done below, before the cap
    from poseembroider.models.pretrained import load_pretrained  # noqa
    from poseembroider.features.embedding_files import read_embeddings  # noqa
    from poseembroider.assisting_models.textBackbone.model_textBackbone import load_distilbert  # noqa
    import transformers  # noqa
    from transformers import DistilBertModel  # noqa
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + 1536 * 2**20, resource.RLIM_INFINITY))
    try:  # the control: the cap does bite
        bytearray(2 * 2**30)
        results = [["control", "2 GB", "allocated under the cap", ""]]
    except MemoryError:
        results = []
    for site, (file_name, read, named) in t.SITES.items():
        for case in sorted(Path({root!r}).glob(site.replace("/", "_") + "/*")):
            path = case / file_name
            extra = (Path({distilbert!r}),) if site == "text backbone folder" else ()
            try:
                read(path, *extra)
                results.append([site, case.name, "no error", ""])
            except MemoryError as err:
                results.append([site, case.name, "MemoryError", str(err)[:200]])
            except Exception as err:
                named_it = "named" if str(named(path)) in str(err) else "unnamed"
                results.append([site, case.name, named_it, str(err)[:300]])
    print(json.dumps(results))
    """
)


def _write_101_mb_header(path: Path) -> None:
    with path.open("wb") as f:
        prefix, suffix = b'{"__metadata__": {"x": "', b'"}}'
        size = 101 * 2**20
        f.write(safetensors_bytes(b"", b"", length=len(prefix) + size + len(suffix)))
        f.write(prefix)
        for _ in range(101):
            f.write(b"a" * 2**20)
        f.write(suffix)


@pytest.mark.slow
@pytest.mark.reliability(area="hostile_files", subject="lying safetensors headers under a 1.5 GB address-space cap")
def test_no_lying_header_makes_a_reader_allocate(tmp_path, cases, fake_distilbert_dir):
    for site, (file_name, _, _) in SITES.items():
        for k, data in enumerate(_cases(site).values()):
            folder = tmp_path / site.replace("/", "_") / f"case_{k:02d}"
            folder.mkdir(parents=True)
            (folder / file_name).write_bytes(data)
            cases.tried()
        folder = tmp_path / site.replace("/", "_") / "case_big"
        folder.mkdir()
        _write_101_mb_header(folder / file_name)
        cases.tried()
    paths = [str(Path(__file__).parent), str(TESTS)]
    code = _CHILD.format(paths=paths, root=str(tmp_path), distilbert=str(fake_distilbert_dir))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(results) == cases.count
    bad = [r for r in results if r[2] != "named"]
    assert not bad, bad[:5]


# ------------------------------------------------------------------------------------------- feature stores


def _store(folder: Path) -> Path:
    from poseembroider.features.store import FeatureStoreWriter, FieldSpec

    directory = folder / "store"
    writer = FeatureStoreWriter(directory, [3, 5], [FieldSpec("pose", (4,), "float32")], {"model": "m"})
    for start, stop in writer.pending_chunks():
        writer.write_chunk(start, stop, {"pose": np.zeros((stop - start, 4), np.float32)})
    writer.finalize()
    return directory


def _npy_lies() -> dict[str, tuple[str, bytes, int | None]]:
    """name -> (member of the store, its bytes, num_items written into meta.json or None to keep 2)."""
    return {
        "ids of 10**12 rows in 16 bytes": ("data_ids.npy", lying_npy((10**12,)), None),
        "ids of 10**12 rows, meta.json agreeing": ("data_ids.npy", lying_npy((10**12,)), 10**12),
        "ids whose size overflows": ("data_ids.npy", lying_npy((2**62,)), None),
        "ids with a negative dimension": ("data_ids.npy", lying_npy((-5,)), None),
        "ids of an object dtype": ("data_ids.npy", lying_npy((2,), "|O"), None),
        "field of 10**12 rows": ("pose.npy", lying_npy((10**12, 4), "<f4"), None),
        "field of 10**12 rows, meta.json agreeing": ("pose.npy", lying_npy((10**12, 4), "<f4"), 10**12),
        "field with a negative dimension": ("pose.npy", lying_npy((2, -4), "<f4"), None),
        "field of an object dtype": ("pose.npy", lying_npy((2, 4), "|O"), None),
        "field header cut short": ("pose.npy", lying_npy((2, 4), "<f4")[:20], None),
        "not an npy header at all": ("pose.npy", b"\x93NUMPY\x09\x00garbage", None),
    }


@pytest.mark.reliability(area="hostile_files", subject="lying .npy headers in a feature store")
def test_a_feature_store_with_a_lying_npy_header_is_refused_naming_the_file(tmp_path, cases):
    from poseembroider.features.store import FeatureStore

    for k, (name, (member, data, num_items)) in enumerate(_npy_lies().items()):
        directory = _store(tmp_path / f"case_{k}")
        (directory / member).write_bytes(data)
        if num_items is not None:
            meta = json.loads((directory / "meta.json").read_text())
            (directory / "meta.json").write_text(json.dumps({**meta, "num_items": num_items}))
        cases.tried()
        with pytest.raises(Exception) as err:  # noqa: PT011 - checked below
            FeatureStore.open(directory, {"model": "m"})
        message = str(err.value)
        assert str(directory) in message and not isinstance(err.value, MemoryError), f"{name}: {message[:300]}"
