"""Corrective instructions for pose pairs (A -> B) from their paircodes: selection, facts about B,
aggregation, ordering along the body, imperative wording and sentence assembly.

Three variants per pair (caption index order of the fix datasets):

- `default`: random skip, all aggregations, up to `max_facts` facts about B on the moved limbs ("your
  left knee should be bent at a right angle"), some fused into the change ("bend your left knee to a
  right angle", "raise both arms above your head");
- `simplified`: random skip, no aggregation, no facts, no shortened wording;
- `short`: the few largest changes only (posture changes and super-paircodes first), aggregated, no
  facts: closer to how people write corrections.

In-sequence pairs get a first sentence for the whole-body turn when a heading change is given
(`rotation_change_deg`, or `in_sequence=True` to take it from the poses' global orientations).
Nearly identical poses still get a short instruction ("Stay almost as you are, only ...").

Everything random comes from the seed: one `torch.Generator` per (seed, variant) draws the noise of
the posecodes and paircodes, the skips and one integer per pair seeding that pair's `random.Random`
for the wording. Same seed, same batch: same texts. `CANONICAL` removes every random choice (no
noise, no skip, first template, "your", one clause per sentence): the instruction of a left/right
mirrored pair is then the left/right text flip of the instruction, sentence for sentence.

Left and right are always the body's own (your left hand), whatever the viewpoint.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import torch

from poseembroider.body.body_model import as_joint_poses
from poseembroider.text.captioning.aggregation import ENTITIES, Piece, Statement, polish, symmetry_aggregation
from poseembroider.text.captioning.captions import (
    PART_RANK,
    CaptionOptions,
    Wording,
    body_walk,
    finish_text,
    join_phrases,
    select_statements,
)
from poseembroider.text.captioning.coordinates import caption_coordinates
from poseembroider.text.captioning.posecode_definitions import KINDS, POSECODES
from poseembroider.text.captioning.posecodes import measure_posecodes
from poseembroider.text.captioning.skeleton import skeleton_model
from poseembroider.text.correcting import instruction_templates as T
from poseembroider.text.correcting.paircode_definitions import (
    GET_UP,
    IGNORED,
    PAIR_KINDS,
    PAIRCODES,
    POSTURES,
    ROTATION_CATEGORIES,
    SUPER_PAIRCODES,
    fact_tables,
)
from poseembroider.text.correcting.paircodes import (
    Paircodes,
    compute_paircodes,
    measure_paircodes,
    rotation_change_from_orientations,
)
from poseembroider.text.random_streams import per_item_rngs, resolve_variant, seeded_generator

__all__ = [
    "CANONICAL",
    "SKIP_PROBABILITY",
    "VARIANTS",
    "InstructionOptions",
    "instruct_pairs",
    "instruction_variants",
    "instructions_from_paircodes",
    "paircodes_of_pairs",
]

SKIP_PROBABILITY = 0.15
"""Probability that a describable, non-rare paircode (or fact about B) is left out (rare ones are kept)."""
AGGREGATION_PROBABILITY = 0.95


@dataclass(frozen=True)
class InstructionOptions:
    """How one instruction variant is made."""

    noise: bool = True  # random offsets on the measures before binning
    skip_probability: float = SKIP_PROBABILITY  # random skip of describable, non-rare codes and facts
    simplified: bool = False  # no aggregation, full wording
    facts: bool = True  # state facts about B on the moved limbs
    max_facts: int | None = 2  # at most this many facts (after those fused into a change); None: all
    max_kept_facts: int | None = 1  # of which at most this many A already shared; None: all
    max_changes: int | None = None  # keep only the largest changes (None: all)
    aggregation_probability: float = AGGREGATION_PROBABILITY
    randomize_wording: bool = True  # False: canonical template, determiner, order and transitions


VARIANTS: dict[str, InstructionOptions] = {
    "default": InstructionOptions(),
    "simplified": InstructionOptions(simplified=True, facts=False),
    "short": InstructionOptions(facts=False, max_changes=3),
}
"""The three instruction variants, in text-index order."""

CANONICAL = InstructionOptions(noise=False, skip_probability=0.0, aggregation_probability=1.0,
                               randomize_wording=False, max_facts=None, max_kept_facts=None)
"""No random choice at all: deterministic, left/right symmetric instructions (tests and audits). Every
fact about B on the moved limbs is said (a cap would have to choose between a left and a right one)."""

_NOT_AGGREGATED = ("distance", "posture")
_KEPT_FACT_KINDS = ("angle", "segment_orientation")
_SIDE_RANK = {"left": 0, "both": 1, None: 1, "right": 2}  # kinds never grouped with other subjects or predicates
_PREDICATE_ORDER = {"posture": 0, "straighten": 1, "pair_angle": 2, "pair_y": 3, "pair_z": 4, "pair_x": 5}

# ----------------------------------------------------------------------------------- statement tables


@lru_cache(maxsize=1)
def _statement_tables():
    """Statements (and importance) per paircode category, super-paircode and posture change."""
    elementary, importance = [], []
    for code in PAIRCODES:
        kind = PAIR_KINDS[code.kind]
        side, part = code.subject
        elementary.append([None if c == IGNORED else Statement(side, part, c, None, None, code.kind)
                           for c in kind.categories])
        importance.append(list(kind.magnitudes))
    supers = []
    for sup in SUPER_PAIRCODES:
        (s1, p1), obj = sup.subject, sup.object
        s2, p2 = obj if obj else (None, None)
        kind = "straighten" if sup.interpretation == "straighten" else "distance"
        supers.append(Statement(s1, p1, sup.interpretation, s2, p2, kind, True))
    postures = [Statement(None, "body", interp, None, None, "posture", True)
                for interp in (*POSTURES.values(), *GET_UP)]
    return elementary, importance, supers, postures


@lru_cache(maxsize=1)
def _interpretation_info() -> dict[str, tuple[str, int]]:
    """Change interpretation -> (direction, magnitude), for direction-aware entity merges."""
    info = {}
    for kind in PAIR_KINDS.values():
        for category, direction, magnitude in zip(kind.categories, kind.directions, kind.magnitudes, strict=True):
            if direction is not None:
                info[category] = (f"{kind.name}:{direction}", magnitude)
    return info


@lru_cache(maxsize=1)
def _fallback_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """Per paircode: whether it can be said, and its first threshold above zero (a 'slight' change)."""
    sayable = torch.tensor([bool(c.acceptable) for c in PAIRCODES])
    slight = torch.tensor([min(t for t in PAIR_KINDS[c.kind].thresholds if t > 0) for c in PAIRCODES])
    return sayable, slight


@lru_cache(maxsize=1)
def _fact_tensors():
    elementary, needs_change, supers = fact_tables()
    width = max(len(k.categories) for k in KINDS.values())
    elig = torch.zeros(len(POSECODES), width + 1, dtype=torch.int8)
    change = torch.zeros(len(POSECODES), width + 1, dtype=torch.bool)
    for k, (row, flags) in enumerate(zip(elementary, needs_change, strict=True)):
        elig[k, : len(row)] = torch.tensor(row, dtype=torch.int8)
        change[k, : len(flags)] = torch.tensor(flags)
    return elig, change, torch.tensor(supers, dtype=torch.int8), width


# ------------------------------------------------------------------------------------------ selection


@dataclass
class _PairSelection:
    changes: list[tuple[Statement, int]]  # (statement, importance)
    facts_changed: list[Statement]  # facts about B that A did not share
    facts_kept: list[Statement]  # facts about B already true in A
    rotation: str | None
    fallback: Statement | None  # the slightest change, for nearly identical poses (None: identical)


def _facts(codes: Paircodes) -> tuple[list[list[Statement]], list[list[Statement]]]:
    """Facts about B (batched): (those A did not share, those already true in A) per pair."""
    elig_table, change_table, super_table, width = _fact_tensors()
    a, b = codes.posecodes_a, codes.posecodes_b
    cb = torch.where(b.categories < 0, torch.full_like(b.categories, width), b.categories)
    n = cb.shape[0]
    if n == 0:
        return [], []
    elig = elig_table.gather(1, cb.T).T
    needs_change = change_table.gather(1, cb.T).T
    same = a.categories == b.categories
    elig = torch.where(needs_change & same, torch.zeros_like(elig), elig)
    super_elig = torch.where(b.super_eligibility > 0, super_table.expand(n, -1), torch.zeros(1, dtype=torch.int8))
    zero = torch.zeros(1, dtype=torch.int8)
    changed = replace(b, eligibility=torch.where(same, zero, elig),
                      super_eligibility=torch.where(a.super_active, zero, super_elig))
    kept = replace(b, eligibility=torch.where(same, elig, zero),
                   super_eligibility=torch.where(a.super_active, super_elig, zero))
    options = CaptionOptions(noise=False, skip_probability=0.0)
    return select_statements(changed, options, None), select_statements(kept, options, None)


def _select(codes: Paircodes, options: InstructionOptions, generator: torch.Generator | None) -> list[_PairSelection]:
    """Random skip (batched) and what each pair's instruction is made of."""
    elementary, importance, supers, postures = _statement_tables()
    n, p = codes.eligibility.shape
    s = codes.super_active.shape[1]
    elig = torch.cat([codes.eligibility, 2 * codes.super_active.to(torch.int8), 2 * codes.postures.to(torch.int8)], 1)
    keep = elig > 0
    if options.skip_probability > 0:
        skip = (torch.rand(elig.shape, generator=generator) < options.skip_probability) & (elig == 1)
        kept = keep & ~skip
        emptied = kept.sum(1) == 0
        keep = torch.where(emptied[:, None], keep, kept)
    rows, cols = keep.nonzero(as_tuple=True)
    cats = codes.categories[rows, cols.clamp_max(p - 1)]
    changes: list[list[tuple[Statement, int]]] = [[] for _ in range(n)]
    for r, c, cat in zip(rows.tolist(), cols.tolist(), cats.tolist(), strict=True):
        if c < p:
            changes[r].append((elementary[c][cat], importance[c][cat]))
        elif c < p + s:
            changes[r].append((supers[c - p], 3))
        else:
            changes[r].append((postures[c - p - s], 4))
    facts_changed, facts_kept = _facts(codes) if options.facts else ([[]] * n, [[]] * n)
    # the slightest describable change, said when nothing else is
    sayable, slight = _fallback_tables()
    score = torch.nan_to_num(codes.raw.abs() / slight, nan=0.0) * sayable
    best = score.argmax(1) if p else torch.zeros(n, dtype=torch.long)
    best_score = score.gather(1, best[:, None])[:, 0] if n else torch.zeros(0)
    sign = codes.raw.gather(1, best[:, None])[:, 0] if n else torch.zeros(0)
    out = []
    for i in range(n):
        fallback = None
        if best_score[i] >= 0.25:
            code = PAIRCODES[int(best[i])]
            kind = PAIR_KINDS[code.kind]
            category = kind.ignored_index + (-1 if float(sign[i]) < 0 else 1)
            fallback = elementary[int(best[i])][category]
        r = int(codes.rotation[i])
        rotation = None if r < 0 or ROTATION_CATEGORIES[r] == IGNORED else ROTATION_CATEGORIES[r]
        out.append(_PairSelection(changes[i], facts_changed[i], facts_kept[i], rotation, fallback))
    return out


