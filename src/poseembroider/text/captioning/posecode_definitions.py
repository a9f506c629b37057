"""The posecode tables: kinds (what is measured, categories, thresholds, noise), the elementary
posecodes (joint sets and which categories may be said), and the super-posecodes (recipes over
elementary codes). Data only; `posecodes.py` computes them, `captions.py` words them.

Conventions (captioning frame of `coordinates.py`): y up, +z the way the body faces, +x the body's
LEFT, metres and degrees. A relative-position code on joints (A, B) measures A - B, so "A is at the
right of B" means x_A - x_B is negative: left and right are always the body's own.

Eligibility of a category (per code): not acceptable -> never said (0); acceptable -> may be said and
may be skipped at random (1); rare -> always said (2). Support categories serve the super-posecodes:
type I is never said on its own; type II is silenced only when the super-posecode it feeds is produced.
Absolute categories are the facts the instruction writer may state about a target pose.

The joint sets, thresholds and eligibility flags follow the facts in
`shared/reference/captioning.md` §2.2-2.4 (PoseScript `main`), with these additions of ours:
hand-vs-head height (so "above the head" can be said), body front/left directions and
heights above the ground (for the lying super-posecodes), and the super-posecodes lying on the
back / front / left or right side, sitting and squatting.

Whole-body postures (ours, beyond the original's rules): what a person says first about a body
(kneeling, sitting, lying, squatting, upside down, a torso bent far forward, leaning back or bent
sideways) is a *posture* super-posecode: rare (never skipped) and said first (`SuperPosecodeSpec.posture`).
Their extra recipes read two recipe-only kinds added at the end of `KINDS` (`ADDED_KINDS`: the signed
elevation of the trunk, upper back and thighs, a wider near-the-ground band for knees, pelvis and feet),
without noise: the original kinds, their codes, columns, thresholds and noise draws are untouched (the
same seed draws the same noise for the same codes as before they were added).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SIDES = ("left", "right")


def other_side(side: str) -> str:
    return "right" if side == "left" else "left"


# ----------------------------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class PosecodeKind:
    """One measure ("operator"): a raw scalar per joint set, binned into ordered categories.

    Category i is chosen when value <= thresholds[i] (smallest such i), the last one above all
    thresholds. Noise: a uniform offset in [-max_noise, +max_noise] added before binning.
    """

    name: str
    num_joints: int  # joints per joint set
    categories: tuple[str, ...]  # low -> high; names containing "ignored" are never said
    thresholds: tuple[float, ...]  # len(categories) - 1 increasing values
    max_noise: float
    unit: str  # "deg" or "m"
    description: str

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(self.categories) - 1:
            raise ValueError(
                f"kind {self.name}: {len(self.categories)} categories need {len(self.categories) - 1} thresholds"
            )
        if list(self.thresholds) != sorted(self.thresholds):
            raise ValueError(f"kind {self.name}: thresholds must increase")

    def category_index(self, category: str) -> int:
        try:
            return self.categories.index(category)
        except ValueError:
            raise ValueError(f"kind {self.name!r} has no category {category!r}; it has {self.categories}") from None


_ANGLE = ("completely bent", "bent more", "right angle", "bent less", "slightly bent", "straight")

KINDS: dict[str, PosecodeKind] = {
    k.name: k
    for k in (
        PosecodeKind("angle", 3, _ANGLE, (45.0, 75.0, 105.0, 135.0, 160.0), 5.0, "deg",
                     "angle at the middle joint between the directions to the two others"),
        PosecodeKind("distance", 2, ("close", "shoulder width", "spread", "wide"), (0.20, 0.40, 0.80), 0.05, "m",
                     "Euclidean distance between the two joints"),
        PosecodeKind("relative_x", 2, ("at_right", "ignored_low", "x-aligned", "ignored_high", "at_left"),
                     (-0.15, -0.05, 0.05, 0.15), 0.05, "m", "x_A - x_B (positive: A on the body's left of B)"),
        PosecodeKind("relative_y", 2, ("below", "ignored_low", "y-aligned", "ignored_high", "above"),
                     (-0.15, -0.05, 0.05, 0.15), 0.05, "m", "y_A - y_B (positive: A above B)"),
        PosecodeKind("relative_z", 2, ("behind", "ignored_low", "z-aligned", "ignored_high", "front"),
                     (-0.15, -0.05, 0.05, 0.15), 0.05, "m", "z_A - z_B (positive: A in front of B)"),
        PosecodeKind("segment_orientation", 2, ("vertical", "ignored", "horizontal"), (10.0, 80.0), 5.0, "deg",
                     "angle between the segment A->B and the vertical axis, in [0, 90]"),
        PosecodeKind("on_ground", 1, ("on_ground", "off_ground"), (0.10,), 0.05, "m",
                     "height of the joint above the lowest joint"),
        PosecodeKind("height_above_ground", 1, ("low", "high"), (0.30,), 0.05, "m",
                     "height of the joint above the lowest joint (coarser band, for lying / sitting)"),
        PosecodeKind("body_forward_incline", 5,
                     ("bent backward", "bent slightly backward", "ignored", "bent slightly forward", "bent forward"),
                     (-50.0, -20.0, 20.0, 50.0), 5.0, "deg",
                     "angle of pelvis->mid-shoulders from +y in the y-z plane (positive: forward); "
                     "0 when no ankle is 0.2 m below the shoulders (lying, upside down)"),
        PosecodeKind("body_twist", 5,
                     ("twisted left", "twisted slightly left", "ignored", "twisted slightly right", "twisted right"),
                     (-50.0, -20.0, 20.0, 50.0), 5.0, "deg",
                     "angle of the right->left shoulder line from +x in the x-z plane "
                     "(positive: left shoulder forward, torso turned to the body's right)"),
        PosecodeKind("body_side_lean", 5,
                     ("leaning right", "leaning slightly right", "ignored", "leaning slightly left", "leaning left"),
                     (-30.0, -15.0, 15.0, 30.0), 5.0, "deg",
                     "90 - angle(pelvis->mid-shoulders, +x) (positive: leaning to the body's left)"),
        PosecodeKind("body_front_direction", 6, ("front up", "ignored", "front down"), (45.0, 135.0), 5.0, "deg",
                     "angle between the chest's forward normal and +y (0: lying on the back)"),
        PosecodeKind("body_left_direction", 6, ("left up", "ignored", "left down"), (45.0, 135.0), 5.0, "deg",
                     "angle between the body's right->left axis and +y (180: lying on the left side)"),
        PosecodeKind("head_pitch", 2, ("head tilted back", "ignored", "head bowed"), (-45.0, 30.0), 5.0, "deg",
                     "Euler x of the head rotation relative to the neck's parent frame (positive: chin down)"),
        PosecodeKind("head_yaw", 2,
                     ("head turned right", "head turned slightly right", "ignored", "head turned slightly left",
                      "head turned left"),
                     (-30.0, -15.0, 15.0, 30.0), 5.0, "deg",
                     "Euler y of the head rotation relative to the pelvis (positive: turned to the body's left)"),
        PosecodeKind("head_roll", 2, ("head tilted left", "ignored", "head tilted right"), (-30.0, 30.0), 5.0, "deg",
                     "Euler z of the head rotation relative to the neck's parent frame "
                     "(positive: toward the right shoulder)"),
        # ours, for the whole-body posture recipes (never said on their own)
        PosecodeKind("elevation", 2,
                     ("down", "ignored_low", "slightly down", "level", "slightly up", "ignored_high", "up"),
                     (-50.0, -35.0, -25.0, 25.0, 35.0, 50.0), 0.0, "deg",
                     "signed angle of the segment A->B above the horizontal plane (-90: straight down, 90: up)"),
        PosecodeKind("near_ground", 1, ("near_ground", "off_ground"), (0.20,), 0.0, "m",
                     "height of the joint above the lowest joint (a wider band than on_ground: a kneeling knee "
                     "or a seated pelvis whatever the lowest joint)"),
    )
}
"""Every posecode kind by name. Euler angles: R = Rz Ry Rx (`matrix_to_euler(R, "xyz")`)."""

ADDED_KINDS = ("elevation", "near_ground")
"""Kinds added after the original's (the last ones of `KINDS`, noise-free): their codes come after every
original code, so the original codes' columns and noise draws do not move."""

