"""Statements of one pose and the steps between selection and wording: ripple effects (transitive
and statistical), logical implications, entity / symmetry aggregation, polishing, and the
interpretation / focus aggregations that build multi-subject or multi-predicate pieces.

A `Statement` is the 5-slot unit (side1, part1, interpretation, side2, part2) plus its kind; sides
are "left", "right", "both" (a plural part) or None (a central part). Statements are created in a
canonical form: a code comparing the same part on both sides always has the left part as subject.

Randomness comes from a `random.Random` passed in; with `rng=None` every step is deterministic and
left/right symmetric (the *canonical* mode used to test the left/right flip of captions).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import NamedTuple

# ----------------------------------------------------------------------------------------- statements


class Statement(NamedTuple):
    side1: str | None
    part1: str
    interp: str
    side2: str | None
    part2: str | None
    kind: str
    rare: bool = False

    @property
    def key(self) -> tuple:
        """The statement's meaning (without kind / rarity)."""
        return (self.side1, self.part1, self.interp, self.side2, self.part2)


class Piece(NamedTuple):
    """What one clause says: one or several subjects sharing the listed predicates."""

    subjects: tuple[tuple[str | None, str], ...]
    predicates: tuple[tuple[str, str, str | None, str | None], ...]  # (interp, kind, side2, part2)


REVERSED = {"above": "below", "below": "above", "front": "behind", "behind": "front",
            "at_left": "at_right", "at_right": "at_left"}
ORDER_FAMILIES = {"above": "y", "below": "y", "front": "z", "behind": "z", "at_left": "x", "at_right": "x"}
POSITIVE = ("above", "front", "at_left")  # canonical direction of each family

ENTITIES = {
    frozenset(("hand", "elbow")): "arm",
    frozenset(("foot", "knee")): "leg",
    frozenset(("forearm", "upperarm")): "arm",
    frozenset(("shin", "thigh")): "leg",
}
"""Two parts of the same side that together make a bigger one (the left hand and elbow: the left arm)."""

SIDE_SWAP = {"left": "right", "right": "left"}


def swap_sides(s: Statement) -> Statement:
    """The same fact of a same-part left/right statement, said from the other side."""
    return s._replace(side1=s.side2, side2=s.side1, interp=REVERSED.get(s.interp, s.interp))


def canonical(s: Statement) -> Statement:
    """Same-part pairs with the right side as subject are re-said with the left side as subject."""
    if s.part1 == s.part2 and s.side1 == "right" and s.side2 == "left":
        return swap_sides(s)
    return s


def mirror(s: Statement) -> Statement:
    """The statement about the left/right mirrored pose (canonical form)."""
    flip = {"left": "right", "right": "left"}
    interp = {"at_left": "at_right", "at_right": "at_left"}.get(s.interp, s.interp)
    for a, b in (("left", "right"), ("right", "left")):
        if interp.endswith(" " + a) or f" {a} " in interp:
            interp = interp.replace(a, "\0").replace(b, a).replace("\0", b)
            break
    return canonical(s._replace(side1=flip.get(s.side1, s.side1), side2=flip.get(s.side2, s.side2), interp=interp))


# ------------------------------------------------------------------------------------ ripple effects


def _entity(side: str | None, part: str | None) -> tuple[str | None, str | None]:
    return (side, part)


def transitive_ripple(statements: list[Statement]) -> list[Statement]:
    """Drop order relations implied by two others of the same family (a above b, b above c: drop
    a above c). Only relative-position statements take part."""
    edges: dict[str, set[tuple]] = {"x": set(), "y": set(), "z": set()}
    for s in statements:
        family = ORDER_FAMILIES.get(s.interp)
        if family is None or s.part2 is None or not s.kind.startswith("relative"):
            continue
        a, b = _entity(s.side1, s.part1), _entity(s.side2, s.part2)
        edges[family].add((a, b) if s.interp in POSITIVE else (b, a))
    implied = set()
    for family, rel in edges.items():
        successors: dict[tuple, set[tuple]] = {}
        for a, b in rel:
            successors.setdefault(a, set()).add(b)
        for a, c in rel:
            if any(c in successors.get(b, ()) for b in successors.get(a, ()) if b != c):
                implied.add((family, a, c))
    out = []
    for s in statements:
        family = ORDER_FAMILIES.get(s.interp)
        if family is not None and s.part2 is not None and s.kind.startswith("relative"):
            a, b = _entity(s.side1, s.part1), _entity(s.side2, s.part2)
            edge = (a, b) if s.interp in POSITIVE else (b, a)
            if (family, *edge) in implied:
                continue
        out.append(s)
    return out


Pattern = tuple[str | None, str, str, str | None, str | None]