# ------------------------------------------------------------------------------------- aggregations


def _take(rng: random.Random | None, probability: float) -> bool:
    return rng is None or rng.random() < probability


def _entity_aggregation(statements: list[Statement], rng: random.Random | None, probability: float) -> list[Statement]:
    """Merge two changes of the same side, kind and direction on parts that make one entity (the left
    hand and elbow go up: raise the left arm), keeping the larger magnitude."""
    info = _interpretation_info()
    used = [False] * len(statements)
    out: list[tuple[int, Statement]] = []
    for i, a in enumerate(statements):
        if used[i]:
            continue
        for j in range(i + 1, len(statements)):
            b = statements[j]
            if used[j] or a.side1 not in ("left", "right") or (a.side1, a.kind) != (b.side1, b.kind):
                continue
            if a.interp not in info or b.interp not in info or info[a.interp][0] != info[b.interp][0]:
                continue
            entity = ENTITIES.get(frozenset((a.part1, b.part1)))
            if entity is None or not _take(rng, probability):
                continue
            larger = a.interp if info[a.interp][1] >= info[b.interp][1] else b.interp
            used[i] = used[j] = True
            out.append((i, a._replace(part1=entity, interp=larger, rare=a.rare or b.rare)))
            break
        if not used[i]:
            out.append((i, a))
    return [s for _, s in sorted(out, key=lambda x: x[0])]