ROTATION_KINDS = ("head_pitch", "head_yaw", "head_roll")
"""Kinds measured from joint rotations (they need the axis-angle poses, not only coordinates)."""

ALL = "ALL"
"""Shorthand in the tables: every category whose name does not contain "ignored"."""


def describable_categories(kind: str) -> tuple[str, ...]:
    return tuple(c for c in KINDS[kind].categories if "ignored" not in c)


# ------------------------------------------------------------------------------------ elementary codes

Part = tuple[str | None, str]
"""(side, body part) as said in text: side "left", "right", "both" (plural) or None (central part)."""


@dataclass(frozen=True)
class PosecodeSpec:
    """One elementary posecode: a kind measured on a joint set, with per-category eligibility."""

    kind: str
    joints: tuple[str, ...]  # caption joint names (`CAPTION_JOINT_NAMES`)
    subject: Part  # what the text talks about (the focus body part)
    object: Part | None  # second body part of 2-component statements
    acceptable: tuple[str, ...] = ()
    rare: tuple[str, ...] = ()
    support_1: tuple[str, ...] = ()
    support_2: tuple[str, ...] = ()
    absolute: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.kind}:{'/'.join(self.joints)}"

    def eligibility(self, category: str) -> int:
        """0 never said, 1 may be said (skippable), 2 rare (always said); support type I is never said."""
        if "ignored" in category or category not in self.acceptable or category in self.support_1:
            return 0
        return 2 if category in self.rare else 1


