"""Our own wording for corrective instructions (A -> B): imperative templates, verb forms, facts about
the target pose, the whole-body turn, transitions. Written for this project (not derived from the
PoseFix lists).

Templates are imperative clauses whose FIRST word is the verb (so that `gerund` can turn "raise your
hand" into "raising your hand" after "while"); `{subj}` is the body part(s) addressed ("your left
knee", "both hands"), or "it" / "them" when a clause continues with the same subject ("raise your left
hand and move it forward"). Templates of the whole body have no slot. The first template of each list
is the *canonical* one (no random wording); lists with a side are generated from one side-neutral list,
so the canonical wordings of left and right are exact mirror images.

Instructions are written with "your"; when a text draws the determiner "the", every "your" becomes
"the" at the end ("raise the left hand").
"""

from __future__ import annotations

from poseembroider.text.captioning.templates import expand_sides as _sided

# ------------------------------------------------------------------------------- changes (paircodes)

CHANGES: dict[str, list[str]] = {
    # heights
    "higher": ["raise {subj}", "lift {subj} up", "move {subj} up", "bring {subj} higher"],
    "slightly higher": ["raise {subj} a little", "lift {subj} slightly", "move {subj} up a bit"],
    "lower": ["lower {subj}", "move {subj} down", "bring {subj} down", "drop {subj} lower"],
    "slightly lower": ["lower {subj} a little", "move {subj} down slightly", "drop {subj} a bit"],
    # front / back
    "more to front": ["move {subj} forward", "bring {subj} forward", "push {subj} to the front"],
    "slightly more to front": ["move {subj} slightly forward", "bring {subj} a bit forward",
                               "push {subj} forward a little"],
    "more to back": ["move {subj} back", "pull {subj} backward", "bring {subj} further back"],
    "slightly more to back": ["move {subj} back a little", "pull {subj} slightly backward",
                              "bring {subj} back a bit"],
    # knee and elbow angles
    "bent much more": ["bend {subj} a lot more", "bend {subj} much further", "fold {subj} much more"],
    "bent more": ["bend {subj} more", "bend {subj} further", "flex {subj} more"],
    "bent slightly more": ["bend {subj} a little more", "bend {subj} slightly more", "flex {subj} a bit more"],
    "bent slightly less": ["straighten {subj} a little", "bend {subj} slightly less", "unbend {subj} a bit"],
    "bent less": ["bend {subj} less", "straighten {subj} partly", "extend {subj} more"],
    "bent much less": ["straighten {subj} a lot", "bend {subj} much less", "extend {subj} much further"],
    "straighten": ["straighten {subj}", "extend {subj}", "stretch {subj} out"],
    # fused with a fact about the target pose
    "raise above head": ["raise {subj} above your head", "lift {subj} up over your head",
                         "reach {subj} up above your head"],
    "bend to right angle": ["bend {subj} to a right angle", "bend {subj} to about ninety degrees",
                            "bend {subj} into an L-shape"],
    "unbend to right angle": ["straighten {subj} to a right angle", "open {subj} up to about ninety degrees",
                              "extend {subj} into an L-shape"],
    "bend fully": ["bend {subj} fully", "fold {subj} completely", "bend {subj} all the way"],
    "straighten fully": ["straighten {subj} completely", "extend {subj} fully", "straighten {subj} all the way"],
    # distances (super-paircodes); the subject of the first four is a plural pair ("your hands")
    "farther apart": ["move {subj} apart", "spread {subj} apart", "move {subj} away from each other"],
    "slightly farther apart": ["move {subj} a little further apart", "spread {subj} slightly",
                               "separate {subj} a bit more"],
    "closer together": ["bring {subj} closer together", "move {subj} toward each other", "draw {subj} together"],
    "slightly closer together": ["bring {subj} a little closer together", "move {subj} slightly toward each other",
                                 "draw {subj} a bit closer"],
    "farther from torso": ["move {subj} away from your body", "hold {subj} further out from your body",
                           "take {subj} away from your torso"],
    "slightly farther from torso": ["move {subj} a little away from your body",
                                    "hold {subj} slightly further from your body",
                                    "ease {subj} a bit away from your torso"],
    "closer to torso": ["bring {subj} closer to your body", "pull {subj} in toward your torso",
                        "tuck {subj} in closer to your body"],
    "slightly closer to torso": ["bring {subj} a little closer to your body",
                                 "pull {subj} slightly in toward your torso", "draw {subj} a bit closer to your body"],
    # whole body: no subject slot
    "more forward": ["lean forward", "bend forward at the waist", "tilt your upper body forward"],
    "slightly more forward": ["lean slightly forward", "bend forward a little", "tip your upper body a bit forward"],
    "more backward": ["lean back", "bend backward", "tilt your upper body back"],
    "slightly more backward": ["lean back a little", "bend slightly backward", "tip your upper body a bit back"],
    # head
    "head more bowed": ["bow {subj}", "tilt {subj} forward", "drop {subj} toward your chest"],
    "head more raised": ["tilt {subj} back", "lift {subj} up", "tip {subj} backward"],
    # postures
    "sit down": ["sit down", "take a seat", "lower yourself into a sitting position"],
    "squat down": ["squat down", "crouch down low", "sink into a deep squat"],
    "kneel down": ["kneel down", "get down on your knees", "drop onto both knees"],
    "lie on back": ["lie down on your back", "lie face up", "stretch out on your back"],
    "lie face down": ["lie face down", "lie down on your stomach", "stretch out face down"],
    "stand up": ["stand up", "get back on your feet", "rise to a standing position"],
    "get up": ["get up", "come up from that position", "rise up"],
}
CHANGES.update(_sided({
    "more to {side}": ["move {subj} to the {side}", "shift {subj} toward the {side}",
                       "bring {subj} over to the {side}"],
    "slightly more to {side}": ["move {subj} slightly to the {side}", "shift {subj} a bit toward the {side}",
                                "bring {subj} a little to the {side}"],
    "twist more {side}": ["twist {subj} to the {side}", "turn {subj} toward the {side}",
                          "rotate {subj} to the {side} at the waist"],
    "twist slightly more {side}": ["twist {subj} slightly to the {side}", "turn {subj} a little toward the {side}",
                                   "rotate {subj} a bit to the {side}"],
    "lean more {side}": ["lean to the {side}", "bend sideways to the {side}", "tilt your body toward the {side}"],
    "lean slightly more {side}": ["lean slightly to the {side}", "bend a little sideways to the {side}",
                                  "tilt your body a bit toward the {side}"],
    "head more {side}": ["turn {subj} to the {side}", "rotate {subj} toward the {side}",
                         "swivel {subj} to the {side}"],
    "head slightly more {side}": ["turn {subj} slightly to the {side}", "rotate {subj} a little toward the {side}",
                                  "swivel {subj} a bit to the {side}"],
    "kneel on {side} knee": ["kneel on your {side} knee", "go down on your {side} knee", "drop onto your {side} knee"],
    "lie on {side} side": ["lie down on your {side} side", "lie on your {side} side", "roll onto your {side} side"],
}))
"""Change interpretation -> imperative templates."""