_CHAINS = {
    "arm": ("arm", "shoulder", "upperarm", "elbow", "forearm", "wrist", "hand"),
    "leg": ("leg", "hip", "thigh", "knee", "shin", "ankle", "foot"),
}
_CHAIN_OF = {part: (chain, depth) for chain, parts in _CHAINS.items() for depth, part in enumerate(parts)}


def _moves(changed: tuple[str | None, str], side: str | None, part: str | None) -> bool:
    """Whether changing the part `changed` moves (side, part): same part or further down its branch."""
    c_side, c_part = changed
    if part is None:
        return False
    if c_part in ("body", "torso"):
        return True
    if c_part == "head" or part == "head":
        return c_part == part
    c, f = _CHAIN_OF.get(c_part), _CHAIN_OF.get(part)
    if c is None or f is None or c[0] != f[0]:
        return False
    same_side = c_side == side or "both" in (c_side, side)
    return same_side and c[1] <= f[1]


_FUSIONS = (
    # (change interpretations, change part -> fact part, fact interpretation, fact second part, fused)
    (("higher", "slightly higher"), {"hand": "hand", "arm": "hand"}, "above", "head", "raise above head"),
    (("bent much more", "bent more", "bent slightly more"), {"knee": "knee", "elbow": "elbow"},
     "right angle", None, "bend to right angle"),
    (("bent much more", "bent more", "bent slightly more"), {"knee": "knee", "elbow": "elbow"},
     "completely bent", None, "bend fully"),
    (("bent much less", "bent less", "bent slightly less"), {"knee": "knee", "elbow": "elbow"},
     "right angle", None, "unbend to right angle"),
    (("bent much less", "bent less", "bent slightly less", "straighten"),
     {"knee": "knee", "elbow": "elbow", "leg": "knee", "arm": "elbow"}, "straight", None, "straighten fully"),
)
"""A change and a fact about the same limb said as one clause ("raise your left arm above your head")."""