class _Table:
    """Builder merging the flags of codes declared several times (a describable code that also
    supports the *aligned* super-posecodes is declared twice)."""

    def __init__(self) -> None:
        self.codes: dict[tuple[str, tuple[str, ...]], dict] = {}

    def add(self, kind: str, joints: tuple[str, ...], subject: Part, object: Part | None = None, **flags) -> None:
        if len(joints) != KINDS[kind].num_joints:
            raise ValueError(f"{kind} needs {KINDS[kind].num_joints} joints, got {joints}")
        key = (kind, joints)
        entry = self.codes.setdefault(key, {"subject": subject, "object": object})
        for flag in ("acceptable", "rare", "support_1", "support_2", "absolute"):
            values = flags.get(flag, ())
            values = describable_categories(kind) if values == ALL else tuple(values)
            for v in values:
                KINDS[kind].category_index(v)  # fail early on typos
            merged = entry.get(flag, ()) + tuple(v for v in values if v not in entry.get(flag, ()))
            entry[flag] = merged
        # a support category is a category the recipes read: it is acceptable by construction
        entry["acceptable"] = entry.get("acceptable", ()) + tuple(
            c for c in entry.get("support_1", ()) + entry.get("support_2", ()) if c not in entry.get("acceptable", ())
        )

    def build(self) -> tuple[PosecodeSpec, ...]:
        return tuple(PosecodeSpec(kind=k, joints=j, **entry) for (k, j), entry in self.codes.items())


# body parts of the *aligned* super-posecodes, as (caption joint, part word)
_ARM_PARTS = ("shoulder", "upperarm", "elbow", "forearm")
_LEG_PARTS = ("hip", "thigh", "knee", "shin")


def aligned_pairs() -> list[tuple[str, str, str, str]]:
    """(side, extremity, other side, part): hands vs the other arm and both legs; feet vs both arms
    and the other leg (48 pairs)."""
    pairs = []
    for side in SIDES:
        for part in _ARM_PARTS:
            pairs.append((side, "hand", other_side(side), part))
        for part in _LEG_PARTS:
            pairs += [(side, "hand", side, part), (side, "hand", other_side(side), part)]
    for side in SIDES:
        for part in _ARM_PARTS:
            pairs += [(side, "foot", side, part), (side, "foot", other_side(side), part)]
        for part in _LEG_PARTS:
            pairs.append((side, "foot", other_side(side), part))
    return pairs


