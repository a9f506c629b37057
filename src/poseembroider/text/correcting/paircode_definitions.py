"""The paircode tables: pair kinds (which measure is compared, categories, thresholds, noise), the
elementary paircodes (joint sets, eligibility), the super-paircodes (recipes over paircodes and over
the posecodes of A and B), the facts about pose B that an instruction may state, the posture changes,
and the whole-body rotation bands. Data only; `paircodes.py` computes them, `instructions.py` words them.

Conventions (captioning frame of `captioning/coordinates.py`: y up, +z the way the body faces, +x the
body's LEFT, metres and degrees). A paircode value is measure(A) - measure(B), or for positions the
coordinate of a joint in A minus the same coordinate in B; categories say how B differs from A, which
is what the instruction asks for ("higher": the joint is higher in B, so raise it). Left and right are
always the body's own.

Every category of a pair kind has a direction and a magnitude (1 slightly, 2 plainly, 3 much); the
middle category "ignored" (no change worth saying) separates the two directions. Entity aggregation
merges two paircodes of the same direction and keeps the larger magnitude.

Thresholds, joint sets and eligibility follow `shared/reference/captioning.md` §3.1-3.4 (PoseFix /
PoseScript `main`). Additions of ours: posture changes (sit down, kneel, lie down, stand up: a
super-posecode of B that A does not have, or the reverse), and "the hand above the head" as a fact
about B when A's hand was not above it.
"""

from __future__ import annotations

from dataclasses import dataclass

from poseembroider.text.captioning.posecode_definitions import (
    KINDS,
    POSECODE_INDEX,
    POSECODES,
    SIDES,
    SUPER_POSECODE_INDEX,
    SUPER_POSECODES,
    Part,
)

IGNORED = "ignored"

# ----------------------------------------------------------------------------------------- pair kinds


@dataclass(frozen=True)
class PairKind:
    """One compared measure, binned into ordered categories (low -> high) like a posecode kind.

    `measure` is "difference" (a posecode kind measured on A and on B, `base_kind`, A - B) or
    "position" (coordinate `axis` of one joint in A minus in B).
    """

    name: str
    measure: str  # "difference" | "position"
    base_kind: str | None  # posecode kind compared ("difference")
    axis: int | None  # coordinate compared ("position")
    categories: tuple[str, ...]
    thresholds: tuple[float, ...]
    max_noise: float
    unit: str
    directions: tuple[str | None, ...]  # per category; None for "ignored"
    magnitudes: tuple[int, ...]  # per category; 0 for "ignored"

    def __post_init__(self) -> None:
        n = len(self.categories)
        if len(self.thresholds) != n - 1 or list(self.thresholds) != sorted(self.thresholds):
            raise ValueError(f"pair kind {self.name}: needs {n - 1} increasing thresholds")
        if len(self.directions) != n or len(self.magnitudes) != n:
            raise ValueError(f"pair kind {self.name}: one direction and magnitude per category")
        if self.categories.count(IGNORED) != 1:
            raise ValueError(f"pair kind {self.name}: exactly one {IGNORED!r} category")

    @property
    def ignored_index(self) -> int:
        return self.categories.index(IGNORED)


def _kind(name, measure, base_kind, axis, low, high, thresholds, max_noise, unit, magnitudes=(2, 1)):
    """Symmetric kind: `low` / `high` are (category names, direction) from the extreme inwards."""
    low_names, low_dir = low
    high_names, high_dir = high
    categories = (*low_names, IGNORED, *reversed(high_names))
    mags = tuple(magnitudes)
    return PairKind(
        name, measure, base_kind, axis, categories, thresholds, max_noise, unit,
        directions=(low_dir,) * len(low_names) + (None,) + (high_dir,) * len(high_names),
        magnitudes=mags[: len(low_names)] + (0,) + tuple(reversed(mags[: len(high_names)])),
    )