def _fuse(changes: list[Statement], facts: list[Statement]) -> tuple[list[Statement], list[Statement]]:
    facts = list(facts)
    out = []
    for s in changes:
        for interps, parts, fact_interp, fact_part2, fused in _FUSIONS:
            if s.interp not in interps or s.part1 not in parts:
                continue
            match = next((f for f in facts if (f.side1, f.part1, f.interp, f.part2)
                          == (s.side1, parts[s.part1], fact_interp, fact_part2)), None)
            if match is not None:
                facts.remove(match)
                s = s._replace(interp=fused)
                break
        out.append(s)
    return out, facts


_LIMB_OF = {"knee": "leg", "elbow": "arm"}


def _angle_changes(changes: list[Statement], fact: Statement) -> bool:
    """Whether some change bends or straightens the joint an angle fact is about."""
    if fact.kind != "angle":
        return False
    parts = (fact.part1, _LIMB_OF.get(fact.part1))
    return any(s.kind in ("pair_angle", "straighten") and s.part1 in parts
               and (s.side1 == fact.side1 or "both" in (s.side1, fact.side1)) for s in changes)


def _choose_facts(
    selection: _PairSelection, changes: list[Statement], options: InstructionOptions, rng: random.Random | None
) -> tuple[list[Statement], list[Statement]]:
    """Facts about B on the moved branches, skipped at random, fused into changes, capped."""
    moved = [(s.side1, s.part1) for s in changes]

    def on_moved(f: Statement) -> bool:
        return any(_moves(m, f.side1, f.part1) or _moves(m, f.side2, f.part2) for m in moved)

    def skipped(f: Statement) -> bool:
        return rng is not None and not f.rare and rng.random() < options.skip_probability

    facts_changed = [f for f in selection.facts_changed if on_moved(f) and not skipped(f)]
    facts_kept = [f for f in selection.facts_kept if on_moved(f) and not skipped(f)]
    if not options.simplified:
        p = options.aggregation_probability
        facts_changed = symmetry_aggregation(facts_changed, rng, p)
        facts_kept = symmetry_aggregation(facts_kept, rng, p)
    # same-part left/right facts: "your knees should be close together", or said from either side
    facts_changed, facts_kept = polish(facts_changed, rng), polish(facts_kept, rng)
    changes, facts_changed = _fuse(changes, facts_changed)
    # a fact A already shared helps only as a constraint on the moved limb's shape ("keep your elbows
    # straight"), never about a joint whose angle changes: at most one, after the new facts
    facts_kept = [f for f in facts_kept if f.kind in _KEPT_FACT_KINDS and not _angle_changes(changes, f)]
    if rng is not None:
        rng.shuffle(facts_changed)
        rng.shuffle(facts_kept)
    ranked = sorted(facts_changed, key=lambda f: not f.rare) + sorted(facts_kept, key=lambda f: not f.rare)[
        : options.max_kept_facts]
    return changes, ranked[: options.max_facts]