def _build_posecodes() -> tuple[PosecodeSpec, ...]:
    t = _Table()
    L, R = "left", "right"
    # angles at the knees and elbows
    for s in SIDES:
        t.add("angle", (f"{s}_hip", f"{s}_knee", f"{s}_ankle"), (s, "knee"), acceptable=ALL,
              rare=("completely bent",), support_2=("completely bent",),
              absolute=("completely bent", "right angle", "straight"))
    for s in SIDES:
        t.add("angle", (f"{s}_shoulder", f"{s}_elbow", f"{s}_wrist"), (s, "elbow"), acceptable=ALL,
              rare=("completely bent",), absolute=("completely bent", "right angle", "straight"))

    # distances
    t.add("distance", ("left_elbow", "right_elbow"), (L, "elbow"), (R, "elbow"),
          acceptable=("close", "shoulder width", "wide"), rare=("close",), support_1=("shoulder width",),
          absolute=("close",))
    t.add("distance", ("left_hand", "right_hand"), (L, "hand"), (R, "hand"),
          acceptable=("close", "shoulder width", "spread", "wide"), support_1=("shoulder width",),
          absolute=("close",))
    t.add("distance", ("left_knee", "right_knee"), (L, "knee"), (R, "knee"),
          acceptable=("close", "shoulder width", "wide"), rare=("wide",), support_1=("shoulder width",),
          absolute=("close",))
    t.add("distance", ("left_foot", "right_foot"), (L, "foot"), (R, "foot"),
          acceptable=("close", "shoulder width", "wide"), rare=("close",), support_1=("shoulder width",),
          absolute=("close",))
    for s in SIDES:
        t.add("distance", (f"{s}_hand", f"{s}_shoulder"), (s, "hand"), (s, "shoulder"),
              acceptable=("close",), rare=("close",), absolute=("close",))
    for s in SIDES:
        o = other_side(s)
        for side2, part in ((o, "shoulder"), (o, "elbow"), (L, "knee"), (R, "knee")):
            t.add("distance", (f"{s}_hand", f"{side2}_{part}"), (s, "hand"), (side2, part),
                  acceptable=("close",), rare=("close",), support_2=("close",),
                  support_1=("shoulder width", "spread"), absolute=("close",))
    for s in SIDES:
        for side2 in SIDES:
            for part in ("ankle", "foot"):
                t.add("distance", (f"{s}_hand", f"{side2}_{part}"), (s, "hand"), (side2, part),
                      acceptable=("close",), rare=("close",), absolute=("close",))
    for part in ("elbow", "hand", "knee", "foot"):
        for s in SIDES:  # feeds the instruction writer's "closer to the torso"; never said alone
            t.add("distance", (f"{s}_{part}", "torso"), (s, part), (None, "torso"), support_1=("close",))

    # relative positions
    for part in ("shoulder", "elbow", "hand", "knee", "foot"):
        joints = (f"left_{part}", f"right_{part}")
        if part in ("hand", "foot"):
            t.add("relative_x", joints, (L, part), (R, part), acceptable=("at_right",), rare=("at_right",))
        # knees: one knee lower than the other feeds "kneeling on one knee" (either side)
        t.add("relative_y", joints, (L, part), (R, part), acceptable=("below", "above"),
              support_2=("below", "above") if part == "knee" else ())
        t.add("relative_z", joints, (L, part), (R, part), acceptable=("behind", "front"))
    for s in SIDES:
        t.add("relative_y", (f"{s}_hip", f"{s}_knee"), (s, "hip"), (s, "knee"), support_1=("above",))
    for s in SIDES:
        inward = "at_right" if s == "left" else "at_left"
        t.add("relative_x", (f"{s}_hand", f"{s}_shoulder"), (s, "hand"), (s, "shoulder"), acceptable=(inward,))
        t.add("relative_y", (f"{s}_hand", f"{s}_shoulder"), (s, "hand"), (s, "shoulder"), acceptable=("above",))
        t.add("relative_x", (f"{s}_foot", f"{s}_hip"), (s, "foot"), (s, "hip"), acceptable=(inward,), rare=(inward,))
        t.add("relative_y", (f"{s}_foot", f"{s}_hip"), (s, "foot"), (s, "hip"), acceptable=("above",), rare=("above",))
        t.add("relative_y", (f"{s}_wrist", "neck"), (s, "hand"), (None, "neck"), acceptable=("above",))
        t.add("relative_y", (f"{s}_hand", "head"), (s, "hand"), (None, "head"), acceptable=("above",))
        t.add("relative_y", (f"{s}_hand", f"{s}_hip"), (s, "hand"), (s, "hip"), acceptable=("below",))
        t.add("relative_z", (f"{s}_hand", "torso"), (s, "hand"), (None, "torso"), acceptable=("behind",))
        t.add("relative_z", (f"{s}_foot", "torso"), (s, "foot"), (None, "torso"), acceptable=("behind", "front"))

    # support-only codes of the aligned super-posecodes
    for s, extremity, s2, part in aligned_pairs():
        joints = (f"{s}_{extremity}", f"{s2}_{part}")
        subject, obj = (s, extremity), (s2, part)
        described = ("distance", joints) in t.codes  # its "close" is said, and is support II there
        t.add("distance", joints, subject, obj,
              support_1=("shoulder width", "spread") if described else ("close", "shoulder width", "spread"))
        for axis in "xyz":
            t.add(f"relative_{axis}", joints, subject, obj, support_1=(f"{axis}-aligned",))

    # segments: vertical / horizontal
    for s in SIDES:
        t.add("segment_orientation", (f"{s}_hip", f"{s}_knee"), (s, "thigh"), acceptable=("horizontal", "vertical"),
              rare=("horizontal",), absolute=("horizontal",))
        t.add("segment_orientation", (f"{s}_knee", f"{s}_ankle"), (s, "shin"), acceptable=("horizontal", "vertical"),
              rare=("horizontal",), absolute=("horizontal",))
    for s in SIDES:
        t.add("segment_orientation", (f"{s}_shoulder", f"{s}_elbow"), (s, "upperarm"),
              acceptable=("horizontal", "vertical"), rare=("vertical",), absolute=("horizontal", "vertical"))
        t.add("segment_orientation", (f"{s}_elbow", f"{s}_wrist"), (s, "forearm"),
              acceptable=("horizontal", "vertical"), rare=("vertical",), absolute=("horizontal", "vertical"))
    for s in SIDES:
        t.add("segment_orientation", ("pelvis", f"{s}_shoulder"), (None, "torso"), support_1=("horizontal",))
    t.add("segment_orientation", ("pelvis", "neck"), (None, "torso"), acceptable=("vertical",))
    t.add("segment_orientation", ("left_hand", "right_hand"), ("both", "hand"), support_1=("horizontal",))
    t.add("segment_orientation", ("left_foot", "right_foot"), ("both", "foot"), support_1=("horizontal",))

    # contact with the ground
    for s in SIDES:
        t.add("on_ground", (f"{s}_knee",), (s, "knee"), support_1=("on_ground",))
        t.add("on_ground", (f"{s}_foot",), (s, "foot"), support_1=("on_ground",))
    for s in SIDES:
        t.add("on_ground", (f"{s}_hand",), (s, "hand"), acceptable=("on_ground",), absolute=("on_ground",))
    for joint in ("pelvis", "neck"):
        t.add("height_above_ground", (joint,), (None, joint))  # recipes only

    # whole body and head
    incline_joints = ("left_shoulder", "right_shoulder", "pelvis", "left_ankle", "right_ankle")
    t.add("body_forward_incline", incline_joints, (None, "body"), acceptable=ALL)
    t.add("body_twist", incline_joints, (None, "torso"), acceptable=ALL)
    t.add("body_side_lean", incline_joints, (None, "body"), acceptable=ALL)
    frame_joints = ("left_hip", "right_hip", "left_shoulder", "right_shoulder", "pelvis", "neck")
    t.add("body_front_direction", frame_joints, (None, "body"))  # recipes only
    t.add("body_left_direction", frame_joints, (None, "body"))  # recipes only
    t.add("head_pitch", ("neck", "head"), (None, "head"), acceptable=ALL)
    t.add("head_yaw", ("pelvis", "head"), (None, "head"), acceptable=ALL)
    t.add("head_roll", ("neck", "head"), (None, "head"), acceptable=ALL)

    # ours: recipe-only codes of the whole-body postures
    t.add("elevation", ("pelvis", "neck"), (None, "torso"))
    t.add("elevation", ("spine2", "neck"), (None, "back"))  # the upper back: a spine rolled forward
    for s in SIDES:
        t.add("elevation", (f"{s}_hip", f"{s}_knee"), (s, "thigh"))
    for s in SIDES:
        t.add("near_ground", (f"{s}_knee",), (s, "knee"))
    t.add("near_ground", ("pelvis",), (None, "pelvis"))
    for s in SIDES:
        t.add("near_ground", (f"{s}_foot",), (s, "foot"))
    return t.build()


