"""Our own wording for posecode statements: body-part words, subjects, determiners, predicate
templates and transitions. Written for this project (not derived from the PoseScript lists).

Every statement is rendered as "<subject> is/are <predicate>", so that the verb can be dropped after
"with" ("... with both knees bent"). Predicate templates are plain phrases; slots:

- `{obj}`: the second body part of 2-component statements ("the left knee", "both hips", ...);
- `{poss}`: the possessive matching the caption's determiner ("their", "his", "her").

The first template of each list is the *canonical* one, used when wording is not randomised; lists
for left/right interpretations are generated from one side-neutral list so that their canonical
wordings are exact mirror images (the left/right text flip then maps one onto the other).
"""

from __future__ import annotations

# --------------------------------------------------------------------------------------- body parts

PART_WORDS = {"upperarm": "upper arm"}
SIDE_OTHER = {"left": "right", "right": "left"}
PLURALS = {"foot": "feet"}


def part_word(part: str, plural: bool = False) -> str:
    word = PART_WORDS.get(part, part)
    if plural:
        return PLURALS.get(part, word + "s")
    return word


# ---------------------------------------------------------------------------------------- subjects

DETERMINERS: tuple[tuple[str, float], ...] = (("the", 0.55), ("their", 0.25), ("his", 0.1), ("her", 0.1))
"""Determiner of body parts for one caption, with its probability."""

POSSESSIVE = {"the": "their", "their": "their", "his": "his", "her": "her"}

BODY_SUBJECTS_START = {
    "the": ("The person", "This person", "Someone", "The figure", "The subject", "They"),
    "their": ("The person", "This person", "Someone", "They"),
    "his": ("The man", "He", "This man"),
    "her": ("The woman", "She", "This woman"),
}
"""Whole-body subjects at the start of a sentence (first = canonical)."""

BODY_SUBJECTS_MID = {
    "the": ("the person", "the figure", "they"),
    "their": ("the person", "they"),
    "his": ("the man", "he"),
    "her": ("the woman", "she"),
}
PLURAL_PRONOUNS = {"They", "they"}
BODY_PRONOUNS = {"the": "They", "their": "They", "his": "He", "her": "She"}
"""The whole body said again at the start of the next sentence ("The person is kneeling. They are ...")."""

# ------------------------------------------------------------------------------------- transitions

TRANSITIONS: tuple[tuple[str, float], ...] = ((". ", 0.45), (" and ", 0.25), (" while ", 0.15), (" with ", 0.15))
"""Joins between two statements, with their probability; after " with " the verb is dropped."""
MAX_CLAUSES_PER_SENTENCE = 3


# -------------------------------------------------------------------------------------- predicates


def expand_sides(templates: dict[str, list[str]]) -> dict[str, list[str]]:
    """Expand "{side}" keys and phrases into a left and a right entry with mirrored wording."""
    out = {}
    for key, phrases in templates.items():
        for side in ("left", "right"):
            out[key.format(side=side)] = [p.replace("{side}", side) for p in phrases]
    return out


SINGLE: dict[str, list[str]] = {
    # knee and elbow angles
    "completely bent": ["fully bent", "bent all the way", "tightly folded", "folded up completely"],
    "bent more": ["sharply bent", "deeply bent", "bent a lot"],
    "right angle": ["bent at a right angle", "bent at about ninety degrees", "bent in an L-shape",
                    "forming a right angle"],
    "bent less": ["partly bent", "half bent", "bent at an open angle", "somewhat bent"],
    "slightly bent": ["slightly bent", "a little bent", "bent just a bit", "almost straight"],
    "straight": ["straight", "extended", "stretched out", "fully extended"],
    # segments and ground
    "vertical": ["vertical", "pointing straight up or down", "perpendicular to the floor"],
    "horizontal": ["horizontal", "parallel to the ground", "level with the floor", "flat and level"],
    "on_ground": ["on the ground", "touching the floor", "resting on the ground", "down on the floor"],
    # same-part pairs said in the plural ("the hands are ...")
    "crossed": ["crossed", "crossed over each other", "folded across each other"],
    # whole body
    "bent forward": ["bent forward", "leaning forward", "bending over", "tipped well forward"],
    "bent slightly forward": ["leaning slightly forward", "tilted a little forward", "bending forward a bit"],
    "bent backward": ["bent backward", "leaning back", "arching backward"],
    "bent slightly backward": ["leaning slightly back", "tilted a little backward", "leaning back a bit"],
    # whole-body postures (said first)
    "kneeling": ["kneeling", "on {poss} knees", "down on both knees", "kneeling down", "kneeling on both knees"],
    "sitting": ["sitting", "seated", "in a sitting position", "sitting down", "sitting with {poss} hips lowered"],
    "squatting": ["squatting", "crouching down", "in a deep squat", "crouched low", "down in a squat"],
    "lying on back": ["lying on {poss} back", "lying face up", "stretched out on {poss} back", "lying supine"],
    "lying face down": ["lying face down", "lying on {poss} stomach", "lying prone", "lying on {poss} front"],
    "upside down": ["upside down", "turned upside down", "inverted, head toward the floor", "head down and feet up"],
    "handstand": ["doing a handstand", "in a handstand", "balancing upside down on {poss} hands",
                  "standing on {poss} hands"],
    # the trunk's salient tilts (said right after the posture)
    "bent far forward": ["bent forward", "bent over", "bending over", "bending forward", "leaning far forward",
                         "folded forward"],
    "leaning back": ["leaning back", "leaning backward", "bending backward", "tilted back", "tipping backward"],
    # head (subject "head")
    "head bowed": ["bowed forward", "tilted forward", "tipped down toward the chest", "lowered"],
    "head tilted back": ["tilted back", "tipped backward", "thrown back"],
}
SINGLE.update(expand_sides({
    "twisted {side}": ["twisted to the {side}", "turned to the {side} at the waist", "rotated toward the {side}"],
    "twisted slightly {side}": ["slightly twisted to the {side}", "turned a little to the {side} at the waist",
                                "twisted a bit toward the {side}"],
    "leaning {side}": ["leaning to the {side}", "tilted toward the {side}", "bending sideways to the {side}"],
    "leaning slightly {side}": ["leaning slightly to the {side}", "tilted a little toward the {side}",
                                "bending a bit to the {side}"],
    "head turned {side}": ["turned to the {side}", "facing toward the {side}", "rotated to the {side}"],
    "head turned slightly {side}": ["turned slightly to the {side}", "turned a little toward the {side}"],
    "head tilted {side}": ["tilted to the {side}", "leaning toward the {side} shoulder", "tipped to the {side} side"],
    "kneeling on {side} knee": ["kneeling on the {side} knee", "down on the {side} knee",
                                "kneeling on {poss} {side} knee", "down on {poss} {side} knee"],
    "lying on {side} side": ["lying on {poss} {side} side", "lying down on the {side} side",
                             "lying sideways on {poss} {side} side", "resting on {poss} {side} side"],
    "bent sideways {side}": ["bending sideways to the {side}", "bent over to the {side}", "leaning over to the {side}",
                             "bent sideways toward the {side}", "tilted far to the {side}"],
}))
"""1-component predicates: "<subject> is/are <phrase>"."""