def _largest(changes: list[tuple[Statement, int]], limit: int, rng: random.Random | None) -> list[Statement]:
    keys = [(-importance, rng.random() if rng is not None else 0.0, i) for i, (_, importance) in enumerate(changes)]
    chosen = sorted(range(len(changes)), key=lambda i: keys[i])[:limit]
    return [changes[i][0] for i in sorted(chosen)]


# ---------------------------------------------------------------------------------------- ordering


def _order(statements: list[Statement], rank: dict, group: int, rng: random.Random | None) -> list[tuple]:
    """(sort key, statement): along the body walk, then changes before facts, then code order."""
    keyed = []
    for i, s in enumerate(statements):
        side = s.side1
        if side == "both":
            side = "left" if rng is None or rng.random() < 0.5 else "right"
        r = rank.get((side if side in ("left", "right") else None, s.part1))
        if r is None:
            r = rank.get(("left", s.part1), len(rank))
        keyed.append(((r, group, i), s))
    return keyed


def _pieces(keyed: list[tuple], rng: random.Random | None, probability: float, aggregate: bool) -> list[tuple]:
    """Changes -> (key, Piece); with `aggregate`, one predicate shared by several subjects ("bend your
    left knee and your right elbow more") or several predicates for one subject ("raise your left hand
    and move it forward"). Each change is used once; groups are visited in random order (canonical:
    shared predicates first, in a fixed order)."""
    keyed = sorted(keyed, key=lambda x: x[0])
    statements = [s for _, s in keyed]
    singles = [(k, Piece(((s.side1, s.part1),), ((s.interp, s.kind, s.side2, s.part2),))) for k, s in keyed]
    if not aggregate or len(statements) < 2:
        return singles
    by_interp: dict[str, list[int]] = {}
    by_subject: dict[tuple, list[int]] = {}
    for i, s in enumerate(statements):
        if s.kind in _NOT_AGGREGATED:
            continue
        if s.part1 != "body":
            by_interp.setdefault(s.interp, []).append(i)
        by_subject.setdefault((s.side1, s.part1), []).append(i)
    candidates = [("interp", idx) for idx in by_interp.values()
                  if len(idx) >= 2 and len({(statements[i].side1, statements[i].part1) for i in idx}) == len(idx)]
    candidates += [("focus", idx) for idx in by_subject.values() if len(idx) >= 2]
    if rng is not None:
        rng.shuffle(candidates)
    used = [False] * len(statements)
    pieces = []
    for mode, idx in candidates:
        free = [i for i in idx if not used[i]]
        if len(free) < 2 or not _take(rng, probability):
            continue
        if rng is not None and len(free) > 3:
            free = sorted(rng.sample(free, 3))
        for i in free:
            used[i] = True
        group = [statements[i] for i in free]
        if mode == "interp":  # subjects by body part, then side (left/right symmetric)
            subjects = sorted(((s.side1, s.part1) for s in group),
                              key=lambda x: (PART_RANK.get(x[1], 99), _SIDE_RANK.get(x[0], 1)))
            piece = Piece(tuple(subjects), ((group[0].interp, group[0].kind, None, None),))
        else:
            predicates = sorted(((s.interp, s.kind, s.side2, s.part2) for s in group),
                                key=lambda q: _PREDICATE_ORDER.get(q[1], 9))
            piece = Piece(((group[0].side1, group[0].part1),), tuple(predicates))
        pieces.append((keyed[free[0]][0], piece))
    pieces += [singles[i] for i in range(len(statements)) if not used[i]]
    return sorted(pieces, key=lambda x: x[0])


# ------------------------------------------------------------------------------------------ wording