def _rule(conditions: Iterable[Pattern], removed: Iterable[Pattern]) -> tuple[tuple[Pattern, ...], tuple[Pattern, ...]]:
    return tuple(conditions), tuple(removed)


_L, _R = "left", "right"
STATISTICAL_RULES_LEFT = (
    _rule([(_L, "hand", "above", None, "neck")], [(_L, "hand", "above", _L, "shoulder")]),
    _rule([(_L, "knee", "right angle", None, None), (_L, "thigh", "vertical", None, None)],
          [(_L, "foot", "behind", None, "torso")]),
    _rule([(_L, "foot", "behind", _R, "foot"), (_L, "foot", "front", None, "torso")],
          [(_R, "foot", "front", None, "torso")]),
    _rule([(_L, "foot", "front", _R, "foot"), (_L, "foot", "behind", None, "torso")],
          [(_R, "foot", "behind", None, "torso")]),
    _rule([(_L, "hand", "above", _L, "shoulder"), (_R, "hand", "below", _R, "hip")],
          [(_L, "hand", "wide", _R, "hand"), (_L, "shoulder", "above", _R, "shoulder"),
           (_L, "elbow", "above", _R, "elbow"), (_L, "hand", "above", _R, "hand")]),
    _rule([(_L, "hand", "below", _L, "hip"), (_R, "upperarm", "horizontal", None, None)],
          [(_L, "elbow", "below", _R, "elbow"), (_L, "hand", "below", _R, "hand")]),
    _rule([(_L, "hand", "close", _R, "hand"), (_L, "hand", "above", _L, "shoulder")],
          [(_R, "hand", "above", _R, "shoulder")]),
    _rule([(_L, "hand", "close", _R, "hand"), (_L, "hand", "above", None, "neck")],
          [(_R, "hand", "above", _R, "shoulder"), (_R, "hand", "above", None, "neck")]),
    _rule([(_L, "hand", "close", _R, "hand"), (_L, "hand", "below", _L, "hip")],
          [(_R, "hand", "below", _R, "hip")]),
    _rule([(_L, "foot", "close", _R, "foot"), (_L, "foot", "behind", None, "torso")],
          [(_R, "foot", "behind", None, "torso")]),
    _rule([(_L, "elbow", "above", _R, "elbow"), (_L, "hand", "below", _L, "hip")],
          [(_R, "hand", "below", _R, "hip")]),
    _rule([(_L, "hand", "below", _R, "hand"), (_L, "hand", "above", _L, "shoulder")],
          [(_R, "hand", "above", _R, "shoulder"), (_R, "hand", "above", None, "neck")]),
    _rule([(_L, "hand", "above", None, "neck"), (_R, "hand", "below", _R, "hip")],
          [(_L, "hand", "wide", _R, "hand"), (_L, "elbow", "above", _R, "elbow"), (_L, "hand", "above", _R, "hand")]),
    _rule([(_L, "hand", "above", _R, "hand"), (_L, "hand", "below", _L, "hip")],
          [(_R, "hand", "below", _R, "hip")]),
    _rule([(_L, "hand", "front", _R, "hand"), (_L, "hand", "behind", None, "torso")],
          [(_R, "hand", "behind", None, "torso")]),
    _rule([(_L, "upperarm", "vertical", None, None), (_L, "forearm", "horizontal", None, None)],
          [(_L, "elbow", "right angle", None, None)]),
    _rule([(_L, "thigh", "vertical", None, None), (_L, "shin", "vertical", None, None)],
          [(_L, "knee", "straight", None, None)]),
    _rule([(_L, "knee", "behind", _R, "knee"), (_L, "thigh", "horizontal", None, None)],
          [(_L, "foot", "behind", None, "torso")]),
    _rule([(_L, "knee", "front", _R, "knee"), (_L, "thigh", "vertical", None, None)],
          [(_R, "foot", "behind", None, "torso")]),
)
"""Statistical ripple rules, declared for the left side (mirrored automatically): when all
conditions hold on the selected statements, the removed statements are dropped if they are still
there after entity / symmetry aggregation (they are very likely given the conditions)."""


def _pattern_statement(p: Pattern) -> Statement:
    return Statement(p[0], p[1], p[2], p[3], p[4], kind="")


def _mirrored_rules(rules) -> tuple:
    out = []
    for conditions, removed in rules:
        out.append((conditions, removed))
        out.append((tuple(mirror(_pattern_statement(c)).key for c in conditions),
                    tuple(mirror(_pattern_statement(r)).key for r in removed)))
    return tuple((frozenset(canonical(_pattern_statement(c)).key for c in cond),
                  frozenset(canonical(_pattern_statement(r)).key for r in rem)) for cond, rem in out)


STATISTICAL_RULES = _mirrored_rules(STATISTICAL_RULES_LEFT)