DIRECTIONS: dict[str, str] = {
    "higher": "up", "slightly higher": "slightly up", "lower": "down", "slightly lower": "slightly down",
    "more to front": "forward", "slightly more to front": "slightly forward",
    "more to back": "back", "slightly more to back": "slightly back",
    **{k: v[0] for k, v in _sided({"more to {side}": ["to the {side}"],
                                   "slightly more to {side}": ["slightly to the {side}"]}).items()},
}
"""Position changes said as directions after one verb: "move your left hand up and to the left"."""

BODY_DIRECTIONS: dict[str, str] = {
    "more forward": "forward", "slightly more forward": "slightly forward",
    "more backward": "back", "slightly more backward": "slightly back",
    **{k: v[0] for k, v in _sided({"lean more {side}": ["to the {side}"],
                                   "lean slightly more {side}": ["slightly to the {side}"]}).items()},
}
"""Whole-body inclinations said after one "lean": "lean forward and to the left"."""

MOVE_VERB = "move"
LEAN_VERB = "lean"

# ----------------------------------------------------------------------------------------- rotation

ROTATIONS: dict[str, list[str]] = {
    "turn around": ["turn around", "turn to face the opposite direction", "make a half turn"],
}
ROTATIONS.update(_sided({
    "turn most of the way {side}": ["turn most of the way around to your {side}",
                                    "turn nearly all the way around toward your {side}",
                                    "rotate well past a quarter turn to your {side}"],
    "turn a quarter {side}": ["turn a quarter to your {side}", "make a quarter turn to your {side}",
                              "rotate ninety degrees to your {side}"],
    "turn slightly {side}": ["turn slightly to your {side}", "rotate a little toward your {side}",
                             "turn a bit to your {side}"],
}))
"""Whole-body turn from A to B (in-sequence pairs), said as a first sentence."""