PAIR_KINDS: dict[str, PairKind] = {
    k.name: k
    for k in (
        # A - B < 0: B's angle is larger (straighter), so B is bent less than A
        _kind("pair_angle", "difference", "angle", None,
              (("bent much less", "bent less", "bent slightly less"), "less"),
              (("bent much more", "bent more", "bent slightly more"), "more"),
              (-80.0, -45.0, -18.0, 18.0, 45.0, 80.0), 5.0, "deg", magnitudes=(3, 2, 1)),
        _kind("pair_distance", "difference", "distance", None,
              (("farther", "slightly farther"), "farther"), (("closer", "slightly closer"), "closer"),
              (-0.40, -0.10, 0.10, 0.40), 0.05, "m"),
        _kind("pair_x", "position", None, 0,
              (("more to left", "slightly more to left"), "left"),
              (("more to right", "slightly more to right"), "right"),
              (-0.40, -0.15, 0.15, 0.40), 0.05, "m"),
        _kind("pair_y", "position", None, 1,
              (("higher", "slightly higher"), "up"), (("lower", "slightly lower"), "down"),
              (-0.40, -0.15, 0.15, 0.40), 0.05, "m"),
        _kind("pair_z", "position", None, 2,
              (("more to front", "slightly more to front"), "front"),
              (("more to back", "slightly more to back"), "back"),
              (-0.40, -0.15, 0.15, 0.40), 0.05, "m"),
        _kind("pair_forward_incline", "difference", "body_forward_incline", None,
              (("more forward", "slightly more forward"), "forward"),
              (("more backward", "slightly more backward"), "backward"),
              (-45.0, -20.0, 20.0, 45.0), 5.0, "deg"),
        # body_twist > 0: torso turned to the body's right
        _kind("pair_twist", "difference", "body_twist", None,
              (("twist more right", "twist slightly more right"), "right"),
              (("twist more left", "twist slightly more left"), "left"),
              (-45.0, -20.0, 20.0, 45.0), 5.0, "deg"),
        # body_side_lean > 0: leaning to the body's left
        _kind("pair_side_lean", "difference", "body_side_lean", None,
              (("lean more left", "lean slightly more left"), "left"),
              (("lean more right", "lean slightly more right"), "right"),
              (-30.0, -15.0, 15.0, 30.0), 5.0, "deg"),
        # head_pitch > 0: chin down
        _kind("pair_head_pitch", "difference", "head_pitch", None,
              (("head more bowed",), "down"), (("head more raised",), "up"),
              (-30.0, 30.0), 5.0, "deg"),
        # head_yaw > 0: head turned to the body's left
        _kind("pair_head_yaw", "difference", "head_yaw", None,
              (("head more left", "head slightly more left"), "left"),
              (("head more right", "head slightly more right"), "right"),
              (-30.0, -15.0, 15.0, 30.0), 5.0, "deg"),
    )
}
"""Every pair kind by name (value = measure(A) - measure(B))."""

for _k in PAIR_KINDS.values():
    if _k.base_kind is not None and _k.base_kind not in KINDS:
        raise ValueError(f"pair kind {_k.name}: unknown posecode kind {_k.base_kind}")


# ------------------------------------------------------------------------------------ elementary codes


@dataclass(frozen=True)
class PaircodeSpec:
    """One elementary paircode: a pair kind on a joint set, with the categories that may be said."""

    kind: str
    joints: tuple[str, ...]  # caption joint names
    subject: Part
    object: Part | None = None
    acceptable: tuple[str, ...] = ()  # said (skippable); none of them is rare
    support_1: tuple[str, ...] = ()  # read by super-paircodes only, never said

    @property
    def name(self) -> str:
        return f"{self.kind}:{'/'.join(self.joints)}"

    def eligibility(self, category: str) -> int:
        if category == IGNORED or category not in self.acceptable or category in self.support_1:
            return 0
        return 1


def _said(kind: str) -> tuple[str, ...]:
    return tuple(c for c in PAIR_KINDS[kind].categories if c != IGNORED)