IMPLICATIONS_LEFT = (
    _rule([(_L, "hand", "above", None, "head")],
          [(_L, "hand", "above", None, "neck"), (_L, "hand", "above", _L, "shoulder")]),
    _rule([(_L, "hand", "above", None, "neck")], [(_L, "hand", "above", _L, "shoulder")]),
)
"""Statements that follow from another one for any upright or tilted body (the hand above the head
is above the neck): applied in every variant, so no caption says both."""
IMPLICATIONS = _mirrored_rules(IMPLICATIONS_LEFT)


def rules_to_remove(raw_keys: set[tuple], rules) -> set[tuple]:
    """Keys removed by the rules whose conditions all hold among `raw_keys`."""
    removed: set[tuple] = set()
    for conditions, targets in rules:
        if conditions <= raw_keys:
            removed |= targets
    return removed


def apply_implications(statements: list[Statement]) -> list[Statement]:
    removed = rules_to_remove({s.key for s in statements}, IMPLICATIONS)
    return [s for s in statements if s.key not in removed] if removed else statements


# -------------------------------------------------------------------------------------- aggregations


def _take(rng: random.Random | None, probability: float) -> bool:
    return rng is None or rng.random() < probability


def _dedupe(statements: list[Statement]) -> list[Statement]:
    seen, out = set(), []
    for s in statements:
        if s.key not in seen:
            seen.add(s.key)
            out.append(s)
    return out


def entity_aggregation(statements: list[Statement], rng: random.Random | None, probability: float) -> list[Statement]:
    """Merge two statements on parts that make one entity ("left hand and left elbow below X":
    "left arm below X"); the second parts must be equal or make an entity too (or vice versa)."""
    out = list(statements)
    used = [False] * len(out)
    merged = []
    for i in range(len(out)):
        if used[i]:
            continue
        a = out[i]
        for j in range(i + 1, len(out)):
            if used[j]:
                continue
            b = out[j]
            if (a.side1, a.interp, a.side2) != (b.side1, b.interp, b.side2) or a.side1 not in ("left", "right"):
                continue
            if (a.part1 == a.part2) != (b.part1 == b.part2):
                # a same-part left/right statement could be said from either side: merging it with a
                # one-sided statement would depend on that arbitrary choice
                continue
            p1 = ENTITIES.get(frozenset((a.part1, b.part1))) if a.part1 != b.part1 else None
            p2 = ENTITIES.get(frozenset((a.part2, b.part2))) if a.part2 != b.part2 and a.part2 and b.part2 else None
            if p1 and (a.part2 == b.part2 or p2):
                new = a._replace(part1=p1, part2=p2 or a.part2, rare=a.rare or b.rare)
            elif a.part1 == b.part1 and p2:
                new = a._replace(part2=p2, rare=a.rare or b.rare)
            else:
                continue
            if not _take(rng, probability):
                continue
            used[i] = used[j] = True
            merged.append((i, new))
            break
    result = []
    merged_at = dict(merged)
    for i, s in enumerate(out):
        if i in merged_at:
            result.append(merged_at[i])
        elif not used[i]:
            result.append(s)
    return _dedupe(result)


def _pair_merge(statements: list[Statement], key_fn, merge_fn, rng, probability) -> list[Statement]:
    """Merge the pairs of statements that share `key_fn(s)` (a key is None: not mergeable)."""
    groups: dict[tuple, list[int]] = {}
    for i, s in enumerate(statements):
        key = key_fn(s)
        if key is not None:
            groups.setdefault(key, []).append(i)
    replace: dict[int, Statement] = {}
    drop: set[int] = set()
    for indices in groups.values():
        if len(indices) == 2 and _take(rng, probability):
            i, j = indices
            replace[i] = merge_fn(statements[i], statements[j])
            drop.add(j)
    return _dedupe([replace.get(i, s) for i, s in enumerate(statements) if i not in drop])


_LR = ("left", "right")


def symmetry_aggregation(statements: list[Statement], rng: random.Random | None, probability: float) -> list[Statement]:
    """Say facts true on both sides once ("both hands are raised"): same part, interpretation and
    second part on the left and on the right. Three passes, each pairing at most two statements:
    same second part (or none: "both hands are above the left knee"); mirrored second parts ("the
    hands are close to the knees"); the
    same subject near the same part on both sides ("the left hand is close to both knees")."""

    def same_object(s):
        if s.side1 in _LR and s.part1 != s.part2:
            return (s.part1, s.interp, s.side2, s.part2, s.kind)
        return None

    def mirrored_object(s):
        if s.side1 in _LR and s.side2 in _LR and s.part1 != s.part2:
            return (s.part1, s.interp, s.part2, s.kind, s.side1 == s.side2)
        return None

    def both_objects(s):
        if s.side2 in _LR and s.part1 != s.part2:
            return (s.side1, s.part1, s.interp, s.part2, s.kind)
        return None

    statements = _pair_merge(statements, same_object, lambda a, b: a._replace(side1="both", rare=a.rare or b.rare),
                             rng, probability)
    statements = _pair_merge(statements, mirrored_object,
                             lambda a, b: a._replace(side1="both", side2="both", rare=a.rare or b.rare),
                             rng, probability)
    return _pair_merge(statements, both_objects, lambda a, b: a._replace(side2="both", rare=a.rare or b.rare),
                       rng, probability)


