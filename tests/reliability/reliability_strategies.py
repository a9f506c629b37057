"""Hypothesis strategies and the one check of the bad-input fuzz tests (`test_fuzz_*.py`).

The contract every reader of the toolkit keeps (issue 19, bad inputs): a bad file or value ends in an error
of the toolkit (a `ValueError` subclass, `FileNotFoundError`, or the registries' `UnknownModelError` and
`NoImporterError`) whose message names the file, key, shape or flag at fault, never in an error raised from
deep inside a library (`KeyError`, `TypeError`, `zipfile.BadZipFile`, `EOFError`, a `RuntimeError` of
torch...). An input that is in fact valid may be accepted: the caller then checks what came back.

`FUZZ` is the settings of the fast tests (few examples, deterministic); `FUZZ_SLOW` those of their
`@pytest.mark.slow` twins.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

SUPPRESSED = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
FUZZ = settings(derandomize=True, deadline=None, max_examples=30, suppress_health_check=SUPPRESSED, database=None)
FUZZ_SLOW = settings(FUZZ, max_examples=300)


def fuzz(max_examples: int) -> settings:
    """`FUZZ` with another number of examples."""
    return settings(FUZZ, max_examples=max_examples)


def toolkit_errors() -> tuple[type[BaseException], ...]:
    """The error types a reader may raise for bad input (each must name what is at fault)."""
    from poseembroider.compat.release_import import NoImporterError
    from poseembroider.models.pretrained import UnknownModelError

    return (ValueError, FileNotFoundError, UnknownModelError, NoImporterError)


class DeepError(AssertionError):
    """A bad input got an error of the wrong kind, or one that names nothing the user can act on."""


def expect_clear_error(call: Callable[[], Any], names: Sequence[str], what: str = "") -> Any:
    """Run `call()`; return its result, or, when it raises, check the error is a toolkit error naming one of
    `names` (a file, key, flag...) and return the exception. Anything else raises `DeepError` with the
    traceback chained, so the failing example shows where the raw error came from."""
    try:
        return call()
    except toolkit_errors() as err:
        message = str(err.args[0]) if err.args else str(err)
        if not any(str(name) in message for name in names):
            raise DeepError(
                f"{what}: {type(err).__name__} names none of {list(map(str, names))}: {message[:400]}"
            ) from err
        return err
    except Exception as err:  # noqa: BLE001 - what this check is about
        raise DeepError(f"{what}: raw {type(err).__module__}.{type(err).__name__}: {str(err)[:400]}") from err


# --------------------------------------------------------------------------- arrays

NUMERIC_DTYPES = ("float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool", "complex64")
ODD_DTYPES = ("U3", "S2", "datetime64[s]")
SPECIAL_FLOATS = (np.nan, np.inf, -np.inf, 1e30, -1e30, 1e300, 3.4e38, 0.0, -0.0, 7.0, 1e-40)


@st.composite
def odd_arrays(draw, shapes: st.SearchStrategy | None = None, dtypes: Sequence[str] = NUMERIC_DTYPES + ODD_DTYPES):
    """Arrays of any small shape (0 to 4 dims, empty ones included) and any dtype, with special float values."""
    dtype = np.dtype(draw(st.sampled_from(list(dtypes))))
    shape = draw(shapes if shapes is not None else hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6))
    if dtype.kind == "f":
        elements = st.one_of(st.sampled_from(SPECIAL_FLOATS), st.floats(-10, 10, width=32))
        values = draw(hnp.arrays(np.float64, shape, elements=elements))
        with np.errstate(over="ignore", invalid="ignore"):
            return values.astype(dtype)
    return draw(hnp.arrays(dtype, shape))


def pose_like_shapes() -> st.SearchStrategy:
    """Shapes around the accepted pose layouts (N, 22|52|55, 3), (N, 66|156|165), (N, 3), (N, 63)..."""
    n = st.integers(0, 3)
    joints = st.sampled_from([0, 1, 3, 21, 22, 23, 52, 55, 63, 66, 90, 156, 165])
    return st.one_of(
        st.tuples(n, joints, st.sampled_from([2, 3, 4])),
        st.tuples(n, joints),
        st.tuples(joints),
        st.just(()),
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4),
    )


def pose_arrays() -> st.SearchStrategy:
    """Arrays near pose layouts, mostly floats (NaN, inf, 1e30 included), sometimes of other dtypes."""
    return st.one_of(
        odd_arrays(shapes=pose_like_shapes(), dtypes=("float32", "float64", "float16")),
        odd_arrays(shapes=pose_like_shapes()),
    )


# --------------------------------------------------------------------------- bytes, text, JSON

JUNK_BYTES = st.one_of(
    st.binary(min_size=0, max_size=300),
    st.sampled_from(
        [b"", b"PK\x03\x04", b"PK\x05\x06" + b"\0" * 18, b"\x93NUMPY", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"]
    ),
)
"""Random or magic-number-only contents."""


@st.composite
def damaged(draw, original: bytes) -> bytes:
    """`original` truncated, with bytes overwritten, or with junk appended."""
    how = draw(st.sampled_from(["truncate", "overwrite", "append", "zero_tail"]))
    if how == "truncate":
        return original[: draw(st.integers(0, max(len(original) - 1, 0)))]
    if how == "append":
        return original + draw(st.binary(min_size=1, max_size=64))
    data = bytearray(original)
    if not data:
        return bytes(data)
    start = draw(st.integers(0, len(data) - 1))
    if how == "zero_tail":
        data[start:] = bytes(len(data) - start)
        return bytes(data)
    junk = draw(st.binary(min_size=1, max_size=32))
    data[start : start + len(junk)] = junk
    return bytes(data[: len(original)])


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
"""Any JSON value (NaN / inf are written by json.dumps too: see `JUNK_JSON_TEXT`)."""

JUNK_JSON_TEXT = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", "{", "[1, 2", '{"a": NaN}', '{"a": Infinity}', "null", "\ufeff{}", "{}" * 3]),
    JSON_VALUES.map(json.dumps),
)
"""Text that is often not JSON, or JSON of the wrong shape."""

TEXT_LINES = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
IDENTIFIERS = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=12)
