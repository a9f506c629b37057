"""Captions of poses from their posecodes: selection, ripple effects, aggregation, ordering along the
body, wording and sentence assembly. Three variants per pose, as BEDLAM-Script:

- `default`: random skip, all aggregations;
- `simplified`: random skip, no entity / symmetry / interpretation / focus aggregation, full wording
  (no implied second parts, no "the other");
- `ripple`: random skip, all aggregations, transitive and statistical ripple effects.

Everything random comes from the seed: one `torch.Generator` per (seed, variant) draws the posecode
noise, the skips and one integer per pose that seeds that pose's `random.Random` for the wording.
Same seed, same batch of poses: same texts (the draws cover the whole batch, so a pose captioned in
another batch, or at another index, gets other random choices; shard data generation by index range
with a seed per shard). `CANONICAL` options remove every random choice (no noise, no
skip, first template, "the", one statement group per sentence): the caption of a left/right mirrored
pose is then the left/right text flip of the caption, sentence for sentence.

Left and right are always the body's own (the person's left hand), whatever the viewpoint.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from poseembroider.body.body_model import as_joint_poses
from poseembroider.text.captioning import templates as T
from poseembroider.text.captioning.aggregation import (
    STATISTICAL_RULES,
    Piece,
    Statement,
    apply_implications,
    build_pieces,
    entity_aggregation,
    polish,
    rules_to_remove,
    symmetry_aggregation,
    transitive_ripple,
)
from poseembroider.text.captioning.coordinates import caption_coordinates
from poseembroider.text.captioning.posecode_definitions import KINDS, POSECODE_INDEX, POSECODES, SUPER_POSECODES
from poseembroider.text.captioning.posecodes import Posecodes, compute_posecodes, measure_posecodes
from poseembroider.text.captioning.skeleton import skeleton_model
from poseembroider.text.random_streams import per_item_rngs, resolve_variant, seeded_generator

__all__ = [
    "CANONICAL",
    "SKIP_PROBABILITY",
    "VARIANTS",
    "CaptionOptions",
    "caption_poses",
    "caption_variants",
    "captions_from_posecodes",
    "posecodes_of_poses",
    "select_statements",
]

SKIP_PROBABILITY = 0.15
"""Probability that a describable, non-rare posecode is left out of a caption (rare ones are kept)."""
AGGREGATION_PROBABILITY = 0.95
"""Probability that each possible aggregation is applied."""


@dataclass(frozen=True)
class CaptionOptions:
    """How one caption variant is made."""

    noise: bool = True  # random offsets on the measures before binning (annotator subjectivity)
    skip_probability: float = SKIP_PROBABILITY  # random skip of describable, non-rare codes
    simplified: bool = False  # no aggregation, full wording
    transitive_ripple: bool = False  # drop order relations implied by two others
    statistical_ripple: bool = False  # drop statements that are very likely given others
    aggregation_probability: float = AGGREGATION_PROBABILITY
    randomize_wording: bool = True  # False: canonical template, determiner, order and transitions


VARIANTS: dict[str, CaptionOptions] = {
    "default": CaptionOptions(),
    "simplified": CaptionOptions(simplified=True),
    "ripple": CaptionOptions(transitive_ripple=True, statistical_ripple=True),
}
"""The three caption variants of BEDLAM-Script, in caption-index order."""

CANONICAL = CaptionOptions(noise=False, skip_probability=0.0, aggregation_probability=1.0, randomize_wording=False)
"""No random choice at all: deterministic, left/right symmetric captions (for tests and audits)."""

POSTURE_KIND = "posture"
"""Statement kind of the whole-body postures (kneeling, sitting, lying, squatting, upside down)."""
LEAN_KIND = "lean"
"""Statement kind of the trunk's salient tilts (bent far forward, leaning back, bent sideways)."""
_FIRST = {POSTURE_KIND: 0, LEAN_KIND: 1}
"""What a person says first about a body: its posture, then how its trunk leans, then the rest."""

# ----------------------------------------------------------------------------------- statement tables