def polish(statements: list[Statement], rng: random.Random | None, plural_kinds=("distance",)) -> list[Statement]:
    """Same-part left/right statements: distances become plural 1-component statements ("the hands
    are close together", p = 0.5), orders are said from either side (p = 0.5, so the left side is not
    always first). Canonical mode: always plural, always the positive direction (above, in front)."""
    out = []
    for s in statements:
        if s.part1 == s.part2 and s.side1 in _LR and s.side2 in _LR:
            if s.kind in plural_kinds and (rng is None or rng.random() < 0.5):
                s = s._replace(side1="both", side2=None, part2=None)
            elif s.interp in REVERSED:
                if rng is None:
                    if s.interp not in POSITIVE:
                        s = swap_sides(s)
                elif rng.random() < 0.5:
                    s = swap_sides(s)
        out.append(s)
    return out


def _subject_of(s: Statement) -> tuple[str | None, str]:
    return (s.side1, s.part1)


def build_pieces(
    statements: list[Statement],
    rng: random.Random | None,
    probability: float,
    aggregate: bool,
    part_rank: dict[str, int],
    max_group: int = 3,
    first_kinds: dict[str, int] | None = None,
) -> list[Piece]:
    """Turn statements into pieces; with `aggregate`, share predicates between subjects
    (interpretation-based: "the left knee and the right elbow are slightly bent") and subjects
    between predicates (focus-based: "the left hand is above X and behind Y"). Each statement is used
    in at most one aggregation; candidate groups are visited in random order (canonical: interpretation
    groups first, then focus groups, in a fixed order, without size limit). Predicates of the kinds in
    `first_kinds` come first in a focus group, in that order ("kneeling and bent forward")."""
    singles = [Piece((_subject_of(s),), ((s.interp, s.kind, s.side2, s.part2),)) for s in statements]
    if not aggregate or len(statements) < 2:
        return singles
    side_rank = {"left": 0, "both": 1, None: 1, "right": 2}

    def subject_key(subject):
        return (part_rank.get(subject[1], 99), side_rank.get(subject[0], 1))

    first = first_kinds or {}

    def predicate_key(p):
        return (first.get(p[1], len(first)), p[1], p[0], part_rank.get(p[3], 99) if p[3] else -1,
                side_rank.get(p[2], 1))

    candidates: list[tuple[str, tuple, list[int]]] = []
    by_interp: dict[tuple, list[int]] = {}
    by_subject: dict[tuple, list[int]] = {}
    for i, s in enumerate(statements):
        if s.part1 != "body":
            by_interp.setdefault((s.interp, s.side2, s.part2), []).append(i)
        by_subject.setdefault(_subject_of(s), []).append(i)
    for key, idx in by_interp.items():
        if len({_subject_of(statements[i]) for i in idx}) == len(idx) >= 2:
            candidates.append(("interp", key, idx))
    for key, idx in by_subject.items():
        if len(idx) >= 2:
            candidates.append(("focus", key, idx))
    if rng is not None:
        rng.shuffle(candidates)
    used = [False] * len(statements)
    pieces: list[tuple[int, Piece]] = []
    for mode, _, idx in candidates:
        free = [i for i in idx if not used[i]]
        if len(free) < 2 or not _take(rng, probability):
            continue
        if rng is not None and len(free) > max_group:
            free = sorted(rng.sample(free, max_group))
        for i in free:
            used[i] = True
        group = [statements[i] for i in free]
        if mode == "interp":
            subjects = tuple(sorted({_subject_of(s) for s in group}, key=subject_key))
            s0 = group[0]
            piece = Piece(subjects, ((s0.interp, s0.kind, s0.side2, s0.part2),))
        else:
            predicates = tuple(sorted(((s.interp, s.kind, s.side2, s.part2) for s in group), key=predicate_key))
            piece = Piece((_subject_of(group[0]),), predicates)
        pieces.append((free[0], piece))
    pieces += [(i, singles[i]) for i in range(len(statements)) if not used[i]]
    pieces.sort(key=lambda x: x[0])
    return [p for _, p in pieces]