class _Writer:
    """Random (or canonical) wording of one instruction; body-part words come from the captioner."""

    def __init__(self, rng: random.Random | None, simplified: bool):
        self.rng = rng
        self.simplified = simplified
        self.words = Wording(None, simplified)
        self.words.rng = rng
        det = "your" if rng is None else rng.choices(*zip(*T.DETERMINERS, strict=True))[0]
        self.words.det, self.words.poss = det, "your"

    def pick(self, options: Sequence[str]) -> str:
        return options[0] if self.rng is None else self.rng.choice(options)

    def subjects(self, subjects) -> tuple[str, bool]:
        words = [self.words.part(side, part) for side, part in subjects if part != "body"]
        plural = len(subjects) > 1 or any(side == "both" for side, _ in subjects)
        return join_phrases(words) if words else "", plural

    def change(self, piece: Piece, gerund: bool, pronoun: bool = False) -> str:
        """One imperative clause (or several joined by "and") for a change piece; with `pronoun`, the
        subject is the one of the clause just before ("..., then move it forward")."""
        subject, plural = self.subjects(piece.subjects)
        if pronoun and subject:
            subject = "them" if plural else "it"
        interps = [q[0] for q in piece.predicates]
        compact = len(interps) > 1 and not self.simplified and (self.rng is None or self.rng.random() < 0.5)
        if compact and all(i in T.DIRECTIONS for i in interps):
            clauses = [f"{T.MOVE_VERB} {subject} {join_phrases([T.DIRECTIONS[i] for i in interps])}"]
        elif compact and all(i in T.BODY_DIRECTIONS for i in interps):
            clauses = [f"{T.LEAN_VERB} {join_phrases([T.BODY_DIRECTIONS[i] for i in interps])}"]
        else:
            pronoun = "them" if plural else "it"
            clauses = [self.pick(T.CHANGES[interp]).replace("{subj}", subject if k == 0 else pronoun)
                       for k, interp in enumerate(interps)]
        if gerund:
            clauses = [T.gerund(c) for c in clauses]
        return " and ".join(clauses)

    def state(self, piece: Piece) -> str:
        return join_phrases([self.words.predicate(piece.subjects, q) for q in piece.predicates])

    def fact(self, piece: Piece) -> str:
        subject, plural = self.subjects(piece.subjects)
        return f"{subject} {self.pick(T.FACT_VERBS[plural])} {self.state(piece)}"

    def attached_fact(self, piece: Piece) -> str:
        _, plural = self.subjects(piece.subjects)
        return self.pick(T.FACT_ATTACHED).format(pron="they" if plural else "it", be="are" if plural else "is",
                                                 state=self.state(piece))


def _units(selection: _PairSelection, options: InstructionOptions, rng: random.Random | None) -> list[tuple]:
    """What the instruction says, in order: ("rotation", text key) first, then ("change", piece,
    attached fact piece or None) and ("fact", piece) along the body."""
    p = options.aggregation_probability
    if options.max_changes is not None and len(selection.changes) > options.max_changes:
        changes = _largest(selection.changes, options.max_changes, rng)
    else:
        changes = [s for s, _ in selection.changes]
    if not options.simplified:
        changes = _entity_aggregation(changes, rng, p)
        changes = symmetry_aggregation(changes, rng, p)
    facts: list[Statement] = []
    if options.facts:
        changes, facts = _choose_facts(selection, changes, options, rng)
    rank = body_walk(rng)
    keyed_changes = _order(changes, rank, 0, rng)
    keyed_facts = _order(facts, rank, 1, rng)
    units = [(key, "change", piece) for key, piece in _pieces(keyed_changes, rng, p, not options.simplified)]
    units += [(key, "fact", Piece(((s.side1, s.part1),), ((s.interp, s.kind, s.side2, s.part2),)))
              for key, s in keyed_facts]
    units.sort(key=lambda u: u[0])
    out: list[tuple] = []
    for _, tag, piece in units:
        previous = out[-1] if out else None
        if (tag == "fact" and previous is not None and previous[0] == "change" and previous[2] is None
                and previous[1].subjects == piece.subjects and len(previous[1].predicates) == 1
                and rng is not None and rng.random() < 0.5):
            out[-1] = ("change", previous[1], piece)
        elif tag == "change":
            out.append(("change", piece, None))
        else:
            out.append(("fact", piece))
    if selection.rotation is not None:
        out.insert(0, ("rotation", selection.rotation))
    return out