@lru_cache(maxsize=1)
def _statement_tables():
    """Per elementary code and category, and per super-posecode, the statement it makes."""
    elementary: list[list[Statement | None]] = []
    for code in POSECODES:
        row = []
        for category in KINDS[code.kind].categories:
            (s1, p1), obj = code.subject, code.object
            s2, p2 = obj if obj else (None, None)
            if code.kind == "relative_x" and p1 == p2 and s1 == "left" and s2 == "right":
                # the left part on the right of the right one: arms / legs crossed
                row.append(Statement("both", "arm" if p1 == "hand" else "leg", "crossed", None, None, code.kind))
            else:
                row.append(Statement(s1, p1, category, s2, p2, code.kind))
        elementary.append(row)
    supers: list[Statement] = []
    aligned_code: list[int] = []
    for sup in SUPER_POSECODES:
        (s1, p1), obj = sup.subject, sup.object
        s2, p2 = obj if obj else (None, None)
        kind = {"body": POSTURE_KIND, "torso": LEAN_KIND}.get(sup.posture, "super")
        supers.append(Statement(s1, p1, sup.interpretation, s2, p2, kind))
        third = {"xz-aligned": "y", "xy-aligned": "z"}.get(sup.interpretation)
        if third is not None:
            joints = sup.name.split(":", 1)[1].split("/")
            aligned_code.append(POSECODE_INDEX[f"relative_{third}:{joints[0]}/{joints[1]}"])
        else:
            aligned_code.append(-1)
    return elementary, supers, torch.tensor(aligned_code)


def _aligned_interpretation(interp: str, direction: float) -> str:
    if interp == "xz-aligned":
        return "aligned above" if direction > 0 else "aligned below"
    if interp == "xy-aligned":
        return "aligned front" if direction > 0 else "aligned behind"
    return "level"


def select_statements(
    posecodes: Posecodes, options: CaptionOptions, generator: torch.Generator | None
) -> list[list[Statement]]:
    """Random skip (batched) and the statements of every pose, in code order.

    Describable codes (eligibility 1) are skipped with `options.skip_probability`; rare ones (2) are
    always kept; a pose left with nothing gets all its skipped codes back.
    """
    n, k = posecodes.eligibility.shape
    elig = torch.cat([posecodes.eligibility, posecodes.super_eligibility], dim=1)
    keep = elig > 0
    if options.skip_probability > 0:
        skip = (torch.rand(elig.shape, generator=generator) < options.skip_probability) & (elig == 1)
        kept = keep & ~skip
        emptied = kept.sum(1) == 0
        keep = torch.where(emptied[:, None], keep, kept)
    rows, cols = keep.nonzero(as_tuple=True)
    elementary, supers, aligned_code = _statement_tables()
    is_code = cols < k
    cats = torch.zeros_like(cols)
    cats[is_code] = posecodes.categories[rows[is_code], cols[is_code]]
    direction = torch.zeros(cols.shape[0])
    sup_cols = (cols - k).clamp_min(0)
    aligned = ~is_code & (aligned_code[sup_cols] >= 0)
    direction[aligned] = posecodes.raw[rows[aligned], aligned_code[sup_cols[aligned]]]
    rare = elig[rows, cols] == 2
    out: list[list[Statement]] = [[] for _ in range(n)]
    columns = (rows.tolist(), cols.tolist(), cats.tolist(), direction.tolist(), rare.tolist())
    for r, c, cat, d, is_rare in zip(*columns, strict=True):
        if c < k:
            s = elementary[c][cat]
        else:
            s = supers[c - k]
            if s.interp.endswith("-aligned"):
                s = s._replace(interp=_aligned_interpretation(s.interp, d))
        out[r].append(s._replace(rare=is_rare) if is_rare else s)
    return out


# ------------------------------------------------------------------------------------ body ordering

PART_ORDER = ("body", "head", "neck", "torso", "back", "shoulder", "arm", "upperarm", "elbow", "forearm",
              "wrist", "hand", "hip", "leg", "thigh", "knee", "shin", "ankle", "foot")