def _build_paircodes() -> tuple[PaircodeSpec, ...]:
    codes = []
    for s in SIDES:
        codes.append(PaircodeSpec("pair_angle", (f"{s}_hip", f"{s}_knee", f"{s}_ankle"), (s, "knee"),
                                  acceptable=_said("pair_angle")))
    for s in SIDES:
        codes.append(PaircodeSpec("pair_angle", (f"{s}_shoulder", f"{s}_elbow", f"{s}_wrist"), (s, "elbow"),
                                  acceptable=_said("pair_angle")))
    # distances surface only through the super-paircodes (support I)
    for part in ("elbow", "hand", "knee", "foot"):
        codes.append(PaircodeSpec("pair_distance", (f"left_{part}", f"right_{part}"), ("both", part),
                                  support_1=_said("pair_distance")))
    for part in ("elbow", "hand", "knee", "foot"):
        for s in SIDES:
            codes.append(PaircodeSpec("pair_distance", (f"{s}_{part}", "torso"), (s, part), (None, "torso"),
                                      support_1=_said("pair_distance")))
    for kind, parts in (("pair_x", ("elbow", "hand", "knee", "foot")),
                        ("pair_y", ("shoulder", "elbow", "hand", "knee", "foot")),
                        ("pair_z", ("shoulder", "elbow", "hand", "knee", "foot"))):
        for part in parts:
            for s in SIDES:
                codes.append(PaircodeSpec(kind, (f"{s}_{part}",), (s, part), acceptable=_said(kind)))
    incline = ("left_shoulder", "right_shoulder", "pelvis", "left_ankle", "right_ankle")
    codes.append(PaircodeSpec("pair_forward_incline", incline, (None, "body"),
                              acceptable=_said("pair_forward_incline")))
    codes.append(PaircodeSpec("pair_twist", incline, (None, "torso"), acceptable=_said("pair_twist")))
    codes.append(PaircodeSpec("pair_side_lean", incline, (None, "body"), acceptable=_said("pair_side_lean")))
    codes.append(PaircodeSpec("pair_head_pitch", ("neck", "head"), (None, "head"), acceptable=_said("pair_head_pitch")))
    codes.append(PaircodeSpec("pair_head_yaw", ("pelvis", "head"), (None, "head"), acceptable=_said("pair_head_yaw")))
    order = {k: i for i, k in enumerate(PAIR_KINDS)}
    return tuple(sorted(codes, key=lambda c: order[c.kind]))  # stable: declaration order within a kind


PAIRCODES: tuple[PaircodeSpec, ...] = _build_paircodes()
"""The elementary paircodes (49), grouped by kind."""
PAIRCODE_INDEX: dict[str, int] = {c.name: i for i, c in enumerate(PAIRCODES)}


def pair_code_name(kind: str, *joints: str) -> str:
    name = f"{kind}:{'/'.join(joints)}"
    if name not in PAIRCODE_INDEX:
        raise KeyError(f"no elementary paircode {name!r}")
    return name


# ---------------------------------------------------------------------------------- super-paircodes

Source = str
"""Where a recipe condition reads its category: "pair" (paircodes), "A" or "B" (posecodes of A / B)."""
Condition = tuple[Source, str, tuple[str, ...]]
"""(source, code name, categories any of which satisfies the condition)."""


@dataclass(frozen=True)
class SuperPaircodeSpec:
    """A change said as one statement when all conditions of any one recipe hold. All are rare (always
    said). `silences`: (paircode, categories) made silent when this super-paircode is produced
    (support II)."""

    name: str
    subject: Part
    object: Part | None
    interpretation: str
    recipes: tuple[tuple[Condition, ...], ...]
    silences: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _build_super_paircodes() -> tuple[SuperPaircodeSpec, ...]:
    supers = []
    less = ("bent much less", "bent less", "bent slightly less")
    for limb, joints in (("leg", ("hip", "knee", "ankle")), ("arm", ("shoulder", "elbow", "wrist"))):
        for s in SIDES:
            names = tuple(f"{s}_{j}" for j in joints)
            pair = pair_code_name("pair_angle", *names)
            posecode = f"angle:{'/'.join(names)}"
            supers.append(SuperPaircodeSpec(
                f"straighten {s} {limb}", (s, limb), None, "straighten",
                ((("pair", pair, less), ("B", posecode, ("slightly bent",))),
                 (("pair", pair, less), ("B", posecode, ("straight",)))),
                silences=((pair, less),)))
    for part in ("elbow", "hand", "knee", "foot"):
        pair = pair_code_name("pair_distance", f"left_{part}", f"right_{part}")
        posecode = f"distance:left_{part}/right_{part}"
        for category, interpretation, pose, state in (
            ("farther", "farther apart", "A", "close"),
            ("slightly farther", "slightly farther apart", "A", "close"),
            ("closer", "closer together", "B", "close"),
            ("slightly closer", "slightly closer together", "B", "close"),
        ):
            supers.append(SuperPaircodeSpec(
                f"{interpretation} {part}s", ("both", part), None, interpretation,
                ((("pair", pair, (category,)), (pose, posecode, (state,))),)))
    for part in ("elbow", "hand", "knee", "foot"):
        for s in SIDES:
            pair = pair_code_name("pair_distance", f"{s}_{part}", "torso")
            posecode = f"distance:{s}_{part}/torso"
            for category, interpretation, pose in (
                ("farther", "farther from torso", "A"),
                ("slightly farther", "slightly farther from torso", "A"),
                ("closer", "closer to torso", "B"),
                ("slightly closer", "slightly closer to torso", "B"),
            ):
                supers.append(SuperPaircodeSpec(
                    f"{interpretation} {s} {part}", (s, part), (None, "torso"), interpretation,
                    ((("pair", pair, (category,)), (pose, posecode, ("close",))),)))
    return tuple(supers)