PLURAL_SINGLE: dict[str, list[str]] = {
    "close": ["close together", "near each other", "close to each other", "held together"],
    "shoulder width": ["shoulder-width apart", "about shoulder-width apart", "as far apart as the shoulders"],
    "spread": ["apart", "spread apart", "set apart from each other"],
    "wide": ["wide apart", "far apart", "spread wide", "far from each other"],
}
"""1-component predicates of plural subjects made of the same part on both sides."""

DOUBLE: dict[str, list[str]] = {
    "close": ["close to {obj}", "near {obj}", "next to {obj}", "held close to {obj}"],
    "shoulder width": ["about a shoulder width away from {obj}", "roughly shoulder-width from {obj}"],
    "spread": ["apart from {obj}", "some distance away from {obj}", "at a fair distance from {obj}"],
    "wide": ["far from {obj}", "far away from {obj}", "a long way from {obj}"],
    "above": ["above {obj}", "higher than {obj}", "raised above {obj}", "up above {obj}"],
    "below": ["below {obj}", "lower than {obj}", "beneath {obj}", "under {obj}"],
    "front": ["in front of {obj}", "ahead of {obj}", "further forward than {obj}"],
    "behind": ["behind {obj}", "further back than {obj}", "set behind {obj}"],
    "aligned above": ["directly above {obj}", "straight above {obj}", "vertically in line with and above {obj}"],
    "aligned below": ["directly below {obj}", "straight below {obj}", "vertically in line with and under {obj}"],
    "aligned front": ["directly in front of {obj}", "straight in front of {obj}"],
    "aligned behind": ["directly behind {obj}", "straight behind {obj}"],
    "level": ["level with {obj}", "at the same height as {obj}", "at the height of {obj}"],
}
DOUBLE.update(expand_sides({
    "at_{side}": ["to the {side} of {obj}", "on the {side} of {obj}", "further {side} than {obj}"],
}))
"""2-component predicates: "<subject> is/are <phrase with {obj}>"."""

FLOW_OMISSIONS: dict[tuple[str, str, str], list[str]] = {
    ("hand", "above", "neck"): ["raised high", "held up high", "lifted high", "up in the air"],
    ("hand", "front", "torso"): ["in front of the body", "out in front", "held forward"],
    ("hand", "behind", "torso"): ["behind {poss} back", "behind the body", "held back"],
    ("hand", "at_right", "shoulder"): ["over to the right", "toward the right side", "across toward the right"],
    ("hand", "at_left", "shoulder"): ["over to the left", "toward the left side", "across toward the left"],
    ("foot", "front", "torso"): ["in front of the body", "placed forward", "stepped forward"],
    ("foot", "behind", "torso"): ["behind the body", "placed back", "set back"],
    ("foot", "at_right", "hip"): ["placed to the right", "crossed over to the right", "out toward the right"],
    ("foot", "at_left", "hip"): ["placed to the left", "crossed over to the left", "out toward the left"],
}
"""Shorter 1-component wordings of some 2-component statements (subject part, interpretation, second
part), used when captions are not simplified: the second part is implied ("the left hand is raised
high")."""

SUBJECT_OVERRIDES: dict[tuple[str, str], list[str]] = {
    ("torso", "vertical"): ["upright", "vertical", "held straight"],
}
"""Predicates that read better for one subject part (part, interpretation)."""

FALLBACK = "in a neutral stance"