PART_RANK = {p: i for i, p in enumerate(PART_ORDER)}
_BRANCHES = {
    "head": ("head", "neck"),
    "torso": ("torso", "back"),
    "arm": ("shoulder", "arm", "upperarm", "elbow", "forearm", "wrist", "hand"),
    "leg": ("hip", "leg", "thigh", "knee", "shin", "ankle", "foot"),
}
_ROOT_CHILDREN = (("head", None), ("torso", None), ("arm", "left"), ("arm", "right"), ("leg", "left"), ("leg", "right"))


def body_walk(rng: random.Random | None) -> dict[tuple[str | None, str], int]:
    """Rank of each (side, part) along a walk of the body: whole body first, then the head, torso,
    arms and legs in random order (canonical: that order, left before right), each limb from its root
    to its end."""
    children = list(_ROOT_CHILDREN)
    if rng is not None:
        rng.shuffle(children)
    rank = {(None, "body"): 0}
    for branch, side in children:
        for part in _BRANCHES[branch]:
            rank[(side, part)] = len(rank)
    return rank


def _order(statements: list[Statement], rng: random.Random | None) -> list[Statement]:
    """Statements along the body walk; the whole-body postures, then the trunk's tilts, come first."""
    rank = body_walk(rng)

    def key(item):
        i, s = item
        if s.kind in _FIRST:
            return (_FIRST[s.kind] - len(_FIRST), i)
        side = s.side1
        if side == "both":  # plural: attached to one side
            side = "left" if rng is None or rng.random() < 0.5 else "right"
        r = rank.get((side if side in ("left", "right") else None, s.part1))
        if r is None:
            r = rank.get(("left", s.part1), len(rank))
        return (r, i)

    return [s for _, s in sorted(enumerate(statements), key=key)]


# ------------------------------------------------------------------------------------------- wording


class Wording:
    """Random (or canonical) choices of one caption: determiner, templates, subject words."""

    def __init__(self, rng: random.Random | None, simplified: bool):
        self.rng = rng
        self.simplified = simplified
        if rng is None:
            self.det = "the"
        else:
            words, weights = zip(*T.DETERMINERS, strict=True)
            self.det = rng.choices(words, weights)[0]
        self.poss = T.POSSESSIVE[self.det]

    def pick(self, options: Sequence[str]) -> str:
        return options[0] if self.rng is None else self.rng.choice(options)

    def part(self, side: str | None, part: str, subject_part: tuple | None = None) -> str:
        if part == "body":
            return "the body"
        if side == "both":
            quantifier = "both" if self.rng is None or self.rng.random() < 0.5 else self.det
            return f"{quantifier} {T.part_word(part, plural=True)}"
        if side is None:
            return f"{self.det} {T.part_word(part)}"
        if (subject_part is not None and not self.simplified and self.rng is not None
                and subject_part == (T.SIDE_OTHER[side], part)):
            choice = self.rng.random()
            if choice < 0.3:
                return f"the other {T.part_word(part)}"
            if choice < 0.5 and self.det == "the":
                return f"the {side} one"
        return f"{self.det} {side} {T.part_word(part)}"

    def body_subject(self, start: bool, again: bool = False) -> str:
        """The whole body as a subject; `again`: the previous sentence was about it too (a pronoun)."""
        if again:
            return T.BODY_PRONOUNS[self.det]
        table = T.BODY_SUBJECTS_START if start else T.BODY_SUBJECTS_MID
        return self.pick(table[self.det])

    def predicate(self, piece_subjects, predicate) -> str:
        interp, kind, side2, part2 = predicate
        if part2 is None:
            plural_pair = len(piece_subjects) >= 1 and all(s[0] == "both" for s in piece_subjects)
            part1 = piece_subjects[0][1]
            if plural_pair and interp in T.PLURAL_SINGLE:
                phrase = self.pick(T.PLURAL_SINGLE[interp])
            elif len(piece_subjects) == 1 and (part1, interp) in T.SUBJECT_OVERRIDES:
                phrase = self.pick(T.SUBJECT_OVERRIDES[(part1, interp)])
            else:
                phrase = self.pick(T.SINGLE[interp])
        elif not self.simplified and len({p for _, p in piece_subjects}) == 1 and (
            (piece_subjects[0][1], interp, part2) in T.FLOW_OMISSIONS
        ):
            phrase = self.pick(T.FLOW_OMISSIONS[(piece_subjects[0][1], interp, part2)])
        else:
            subject = piece_subjects[0] if len(piece_subjects) == 1 else None
            phrase = self.pick(T.DOUBLE[interp]).replace("{obj}", self.part(side2, part2, subject))
        return phrase.replace("{poss}", self.poss)