def _assemble(units: list[tuple], selection: _PairSelection, writer: _Writer, rng: random.Random | None) -> str:
    """Join the clauses into sentences: random transitions (canonical: one clause per sentence), at most
    `MAX_CLAUSES_PER_SENTENCE` clauses, one " while " per sentence with -ing verbs after it; facts, the
    turn and the nearly-same lead-in always stand alone."""
    has_change = any(u[0] == "change" for u in units)
    if not has_change:
        if selection.rotation is not None and not any(u[0] == "fact" for u in units):
            units = [*units, ("text", writer.pick(T.SAME_AFTER_TURN))]
        elif selection.fallback is not None:
            piece = Piece(((selection.fallback.side1, selection.fallback.part1),),
                          ((selection.fallback.interp, selection.fallback.kind, None, None),))
            clause = writer.change(piece, gerund=False)
            units = [*units, ("text", writer.pick(T.ALMOST_SAME).format(clause=clause))]
        elif not units:
            units = [("text", writer.pick(T.SAME))]
    parts: list[str] = []
    clauses, used, gerund_mode = 0, set(), False
    for i, unit in enumerate(units):
        tag = unit[0]
        if i == 0:
            join = ""
        elif (rng is None or tag != "change" or units[i - 1][0] != "change"
              or clauses >= T.MAX_CLAUSES_PER_SENTENCE):
            join = ". "
        else:
            allowed = [(w, q) for w, q in T.TRANSITIONS if not (w == " while " and w in used)]
            if gerund_mode:
                allowed = [(w, q) for w, q in allowed if w in (". ", " and ")]
            words, weights = zip(*allowed, strict=True)
            join = rng.choices(words, weights)[0]
        if join in ("", ". "):
            clauses, used, gerund_mode = 0, set(), False
        elif join == " while ":
            gerund_mode = True
        used.add(join)
        if tag == "change":
            same_subject = join not in ("", ". ") and units[i - 1][1].subjects == unit[1].subjects
            text = writer.change(unit[1], gerund=gerund_mode, pronoun=same_subject)
            if unit[2] is not None:
                text += writer.attached_fact(unit[2])
        elif tag == "fact":
            text = writer.fact(unit[1])
        elif tag == "rotation":
            text = writer.pick(T.ROTATIONS[unit[1]])
        else:
            text = unit[1]
        parts.append(join + text)
        clauses += 1
    return finish_text("".join(parts))


def _instruction_from_selection(
    selection: _PairSelection, options: InstructionOptions, rng: random.Random | None
) -> str:
    if not options.randomize_wording:
        rng = None
    writer = _Writer(rng, options.simplified)
    return _assemble(_units(selection, options, rng), selection, writer, rng)


# ------------------------------------------------------------------------------------------ pipeline

_SALT = 0x5EED_F1C5  # instruction draws differ from the captioner's for the same seed


def _generator(seed: int, variant: str) -> torch.Generator:
    return seeded_generator(seed, list(VARIANTS).index(variant) if variant in VARIANTS else len(VARIANTS), _SALT)


def _resolve(variant: str, options: InstructionOptions | None) -> InstructionOptions:
    return resolve_variant(variant, options, VARIANTS)


def instructions_from_paircodes(
    codes: Paircodes, options: InstructionOptions, generator: torch.Generator | None
) -> list[str]:
    """Instructions of N pairs whose paircodes are already computed (noise included)."""
    selections = _select(codes, options, generator)
    rngs = per_item_rngs(len(selections), generator)
    return [_instruction_from_selection(s, options, rng) for s, rng in zip(selections, rngs, strict=True)]


@dataclass
class _Pairs:
    coords_a: torch.Tensor
    coords_b: torch.Tensor
    poses_a: torch.Tensor
    poses_b: torch.Tensor
    rotation: torch.Tensor | float | None


def _prepare(poses_a, poses_b, body_model, rotation_change_deg, in_sequence: bool) -> _Pairs:
    poses_a = as_joint_poses(poses_a, "poses_a").float()
    poses_b = as_joint_poses(poses_b, "poses_b").float()
    if poses_a.shape[0] != poses_b.shape[0]:
        raise ValueError(f"poses_a has {poses_a.shape[0]} poses (shape {tuple(poses_a.shape)}) but poses_b has "
                         f"{poses_b.shape[0]} (shape {tuple(poses_b.shape)}): one pose B per pose A")
    if rotation_change_deg is None and in_sequence:
        rotation_change_deg = rotation_change_from_orientations(poses_a[:, 0], poses_b[:, 0])
    skeleton = skeleton_model(body_model)
    coords_a = caption_coordinates(poses_a, skeleton, batch_size=4096)
    coords_b = caption_coordinates(poses_b, skeleton, batch_size=4096)
    return _Pairs(coords_a, coords_b, poses_a, poses_b, rotation_change_deg)