POSECODES: tuple[PosecodeSpec, ...] = _build_posecodes()
"""The elementary posecodes, grouped by kind in the order of first declaration."""


def _sort_by_kind(codes: tuple[PosecodeSpec, ...]) -> tuple[PosecodeSpec, ...]:
    order = {k: i for i, k in enumerate(KINDS)}
    return tuple(sorted(codes, key=lambda c: order[c.kind]))  # stable: declaration order within a kind


POSECODES = _sort_by_kind(POSECODES)
POSECODE_INDEX: dict[str, int] = {c.name: i for i, c in enumerate(POSECODES)}
NUM_ORIGINAL_POSECODES = sum(c.kind not in ADDED_KINDS for c in POSECODES)
"""The original's codes are the first `NUM_ORIGINAL_POSECODES` columns; the added kinds' follow."""


def code_name(kind: str, *joints: str) -> str:
    """Name of an elementary code, checked: `code_name("angle", "left_hip", "left_knee", "left_ankle")`."""
    name = f"{kind}:{'/'.join(joints)}"
    if name not in POSECODE_INDEX:
        raise KeyError(f"no elementary posecode {name!r}")
    return name


# ---------------------------------------------------------------------------------- super-posecodes

Condition = tuple[str, tuple[str, ...]]
"""(elementary code name, categories any of which satisfies the condition)."""


