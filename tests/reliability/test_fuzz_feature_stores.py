"""Bad inputs, feature stores and x̄ caches: `FeatureStore.open` (frozen-feature caches, x̄ caches) answers a
damaged store (junk or edited `meta.json`, truncated or reshaped `.npy` files, ids of the wrong dtype) with a
`FeatureCacheError` naming the folder and the file, field or key, never a raw KeyError / TypeError / numpy
error; a store it opens serves rows of the shapes its manifest states."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from reliability_strategies import (
    FUZZ,
    FUZZ_SLOW,
    IDENTIFIERS,
    JSON_VALUES,
    JUNK_BYTES,
    JUNK_JSON_TEXT,
    damaged,
    expect_clear_error,
    fuzz,
    odd_arrays,
)

from poseembroider.features.store import META_NAME, FeatureStore, FeatureStoreWriter, FieldSpec

N = 5
FIELDS = (FieldSpec("pose", (4,)), FieldSpec("image_tokens", (2, 3), "float16"))


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz_store") / "store"
    writer = FeatureStoreWriter(directory, np.arange(10, 10 + N), FIELDS, {"model": "m@1"}, chunk_size=2)
    for start, stop in writer.pending_chunks():
        writer.write_chunk(start, stop, {f.name: np.ones((stop - start, *f.shape)) for f in FIELDS})
    return writer.finalize()


def _copy(store_dir, tmp_path):
    target = tmp_path / "store"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(store_dir, target)
    return target


def _open_and_read(directory):
    def call():
        store = FeatureStore.open(directory)
        for name, spec in store.fields.items():
            rows = store.get(name, np.arange(len(store)))
            assert tuple(rows.shape) == (len(store), *spec.shape), name
        store.positions_of(store.data_ids)
        return store

    return expect_clear_error(call, [str(directory)], "FeatureStore.open")


@st.composite
def meta_edits(draw, meta: dict):
    """meta.json with a key (top level, a field entry, the fingerprint) removed or set to another value."""
    data = json.loads(json.dumps(meta))
    for _ in range(draw(st.integers(1, 2))):
        places = [data]
        if isinstance(data.get("fields"), list):
            places += [f for f in data["fields"] if isinstance(f, dict)]
        if isinstance(data.get("fingerprint"), dict):
            places.append(data["fingerprint"])
        target = draw(st.sampled_from(places))
        key = draw(st.one_of(st.sampled_from(sorted(target) or ["x"]), IDENTIFIERS))
        if draw(st.integers(0, 3)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(
                st.one_of(JSON_VALUES, st.integers(-3, 12), st.sampled_from(["float64", "int8", [2, 3], [0], [-1]]))
            )
    return data


def _files(store_dir) -> st.SearchStrategy:
    """One file of the store replaced by junk, a damaged copy, or another array."""
    names = sorted(p.name for p in store_dir.iterdir() if p.suffix == ".npy")
    return st.tuples(
        st.sampled_from(names),
        st.one_of(
            JUNK_BYTES,
            st.builds(lambda b: b, st.sampled_from(names)).flatmap(lambda n: damaged((store_dir / n).read_bytes())),
            odd_arrays(
                shapes=st.sampled_from([(N,), (N, 4), (N, 2, 3), (N - 1, 4), (N + 1,), (0,), (), (N, 3)]),
            ).map(_npy_bytes),
        ),
    )


def _npy_bytes(array) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _fuzz_meta(store_dir, tmp_path, cases, text):
    cases.tried()
    directory = _copy(store_dir, tmp_path)
    (directory / META_NAME).write_text(text)
    _open_and_read(directory)


def _fuzz_file(store_dir, tmp_path, cases, edit):
    name, data = edit
    cases.tried()
    directory = _copy(store_dir, tmp_path)
    (directory / name).write_bytes(data)
    _open_and_read(directory)


def _meta_texts(store_dir):
    meta = json.loads((store_dir / META_NAME).read_text())
    return st.one_of(JUNK_JSON_TEXT, meta_edits(meta).map(json.dumps))


@pytest.mark.reliability(area="bad_inputs", subject="feature stores (meta.json)")
def test_store_meta(store_dir, tmp_path, cases):
    @FUZZ
    @given(text=_meta_texts(store_dir))
    def run(text):
        _fuzz_meta(store_dir, tmp_path, cases, text)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="feature stores (meta.json)")
def test_store_meta_many(store_dir, tmp_path, cases):
    @FUZZ_SLOW
    @given(text=_meta_texts(store_dir))
    def run(text):
        _fuzz_meta(store_dir, tmp_path, cases, text)

    run()


@pytest.mark.reliability(area="bad_inputs", subject="feature stores (.npy files: truncated, reshaped, retyped)")
def test_store_files(store_dir, tmp_path, cases):
    @FUZZ
    @given(edit=_files(store_dir))
    def run(edit):
        _fuzz_file(store_dir, tmp_path, cases, edit)

    run()
    cases.tried()  # a field file that is missing
    directory = _copy(store_dir, tmp_path)
    (directory / "pose.npy").unlink()
    _open_and_read(directory)


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="feature stores (.npy files: truncated, reshaped, retyped)")
def test_store_files_many(store_dir, tmp_path, cases):
    @FUZZ_SLOW
    @given(edit=_files(store_dir))
    def run(edit):
        _fuzz_file(store_dir, tmp_path, cases, edit)

    run()


# --------------------------------------------------------------------------- x̄ caches

XBAR_FIELD_NAMES = st.sampled_from(["xbar", "A", "B", "pose", "xbar_A"])
xbar_layouts = st.lists(
    st.tuples(XBAR_FIELD_NAMES, st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple)),
    min_size=1,
    max_size=3,
    unique_by=lambda field: field[0],
)


def _fuzz_xbar(tmp_path, cases, layout, count):
    """A store of any fields read as an x̄ cache (`IntermodalityFeatures`, what `open_intermodality_features`
    returns once the fingerprint matches): refused naming the folder, or served with consistent shapes."""
    from poseembroider.features.intermodality import IntermodalityFeatures

    cases.tried()
    directory = tmp_path / f"xbar_{cases.count}"
    fields = [FieldSpec(name, shape) for name, shape in layout]
    writer = FeatureStoreWriter(directory, np.arange(count), fields, {"model": "m@1"}, chunk_size=count)
    writer.write_chunk(0, count, {f.name: np.zeros((count, *f.shape)) for f in fields})
    store = FeatureStore.open(writer.finalize())

    def call():
        features = IntermodalityFeatures(store, "synthscript-x", "val", ("poses",))
        for side in features.sides or (None,):
            assert tuple(features.features(side).shape) == (count, features.dim)
            assert tuple(features.rows(np.arange(count)[::-1], side).shape) == (count, features.dim)
        return features

    expect_clear_error(call, [str(directory)], "IntermodalityFeatures")


@pytest.mark.reliability(area="bad_inputs", subject="x̄ caches (fields and shapes)")
def test_xbar_cache_fields(tmp_path, cases):
    @fuzz(12)  # each example writes a store (fsync per chunk): 0.25 s
    @given(layout=xbar_layouts, count=st.integers(1, 3))
    def run(layout, count):
        _fuzz_xbar(tmp_path, cases, layout, count)

    run()


@pytest.mark.slow
@pytest.mark.reliability(area="bad_inputs", subject="x̄ caches (fields and shapes)")
def test_xbar_cache_fields_many(tmp_path, cases):
    @FUZZ_SLOW
    @given(layout=xbar_layouts, count=st.integers(1, 3))
    def run(layout, count):
        _fuzz_xbar(tmp_path, cases, layout, count)

    run()