def _instructions(pairs: _Pairs, raws, seed: int, variant: str, options: InstructionOptions | None) -> list[str]:
    options = _resolve(variant, options)
    generator = _generator(seed, variant)
    raw, raw_a, raw_b = raws if raws is not None else (None, None, None)
    codes = compute_paircodes(pairs.coords_a, pairs.coords_b, pairs.poses_a, pairs.poses_b, generator,
                              noise=options.noise, rotation_change_deg=pairs.rotation,
                              raw=raw, raw_a=raw_a, raw_b=raw_b)
    return instructions_from_paircodes(codes, options, generator)


def instruct_pairs(
    poses_a: torch.Tensor | np.ndarray,
    poses_b: torch.Tensor | np.ndarray,
    body_model,
    seed: int = 0,
    variant: str = "default",
    rotation_change_deg: float | Sequence[float] | np.ndarray | torch.Tensor | None = None,
    *,
    in_sequence: bool = False,
    options: InstructionOptions | None = None,
) -> list[str]:
    """One instruction per pair: what to change to go from pose A to pose B.

    Args:
        poses_a, poses_b: (N, 22 | 52 | 55, 3) SMPL-X axis-angles (or flat), pose A and pose B of each pair.
        body_model: a `BodyModel` (only its mean-shape skeleton is used, batched).
        seed: same seed, same pairs -> same instructions.
        variant: "default", "simplified" or "short" (`VARIANTS`).
        rotation_change_deg: heading change from A to B in degrees, positive = turning to the body's
            left: one number for all pairs or one per pair (NaN: that pair is not in sequence). When
            given, a first sentence says the whole-body turn ("Turn a quarter to your left.").
        in_sequence: with no `rotation_change_deg`, take the heading change from the poses' own global
            orientations (A and B in one world frame, e.g. frames of one sequence).
        options: explicit options instead of a named variant (e.g. `CANONICAL`).
    """
    pairs = _prepare(poses_a, poses_b, body_model, rotation_change_deg, in_sequence)
    return _instructions(pairs, None, seed, variant, options)


def instruction_variants(
    poses_a: torch.Tensor | np.ndarray,
    poses_b: torch.Tensor | np.ndarray,
    body_model,
    seed: int = 0,
    rotation_change_deg: float | Sequence[float] | np.ndarray | torch.Tensor | None = None,
    *,
    in_sequence: bool = False,
) -> list[list[str]]:
    """Three instructions per pair (default, simplified, short), measured once. Instruction j of pair i
    equals `instruct_pairs(poses_a, poses_b, body_model, seed, list(VARIANTS)[j], rotation_change_deg)[i]`."""
    pairs = _prepare(poses_a, poses_b, body_model, rotation_change_deg, in_sequence)
    raws = (measure_paircodes(pairs.coords_a, pairs.coords_b, pairs.poses_a, pairs.poses_b),
            measure_posecodes(pairs.coords_a, pairs.poses_a), measure_posecodes(pairs.coords_b, pairs.poses_b))
    per_variant = [_instructions(pairs, raws, seed, v, None) for v in VARIANTS]
    return [list(texts) for texts in zip(*per_variant, strict=True)]


def paircodes_of_pairs(
    poses_a: torch.Tensor | np.ndarray,
    poses_b: torch.Tensor | np.ndarray,
    body_model,
    seed: int = 0,
    variant: str = "default",
    noise: bool = True,
    rotation_change_deg: float | Sequence[float] | np.ndarray | torch.Tensor | None = None,
) -> Paircodes:
    """The paircodes behind `instruct_pairs(poses_a, poses_b, body_model, seed, variant)` (same noise)."""
    pairs = _prepare(poses_a, poses_b, body_model, rotation_change_deg, False)
    return compute_paircodes(pairs.coords_a, pairs.coords_b, pairs.poses_a, pairs.poses_b,
                             _generator(seed, variant), noise=noise, rotation_change_deg=pairs.rotation)