@dataclass(frozen=True)
class SuperPosecodeSpec:
    """A binary code produced when all conditions of any one recipe hold (on binned categories)."""

    name: str
    subject: Part
    object: Part | None
    interpretation: str
    recipes: tuple[tuple[Condition, ...], ...]
    rare: bool
    absolute: bool
    suppresses: tuple[str, ...] = field(default=())  # codes (elementary or super) silenced when produced
    posture: str = ""  # "" | "body" (kneeling, sitting, lying...) | "torso" (bent forward...): said first

    @property
    def eligibility(self) -> int:
        return 2 if self.rare else 1


def _build_super_posecodes() -> tuple[SuperPosecodeSpec, ...]:
    c = code_name
    bent = ("completely bent", "bent more", "right angle", "bent less")
    deeply_bent = ("completely bent", "bent more")
    torso_up = (c("segment_orientation", "pelvis", "neck"), ("vertical", "ignored"))
    facing_level = (c("body_front_direction", *_FRAME), ("ignored",))
    neck_high = (c("height_above_ground", "neck"), ("high",))
    # ours (ADDED_KINDS): the trunk's and thighs' elevation, a wider near-the-ground band
    trunk = c("elevation", "pelvis", "neck")
    not_down = ("ignored_low", "slightly down", "level", "slightly up", "ignored_high", "up")
    trunk_raised = (trunk, ("ignored_high", "up"))  # within ~55 deg of the upward vertical
    trunk_level = (trunk, ("level",))  # within ~25 deg of the horizontal
    trunk_not_down = (trunk, not_down)
    about_level = ("slightly down", "level", "slightly up")  # within ~35 deg of the horizontal

    def thigh(s: str, *categories: str) -> Condition:
        return (c("elevation", f"{s}_hip", f"{s}_knee"), categories)

    def near(joint: str, category: str = "near_ground") -> Condition:
        return (c("near_ground", joint), (category,))

    supers = [
        SuperPosecodeSpec(
            "torso horizontal", (None, "torso"), None, "horizontal",
            (((c("segment_orientation", "pelvis", "left_shoulder"), ("horizontal",)),
              (c("segment_orientation", "pelvis", "right_shoulder"), ("horizontal",))),),
            rare=True, absolute=True),
    ]
    for s in SIDES:
        o = other_side(s)
        lower = (c("relative_y", "left_knee", "right_knee"), ("below" if s == "left" else "above",))
        supers.append(SuperPosecodeSpec(
            f"kneeling on {s} knee", (None, "body"), None, f"kneeling on {s} knee",
            ((lower, (c("on_ground", f"{s}_knee"), ("on_ground",)), (c("on_ground", f"{o}_foot"), ("on_ground",))),
             # ours: the knee near the floor under a thigh pointing down, the other foot near the floor
             (lower, near(f"{s}_knee"), thigh(s, "down"), near(f"{o}_foot"), trunk_raised)),
            rare=True, absolute=False, posture="body"))
    knees_down = tuple((c("on_ground", f"{s}_knee"), ("on_ground",)) for s in SIDES)
    knees_near = tuple(near(f"{s}_knee") for s in SIDES)
    feet_not_ahead = tuple((c("relative_z", f"{s}_foot", "torso"), ("behind", "ignored_low", "z-aligned"))
                           for s in SIDES)
    supers.append(SuperPosecodeSpec(
        "kneeling", (None, "body"), None, "kneeling",
        (tuple((c("relative_y", f"{s}_hip", f"{s}_knee"), ("above",)) for s in SIDES) + knees_down,
         tuple((c("angle", f"{s}_hip", f"{s}_knee", f"{s}_ankle"), ("completely bent",)) for s in SIDES) + knees_down,
         # ours: upright on both knees (thighs down, knees near the floor, whatever the lowest joint)
         knees_near + (thigh("left", "down"), thigh("right", "down"), trunk_raised),
         # ours: sitting back on the heels (feet under or behind the body, not crossed in front of it)
         knees_near + feet_not_ahead + (trunk_raised,)
         + tuple((c("angle", f"{s}_hip", f"{s}_knee", f"{s}_ankle"), deeply_bent) for s in SIDES)),
        rare=True, absolute=False, posture="body",
        suppresses=("kneeling on left knee", "kneeling on right knee", "sitting", "squatting")))
    supers.append(SuperPosecodeSpec(
        "hands shoulder width", ("both", "hand"), None, "shoulder width",
        (((c("distance", "left_hand", "right_hand"), ("shoulder width",)),
          (c("segment_orientation", "left_hand", "right_hand"), ("horizontal",))),),
        rare=True, absolute=True))
    supers.append(SuperPosecodeSpec(
        "feet shoulder width", ("both", "foot"), None, "shoulder width",
        (((c("distance", "left_foot", "right_foot"), ("shoulder width",)),
          (c("segment_orientation", "left_foot", "right_foot"), ("horizontal",))),),
        rare=False, absolute=True))
    low = tuple((c("height_above_ground", j), ("low",)) for j in ("pelvis", "neck"))
    leans = ("bent far forward", "leaning back", "bent sideways left", "bent sideways right")
    lying_silences = (
        "torso horizontal", "sitting", "squatting", *leans,
        c("body_forward_incline", *_INCLINE), c("body_twist", *_INCLINE), c("body_side_lean", *_INCLINE),
        c("segment_orientation", "pelvis", "neck"),
        # "in front of the body" means toward the head / feet of a lying body: not said
        *(c("relative_z", f"{s}_{part}", "torso") for s in SIDES for part in ("hand", "foot")),
    )
    # ours: a level trunk with no thigh pointing down (a body bent over its legs is not lying) and a knee
    # not deeply bent (a body crouched over its feet is not lying either), whatever limb is lowest (a body
    # that is lying stays so when a hand or foot hangs below it)
    not_steep = ("slightly down", "level", "slightly up", "ignored_high", "up")  # not over ~35 deg down
    flat = (trunk_level, thigh("left", *not_steep), thigh("right", *not_steep))
    open_knee = ("right angle", "bent less", "slightly bent", "straight")
    flat_recipes = tuple(flat + ((c("angle", f"{s}_hip", f"{s}_knee", f"{s}_ankle"), open_knee),) for s in SIDES)
    for name, (kind, category) in {
        "lying on back": ("body_front_direction", "front up"),
        "lying face down": ("body_front_direction", "front down"),
        "lying on left side": ("body_left_direction", "left down"),
        "lying on right side": ("body_left_direction", "left up"),
    }.items():
        facing = (c(kind, *_FRAME), (category,))
        sides = ("lying on left side", "lying on right side") if kind == "body_front_direction" else ()
        supers.append(SuperPosecodeSpec(
            name, (None, "body"), None, name, (low + (facing,), *(r + (facing,) for r in flat_recipes)),
            rare=True, absolute=False, posture="body", suppresses=lying_silences + sides))
    thighs_flat = tuple((c("segment_orientation", f"{s}_hip", f"{s}_knee"), ("horizontal",)) for s in SIDES)
    thighs_level = (thigh("left", *about_level), thigh("right", *about_level))
    knees_bent = tuple((c("angle", f"{s}_hip", f"{s}_knee", f"{s}_ankle"), bent) for s in SIDES)
    knees_side_by_side = (c("relative_z", "left_knee", "right_knee"), ("ignored_low", "z-aligned", "ignored_high"))
    supers.append(SuperPosecodeSpec(
        "sitting", (None, "body"), None, "sitting",
        (thighs_flat + (torso_up, facing_level, neck_high) + knees_bent,
         thighs_flat + (torso_up, facing_level, neck_high, (c("height_above_ground", "pelvis"), ("low",))),
         # ours: thighs within ~35 deg of level under a raised trunk (on a chair, cross-legged), the
         # knees bent or side by side (legs stretched forward; a split has one knee far ahead)
         thighs_level + (trunk_raised, neck_high) + knees_bent,
         thighs_level + (trunk_raised, neck_high, knees_side_by_side),
         # ours: the pelvis on the floor under a raised trunk (legs forward, knees up, a split)
         (near("pelvis"), trunk_raised, neck_high)),
        rare=True, absolute=False, posture="body"))
    pelvis_up = near("pelvis", "off_ground")  # not sitting on the floor
    supers.append(SuperPosecodeSpec(
        "squatting", (None, "body"), None, "squatting",
        (tuple((c("angle", f"{s}_hip", f"{s}_knee", f"{s}_ankle"), deeply_bent) for s in SIDES)
         + tuple((c("on_ground", f"{s}_foot"), ("on_ground",)) for s in SIDES)
         + tuple((c("on_ground", f"{s}_knee"), ("off_ground",)) for s in SIDES)
         + tuple(near(f"{s}_knee", "off_ground") for s in SIDES)  # cross-legged knees are low too
         + (torso_up, facing_level, neck_high, pelvis_up),
         # ours: also crouched with the trunk leaning well forward, feet near the floor
         tuple((c("angle", f"{s}_hip", f"{s}_knee", f"{s}_ankle"), deeply_bent) for s in SIDES)
         + tuple(near(f"{s}_foot") for s in SIDES) + tuple(near(f"{s}_knee", "off_ground") for s in SIDES)
         + (trunk_not_down, neck_high, pelvis_up)),
        rare=True, absolute=False, posture="body", suppresses=("sitting",)))
    # ours: upside down (the trunk within ~40 deg of the downward vertical), on the hands or not
    incline_codes = tuple(c(k, *_INCLINE) for k in ("body_forward_incline", "body_side_lean"))
    inverted_silences = (c("segment_orientation", "pelvis", "neck"), *incline_codes, *leans)
    head_down = (trunk, ("down",))
    supers.append(SuperPosecodeSpec(
        "upside down", (None, "body"), None, "upside down", ((head_down,),),
        rare=True, absolute=False, posture="body", suppresses=inverted_silences))
    supers.append(SuperPosecodeSpec(
        "handstand", (None, "body"), None, "handstand",
        ((head_down, *((c("on_ground", f"{s}_hand"), ("on_ground",)) for s in SIDES)),),
        rare=True, absolute=False, posture="body", suppresses=(*inverted_silences, "upside down")))
    # ours: the trunk's own salient tilt, always said (the elementary incline codes are skippable)
    forward = c("body_forward_incline", *_INCLINE)
    # the upper back >= ~55 deg off the vertical
    upper_back_low = (c("elevation", "spine2", "neck"), ("down", "ignored_low", *about_level))
    supers.append(SuperPosecodeSpec(
        "bent far forward", (None, "body"), None, "bent far forward",
        (((forward, ("bent forward",)),),
         # the spine rolled forward: the pelvis->shoulders chord tilts less than the upper back
         ((forward, ("bent slightly forward",)), upper_back_low)),
        rare=True, absolute=False, posture="torso", suppresses=(forward,)))
    supers.append(SuperPosecodeSpec(
        "leaning back", (None, "body"), None, "leaning back",
        (((forward, ("bent backward", "bent slightly backward")),),),
        rare=True, absolute=False, posture="torso", suppresses=(forward,)))
    side_lean = c("body_side_lean", *_INCLINE)
    for s in SIDES:
        supers.append(SuperPosecodeSpec(
            f"bent sideways {s}", (None, "body"), None, f"bent sideways {s}",
            (((side_lean, (f"leaning {s}",)), neck_high, trunk_not_down),),
            rare=True, absolute=False, posture="torso", suppresses=(side_lean,)))
    # aligned limbs: two axes within the aligned band and not far apart
    near_enough = ("close", "shoulder width", "spread")
    for s, extremity, s2, part in aligned_pairs():
        joints = (f"{s}_{extremity}", f"{s2}_{part}")
        for plane in ("xy", "xz", "yz"):
            conditions = tuple((c(f"relative_{axis}", *joints), (f"{axis}-aligned",)) for axis in plane)
            supers.append(SuperPosecodeSpec(
                f"{plane}-aligned:{joints[0]}/{joints[1]}", (s, extremity), (s2, part), f"{plane}-aligned",
                (conditions + ((c("distance", *joints), near_enough),),), rare=False, absolute=True))
    return tuple(supers)


