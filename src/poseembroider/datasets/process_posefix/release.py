"""The released json files of PoseFix and PoseScript: pair ids, splits, in/out-of-sequence lists, human texts,
and the pose id -> AMASS frame table.

Layout of the PoseFix release (`POSEFIX_DIR`, `posefix_dataset_release.zip`):

| file | content |
| --- | --- |
| `pair_id_2_pose_ids.json` | list, pair id -> [pose id A, pose id B] (all splits) |
| `{split}_{in|out}_sequence_pair_ids.json` | list of the pair ids of a split (train / val / test) of each kind |
| `posefix_human_6157.json` | {str(pair id): modifier or [modifiers]} (human-written; the `H` of `posefix-H`) |
| `posefix_paraphrases_4284.json` | {str(pair id): paraphrase or [...]} (the `PP` of `posefix-HPP` / `posefix-PP`) |
| `ids_2_dataset_sequence_and_frame_index_100k.json` | {str(pose id): ["AMASS", sequence path, frame index]} |

Layout of the PoseScript release (`POSESCRIPT_DIR`):

| file | content |
| --- | --- |
| `{split}_ids_100k.json` | list of the pose ids of a split |
| `posescript_human_6293.json` | {str(pose id): caption or [captions]} (the `H2` of `posescript-H2`) |
| `ids_2_dataset_sequence_and_frame_index_100k.json` | as above |

Every reader checks what it reads and names the file and the entry at fault.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AMASS_IDS_FILE",
    "SPLITS",
    "AmassLocation",
    "PoseFixSplit",
    "PoseScriptSplit",
    "ReleaseError",
    "read_amass_locations",
    "read_json",
    "read_posefix_split",
    "read_posescript_split",
    "text_files",
]

SPLITS = ("train", "val", "test")
PAIR_KINDS = ("in", "out")
POSEFIX_PAIRS_FILE = "pair_id_2_pose_ids.json"
POSEFIX_SPLIT_FILE = "{split}_{kind}_sequence_pair_ids.json"
POSESCRIPT_SPLIT_FILE = "{split}_ids_100k.json"
AMASS_IDS_FILE = "ids_2_dataset_sequence_and_frame_index_100k.json"

TEXT_FILES: dict[str, dict[str, str]] = {
    "posefix": {"H": "posefix_human_6157.json", "PP": "posefix_paraphrases_4284.json"},
    "posescript": {"H2": "posescript_human_6293.json"},
}
"""Text sources per family: a version is a concatenation of these tokens (`posefix-HPP` = human + paraphrases)."""


class ReleaseError(ValueError):
    """A release file that is missing, unreadable or holds an unexpected entry (named in the message)."""


def read_json(path: Path, what: str) -> Any:
    """The content of the json file `path`; errors name the file and what it should be."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ReleaseError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ReleaseError(f"{path}: not a valid json file ({err}); expected {what}") from None


def check_split(split: str, release_dir: Path, pattern: str) -> None:
    if split not in SPLITS:
        raise ReleaseError(
            f"unknown split {split!r}: the release in {release_dir} has the splits {', '.join(SPLITS)} "
            f"(files {pattern.format(split='<split>', kind='<in|out>')})"
        )


def text_files(family: str, version: str) -> list[str]:
    """The text files a version reads, in order: 'H' -> [human], 'HPP' -> [human, paraphrases], ..."""
    tokens = TEXT_FILES[family]
    files, rest = [], version
    while rest:
        token = next((t for t in sorted(tokens, key=len, reverse=True) if rest.startswith(t)), None)
        if token is None:
            known = ", ".join(f"{family}-{t}" for t in tokens)
            raise ReleaseError(f"{family}-{version}: unknown text source {rest!r}; known versions: {known}")
        files.append(tokens[token])
        rest = rest[len(token) :]
    if not files:
        raise ReleaseError(f"{family}-{version}: no text source given")
    return files


def _int_list(value: Any, path: Path, what: str) -> list[int]:
    if not isinstance(value, list) or not all(type(v) is int for v in value):
        raise ReleaseError(f"{path}: expected {what} (a list of integers), got {type(value).__name__}")
    return value


def _texts_by_id(paths: Iterable[Path], keep: set[int]) -> dict[int, list[str]]:
    """{id: texts} from text files ({str(id): text or [texts]}), only for the ids of `keep`, in file order."""
    texts: dict[int, list[str]] = {}
    for path in paths:
        annotations = read_json(path, "a text file of the release ({str(id): text or [texts]})")
        if not isinstance(annotations, dict):
            raise ReleaseError(
                f"{path}: expected a dict {{str(id): text or [texts]}}, got {type(annotations).__name__}"
            )
        for key, value in annotations.items():
            try:
                data_id = int(key)
            except ValueError:
                raise ReleaseError(f"{path}: key {key!r} is not an integer id") from None
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                raise ReleaseError(f"{path}: id {key}: expected a text or a list of texts, got {value!r}"[:300])
            if data_id in keep:
                texts.setdefault(data_id, []).extend(values)
    return texts


@dataclass
class PoseFixSplit:
    """One split of PoseFix: pairs {pair id: (pose id A, pose id B)}, kinds {pair id: 'in' | 'out'}, texts
    {pair id: [texts]} (pairs without any non-empty text are dropped, as the original: `unannotated`)."""

    split: str
    pairs: dict[int, tuple[int, int]]
    kinds: dict[int, str]
    texts: dict[int, list[str]]
    unannotated: int = 0
    files: list[str] = field(default_factory=list)

    @property
    def pose_ids(self) -> list[int]:
        """The pose ids of the split's pairs, sorted."""
        return sorted({pose for pair in self.pairs.values() for pose in pair})