def join_phrases(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _render_piece(
    piece: Piece, wording: Wording, start: bool, drop_verb: bool, pronoun: bool = False, body_again: bool = False
) -> str:
    if pronoun:  # same single subject as the previous sentence
        return "it is " + join_phrases([wording.predicate(piece.subjects, p) for p in piece.predicates])
    subjects = []
    plural = len(piece.subjects) > 1
    for side, part in piece.subjects:
        if part == "body":
            word = wording.body_subject(start, again=body_again)
            plural = plural or word in T.PLURAL_PRONOUNS
        else:
            word = wording.part(side, part)
            plural = plural or side == "both"
        subjects.append(word)
    predicates = join_phrases([wording.predicate(piece.subjects, p) for p in piece.predicates])
    if drop_verb:
        return f"{join_phrases(subjects)} {predicates}"
    return f"{join_phrases(subjects)} {'are' if plural else 'is'} {predicates}"


def _assemble(pieces: list[Piece], wording: Wording, rng: random.Random | None) -> str:
    """Join the pieces into sentences: random transitions (canonical: one piece per sentence), at most
    `MAX_CLAUSES_PER_SENTENCE` clauses, one " with " and one " while " per sentence, a new sentence when
    the subject repeats, and the verb dropped after " with " (and the " and " pieces that follow it)."""
    if not pieces:
        return f"{wording.body_subject(True)} is {T.FALLBACK}."
    parts: list[str] = []
    clauses, used, dropping = 0, set(), False
    for i, piece in enumerate(pieces):
        is_body = any(p == "body" for _, p in piece.subjects)
        if i == 0:
            join = ""
        elif rng is None or clauses >= T.MAX_CLAUSES_PER_SENTENCE or piece.subjects == pieces[i - 1].subjects:
            join = ". "
        else:
            allowed = [(w, p) for w, p in T.TRANSITIONS if w not in used]
            if dropping or is_body:
                allowed = [(w, p) for w, p in allowed if w in (". ", " and ")]
            words, weights = zip(*allowed, strict=True)
            join = rng.choices(words, weights)[0]
        if join in ("", ". "):
            clauses, used, dropping = 0, set(), False
        elif join == " with ":
            dropping = True
        used.add(join)
        start = join in ("", ". ")
        pronoun = (
            join == ". " and rng is not None and piece.subjects == pieces[i - 1].subjects
            and len(piece.subjects) == 1 and piece.subjects[0][0] != "both" and piece.subjects[0][1] != "body"
            and rng.random() < 0.5
        )
        body_again = join == ". " and piece.subjects == pieces[i - 1].subjects == ((None, "body"),)
        parts.append(join + _render_piece(piece, wording, start=start, drop_verb=dropping, pronoun=pronoun,
                                          body_again=body_again))
        clauses += 1
    return finish_text("".join(parts))


def finish_text(text: str) -> str:
    """One space between words, a final period, the first character of each sentence capitalised
    (only that character: "an L-shape" keeps its capital)."""
    text = " ".join(text.split())
    sentences = [s.strip() for s in text.split(". ") if s.strip()]
    sentences = [s[0].upper() + s[1:] for s in sentences]
    out = ". ".join(sentences)
    return out if out.endswith(".") else out + "."


def caption_statements(statements: list[Statement], options: CaptionOptions, rng: random.Random | None) -> str:
    """The caption of one pose from its selected statements (`select_statements`)."""
    if not options.randomize_wording:
        rng = None
    p = options.aggregation_probability
    if options.transitive_ripple:
        statements = transitive_ripple(statements)
    raw_keys = {s.key for s in statements}
    statements = apply_implications(statements)
    if not options.simplified:
        statements = entity_aggregation(statements, rng, p)
        statements = symmetry_aggregation(statements, rng, p)
    if options.statistical_ripple:
        removed = rules_to_remove(raw_keys, STATISTICAL_RULES)
        if removed:
            statements = [s for s in statements if s.key not in removed]
    statements = polish(statements, rng)
    statements = _order(statements, rng)
    pieces = build_pieces(statements, rng, p, aggregate=not options.simplified, part_rank=PART_RANK,
                          first_kinds=_FIRST)
    wording = Wording(rng, options.simplified)
    return _assemble(pieces, wording, rng)


# ------------------------------------------------------------------------------------------ pipeline


def _generator(seed: int, variant: str) -> torch.Generator:
    return seeded_generator(seed, list(VARIANTS).index(variant) if variant in VARIANTS else 0)


def _resolve(variant: str, options: CaptionOptions | None) -> CaptionOptions:
    return resolve_variant(variant, options, VARIANTS)


def captions_from_posecodes(
    posecodes: Posecodes, options: CaptionOptions, generator: torch.Generator | None
) -> list[str]:
    """Captions of N poses whose posecodes are already computed (noise included)."""
    statements = select_statements(posecodes, options, generator)
    rngs = per_item_rngs(len(statements), generator)
    return [caption_statements(s, options, rng) for s, rng in zip(statements, rngs, strict=True)]


def _coordinates(poses, body_model) -> tuple[torch.Tensor, torch.Tensor]:
    poses = as_joint_poses(poses).float()
    return caption_coordinates(poses, skeleton_model(body_model), batch_size=4096), poses


def _captions(coords, poses, raw, seed, variant, options) -> list[str]:
    options = _resolve(variant, options)
    generator = _generator(seed, variant)
    codes = compute_posecodes(coords, poses, generator, noise=options.noise, raw=raw)
    return captions_from_posecodes(codes, options, generator)


def caption_poses(
    poses: torch.Tensor | np.ndarray,
    body_model,
    seed: int = 0,
    variant: str = "default",
    *,
    options: CaptionOptions | None = None,
) -> list[str]:
    """One caption per pose.

    Args:
        poses: (N, 22 | 52 | 55, 3) SMPL-X axis-angles (or flat (N, 66 | 156 | 165)).
        body_model: a `BodyModel` (only its mean-shape skeleton is used, batched).
        seed: same seed, same poses -> same captions.
        variant: "default", "simplified" or "ripple" (`VARIANTS`).
        options: explicit options instead of a named variant (e.g. `CANONICAL`).
    """
    coords, poses = _coordinates(poses, body_model)
    return _captions(coords, poses, None, seed, variant, options)


def caption_variants(poses: torch.Tensor | np.ndarray, body_model, seed: int = 0) -> list[list[str]]:
    """Three captions per pose (default, simplified, ripple), as BEDLAM-Script. Caption j of pose i
    equals `caption_poses(poses, body_model, seed, variant=list(VARIANTS)[j])[i]`."""
    coords, poses = _coordinates(poses, body_model)
    raw = measure_posecodes(coords, poses)
    per_variant = [_captions(coords, poses, raw, seed, v, None) for v in VARIANTS]
    return [list(texts) for texts in zip(*per_variant, strict=True)]


def posecodes_of_poses(
    poses: torch.Tensor | np.ndarray, body_model, seed: int = 0, variant: str = "default", noise: bool = True
) -> Posecodes:
    """The posecodes (before selection) behind `caption_poses(poses, body_model, seed, variant)`: the
    same noise draw, so the categories are those the caption was written from."""
    coords, poses = _coordinates(poses, body_model)
    return compute_posecodes(coords, poses, _generator(seed, variant), noise=noise)