_INCLINE = ("left_shoulder", "right_shoulder", "pelvis", "left_ankle", "right_ankle")
_FRAME = ("left_hip", "right_hip", "left_shoulder", "right_shoulder", "pelvis", "neck")

SUPER_POSECODES: tuple[SuperPosecodeSpec, ...] = _build_super_posecodes()
SUPER_POSECODE_INDEX: dict[str, int] = {s.name: i for i, s in enumerate(SUPER_POSECODES)}


def _check_tables() -> None:
    added = list(KINDS)[-len(ADDED_KINDS):]
    if added != list(ADDED_KINDS) or any(KINDS[k].max_noise for k in added):
        raise ValueError("the added kinds must be the last, noise-free ones of KINDS (the original codes' "
                         "columns and noise draws must not move)")
    names = set(POSECODE_INDEX) | set(SUPER_POSECODE_INDEX)
    for sup in SUPER_POSECODES:
        is_body_fact = sup.subject == (None, "body") and sup.rare
        if sup.posture not in ("", "body", "torso") or (sup.posture and not is_body_fact):
            raise ValueError(f"super-posecode {sup.name!r}: a posture is a rare statement about the body")
        for silenced in sup.suppresses:
            if silenced not in names:
                raise ValueError(f"super-posecode {sup.name!r} silences unknown code {silenced!r}")
        for recipe in sup.recipes:
            for code, categories in recipe:
                kind = POSECODES[POSECODE_INDEX[code]].kind
                for category in categories:
                    KINDS[kind].category_index(category)


_check_tables()