# ------------------------------------------------------------------------------ facts about B

FACT_VERBS = {False: ["should be", "needs to be", "must be", "has to be"],
              True: ["should be", "need to be", "must be", "have to be"]}
"""'<subject> should be <state>' (key: plural subject); the state is the captioner's wording."""
FACT_ATTACHED = [" so that {pron} {be} {state}", " until {pron} {be} {state}"]
"""A fact about the part just moved, attached to that clause ("bend your knee until it is ...")."""

# --------------------------------------------------------------------------- nearly identical poses

ALMOST_SAME = ["stay almost as you are, only {clause}", "keep nearly the same pose and just {clause}",
               "change almost nothing: just {clause}"]
SAME = ["keep the same pose", "stay exactly as you are", "hold the same position"]
SAME_AFTER_TURN = ["keep the rest of the pose as it is", "leave everything else unchanged",
                   "keep the same pose otherwise"]

# --------------------------------------------------------------------------------------- sentences

DETERMINERS: tuple[tuple[str, float], ...] = (("your", 0.5), ("the", 0.5))
"""How body parts are addressed in one instruction, with its probability."""

TRANSITIONS: tuple[tuple[str, float], ...] = ((". ", 0.4), (" and ", 0.25), (", then ", 0.15), (" while ", 0.2))
"""Joins between two clauses; after " while " (and the " and " clauses that follow it in the same
sentence) verbs take the -ing form."""
MAX_CLAUSES_PER_SENTENCE = 3

GERUNDS: dict[str, str] = {
    "bend": "bending", "bring": "bringing", "crouch": "crouching", "draw": "drawing", "drop": "dropping",
    "ease": "easing", "extend": "extending", "flex": "flexing", "fold": "folding", "get": "getting",
    "go": "going", "hold": "holding", "keep": "keeping", "kneel": "kneeling", "lean": "leaning",
    "lie": "lying", "lift": "lifting", "lower": "lowering", "make": "making", "move": "moving", "open": "opening",
    "pull": "pulling", "push": "pushing", "raise": "raising", "reach": "reaching", "rise": "rising",
    "roll": "rolling", "rotate": "rotating", "separate": "separating", "shift": "shifting", "sink": "sinking",
    "sit": "sitting", "spread": "spreading", "squat": "squatting", "stand": "standing", "straighten": "straightening",
    "stretch": "stretching", "swivel": "swiveling", "take": "taking", "tilt": "tilting", "tip": "tipping",
    "tuck": "tucking", "turn": "turning", "twist": "twisting", "unbend": "unbending", "bow": "bowing",
    "come": "coming",
}
"""-ing form of every template verb (checked by the tests)."""


def gerund(clause: str) -> str:
    """"raise your hand" -> "raising your hand"."""
    verb, _, rest = clause.partition(" ")
    return GERUNDS[verb] + (" " + rest if rest else "")