SUPER_PAIRCODES: tuple[SuperPaircodeSpec, ...] = _build_super_paircodes()
"""The super-paircodes (52): straighten a limb; hands / elbows / knees / feet apart or together; a
limb part away from or closer to the torso."""
SUPER_PAIRCODE_INDEX: dict[str, int] = {s.name: i for i, s in enumerate(SUPER_PAIRCODES)}

# ----------------------------------------------------------------------------------- posture changes

POSTURES: dict[str, str] = {
    "sitting": "sit down",
    "squatting": "squat down",
    "kneeling": "kneel down",
    "kneeling on left knee": "kneel on left knee",
    "kneeling on right knee": "kneel on right knee",
    "lying on back": "lie on back",
    "lying face down": "lie face down",
    "lying on left side": "lie on left side",
    "lying on right side": "lie on right side",
}
"""Super-posecode of B (absent from A) -> the instruction's interpretation. The reverse change (A in
one of these postures, B in none) is "stand up" when B's knees are (nearly) straight, else "get up"."""
GET_UP = ("stand up", "get up")


# ------------------------------------------------------------------------------------ facts about B

EXTRA_FACTS: tuple[tuple[str, str], ...] = tuple(
    (f"relative_y:{s}_hand/head", "above") for s in SIDES
)
"""Posecode categories of B said as facts only when A's category differs (our addition: the hand
above the head, which turns "raise your arm" into "raise your arm above your head")."""


def fact_tables() -> tuple[list[list[int]], list[list[bool]], list[int]]:
    """Eligibility of B's posecodes as facts: per elementary code and category 0 / 1 / 2 (rare), and
    whether the fact needs A to differ; per super-posecode 0 / 1 / 2."""
    extra = set(EXTRA_FACTS)
    elementary, needs_change = [], []
    for code in POSECODES:
        row, change = [], []
        for category in KINDS[code.kind].categories:
            if category in code.absolute:
                row.append(2 if category in code.rare else 1)
                change.append(False)
            elif (code.name, category) in extra:
                row.append(1)
                change.append(True)
            else:
                row.append(0)
                change.append(False)
        elementary.append(row)
        needs_change.append(change)
    supers = [(2 if s.rare else 1) if s.absolute else 0 for s in SUPER_POSECODES]
    return elementary, needs_change, supers


# ---------------------------------------------------------------------------------- global rotation

ROTATION_CATEGORIES: tuple[str, ...] = (
    "turn around", "turn most of the way right", "turn a quarter right", "turn slightly right", IGNORED,
    "turn slightly left", "turn a quarter left", "turn most of the way left", "turn around",
)
"""Whole-body turn of B with respect to A (yaw change, degrees, positive = turning to the body's
left), low -> high."""
ROTATION_THRESHOLDS: tuple[float, ...] = (-150.0, -120.0, -60.0, -20.0, 20.0, 60.0, 120.0, 150.0)
ROTATION_MAX_NOISE = 10.0


def _check_tables() -> None:
    for sup in SUPER_PAIRCODES:
        for recipe in sup.recipes:
            for source, name, categories in recipe:
                if source == "pair":
                    kind = PAIRCODES[PAIRCODE_INDEX[name]].kind
                    valid = PAIR_KINDS[kind].categories
                elif source in ("A", "B"):
                    valid = KINDS[POSECODES[POSECODE_INDEX[name]].kind].categories
                else:
                    raise ValueError(f"super-paircode {sup.name}: unknown source {source!r}")
                for c in categories:
                    if c not in valid:
                        raise ValueError(f"super-paircode {sup.name}: {name} has no category {c!r}")
    for posture in POSTURES:
        if posture not in SUPER_POSECODE_INDEX:
            raise ValueError(f"posture {posture!r} is not a super-posecode")
    for name, category in EXTRA_FACTS:
        if category not in KINDS[POSECODES[POSECODE_INDEX[name]].kind].categories:
            raise ValueError(f"extra fact {name}: no category {category!r}")
    if len(ROTATION_THRESHOLDS) != len(ROTATION_CATEGORIES) - 1:
        raise ValueError("rotation: one threshold between two categories")


_check_tables()