def read_posefix_split(posefix_dir: Path, split: str, version: str = "H") -> PoseFixSplit:
    """The pairs, kinds and texts of `split` of `posefix-<version>` from the release in `posefix_dir`."""
    posefix_dir = Path(posefix_dir)
    check_split(split, posefix_dir, POSEFIX_SPLIT_FILE)
    names = text_files("posefix", version)
    pairs_path = posefix_dir / POSEFIX_PAIRS_FILE
    all_pairs = read_json(pairs_path, "the PoseFix pair list (pair id -> [pose id A, pose id B])")
    if not isinstance(all_pairs, list):
        raise ReleaseError(f"{pairs_path}: expected a list of [pose id A, pose id B], got {type(all_pairs).__name__}")
    kinds: dict[int, str] = {}
    for kind in PAIR_KINDS:
        path = posefix_dir / POSEFIX_SPLIT_FILE.format(split=split, kind=kind)
        for pair_id in _int_list(read_json(path, f"the {split} {kind}-sequence pair ids"), path, "pair ids"):
            if not 0 <= pair_id < len(all_pairs):
                raise ReleaseError(f"{path}: pair id {pair_id} is not in {pairs_path} ({len(all_pairs)} pairs)")
            if kinds.get(pair_id, kind) != kind:
                raise ReleaseError(f"{path}: pair id {pair_id} is listed as both in- and out-of-sequence")
            kinds[pair_id] = kind
    pairs: dict[int, tuple[int, int]] = {}
    for pair_id in sorted(kinds):
        entry = all_pairs[pair_id]
        if not (isinstance(entry, list) and len(entry) == 2 and all(type(v) is int for v in entry)):
            raise ReleaseError(f"{pairs_path}: pair {pair_id}: expected [pose id A, pose id B], got {entry!r}")
        pairs[pair_id] = (entry[0], entry[1])
    texts = _texts_by_id([posefix_dir / n for n in names], set(pairs))
    annotated = {p for p in pairs if any(t.strip() for t in texts.get(p, []))}
    result = PoseFixSplit(
        split=split,
        pairs={p: pairs[p] for p in pairs if p in annotated},
        kinds={p: kinds[p] for p in pairs if p in annotated},
        texts={p: texts[p] for p in pairs if p in annotated},
        unannotated=len(pairs) - len(annotated),
        files=[POSEFIX_PAIRS_FILE, *(POSEFIX_SPLIT_FILE.format(split=split, kind=k) for k in PAIR_KINDS), *names],
    )
    return result


@dataclass
class PoseScriptSplit:
    """One split of PoseScript: the annotated pose ids (in the split file's order) and their captions."""

    split: str
    pose_ids: list[int]
    texts: dict[int, list[str]]
    unannotated: int = 0
    files: list[str] = field(default_factory=list)


def read_posescript_split(posescript_dir: Path, split: str, version: str = "H2") -> PoseScriptSplit:
    """The annotated pose ids of `split` of `posescript-<version>` and their captions."""
    posescript_dir = Path(posescript_dir)
    check_split(split, posescript_dir, POSESCRIPT_SPLIT_FILE)
    names = text_files("posescript", version)
    path = posescript_dir / POSESCRIPT_SPLIT_FILE.format(split=split)
    pose_ids = _int_list(read_json(path, f"the PoseScript {split} pose ids"), path, "pose ids")
    texts = _texts_by_id([posescript_dir / n for n in names], set(pose_ids))
    annotated = [p for p in dict.fromkeys(pose_ids) if any(t.strip() for t in texts.get(p, []))]
    return PoseScriptSplit(
        split=split,
        pose_ids=annotated,
        texts={p: texts[p] for p in annotated},
        unannotated=len(set(pose_ids)) - len(annotated),
        files=[POSESCRIPT_SPLIT_FILE.format(split=split), *names],
    )


@dataclass(frozen=True)
class AmassLocation:
    """Where a PoseScript / PoseFix pose comes from: `dataset` ('AMASS'), the sequence file relative to the
    AMASS (SMPL+H G) root, the frame index in that file."""

    dataset: str
    sequence: str
    frame: int


def read_amass_locations(release_dir: Path, pose_ids: Sequence[int] | None = None) -> dict[int, AmassLocation]:
    """{pose id: AmassLocation} from `ids_2_dataset_sequence_and_frame_index_100k.json` (all ids, or `pose_ids`)."""
    path = Path(release_dir) / AMASS_IDS_FILE
    table = read_json(path, "the pose id -> [dataset, sequence, frame index] table")
    if not isinstance(table, Mapping):
        raise ReleaseError(f"{path}: expected a dict {{str(pose id): [dataset, sequence, frame]}}")
    wanted = [str(p) for p in pose_ids] if pose_ids is not None else list(table)
    out: dict[int, AmassLocation] = {}
    for key in wanted:
        entry = table.get(key)
        if entry is None:
            raise ReleaseError(f"{path}: pose id {key} is not in the table")
        if not (
            isinstance(entry, list)
            and len(entry) == 3
            and isinstance(entry[0], str)
            and isinstance(entry[1], str)
            and type(entry[2]) is int
        ):
            raise ReleaseError(f"{path}: pose id {key}: expected [dataset, sequence path, frame index], got {entry!r}")
        out[int(key)] = AmassLocation(entry[0], entry[1], entry[2])
    return out
