"""Left/right flip of texts, the text half of the left/right mirror augmentation.

A pose and its text are mirrored together: the pose by `geometry.flip_left_right` (joints swapped,
axis-angles (x, -y, -z)), the text by `flip_text`, which swaps the side words and keeps the other
meanings of "right" (correct / exactly) as they are:

- side words swapped: left <-> right, leftward(s) <-> rightward(s), lefthand <-> righthand, and inside
  hyphenated words (left-hand, front-right, right-most, ...); case is kept ("Left" -> "Right");
- "clockwise" <-> "counterclockwise" (also anticlockwise, counter-clockwise, anti-clockwise; the
  counter-clockwise spelling is chosen by `rng` when given, else "counterclockwise");
- "right" is kept when followed by a word of `_KEEP_BEFORE` ("right above", "right next to"),
  unless a determiner precedes it ("the right behind" is a side); when preceded by a word of
  `_KEEP_AFTER` ("is right", "all right"); and before "angle(s)" ("a right angle");
- words that merely contain "right" ("upright", "bright") are words of their own and never change;
- texts with clock or axis wording ("o'clock", "clock", "x-axis") cannot be flipped safely: None.
"""

from __future__ import annotations

import random
import re

__all__ = ["flip_text", "is_flippable"]

_SIDE_WORDS = {
    "left": "right",
    "leftward": "rightward",
    "leftwards": "rightwards",
    "leftwardly": "rightwardly",
    "lefthand": "righthand",
    "lefthanded": "righthanded",
    "lefts": "rights",
    "leftmost": "rightmost",
}
_SIDE_WORDS.update({v: k for k, v in list(_SIDE_WORDS.items())})
_COUNTER_CLOCKWISE = ("counterclockwise", "anticlockwise", "counter-clockwise", "anti-clockwise")

_KEEP_BEFORE = frozenset(
    "about before after off between behind in under next below above across away near by at now".split()
)
"""'right' followed by one of these means 'exactly / immediately' ("right above the knee")..."""
_DETERMINERS = frozenset("your their his her the a an this these those my our its".split())
"""... unless a determiner comes first ("the right above" cannot mean 'exactly')."""
_KEEP_AFTER = frozenset("is are it's isn't aren't not be all".split())
"""'right' after one of these means 'correct' ("that is right", "all right")."""
_KEEP_NEXT = frozenset(("angle", "angles", "angled"))

_NOT_FLIPPABLE = re.compile(r"\bo'clock\b|\bclock\b|\bclocks\b|\bx-axis\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")


def is_flippable(text: str) -> bool:
    """False for texts whose left/right words may refer to a viewer or a dial (clock, x-axis)."""
    return _NOT_FLIPPABLE.search(text) is None


def _match_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def _flip_word(word: str, rng: random.Random | None) -> str:
    lower = word.lower()
    if lower == "clockwise":
        return _match_case(rng.choice(_COUNTER_CLOCKWISE) if rng else _COUNTER_CLOCKWISE[0], word)
    if lower in _COUNTER_CLOCKWISE:
        return _match_case("clockwise", word)
    if lower in _SIDE_WORDS:
        return _match_case(_SIDE_WORDS[lower], word)
    if "-" in word:
        pieces = word.split("-")
        return "-".join(_match_case(_SIDE_WORDS[p.lower()], p) if p.lower() in _SIDE_WORDS else p for p in pieces)
    return word


def _keeps_meaning(words: list[str], i: int) -> bool:
    """Whether the bare word 'right' at position i does not name a side."""
    before = words[i - 1].lower() if i > 0 else ""
    after = words[i + 1].lower() if i + 1 < len(words) else ""
    if after in _KEEP_NEXT:
        return True
    if before in _KEEP_AFTER:
        return True
    return after in _KEEP_BEFORE and before not in _DETERMINERS


def flip_text(text: str, rng: random.Random | None = None) -> str | None:
    """The text describing the left/right mirror image; None when it cannot be flipped safely.

    Only "right" has the exceptions above ("left" always names a side), so flipping twice gives the
    text back whenever no exception applies (up to the counter-clockwise spelling), which is the case
    of every caption and instruction this toolkit writes.
    """
    if not is_flippable(text):
        return None
    matches = list(_WORD.finditer(text))
    words = [m.group(0) for m in matches]
    out, last = [], 0
    for i, m in enumerate(matches):
        word = words[i]
        new = word if word.lower() == "right" and _keeps_meaning(words, i) else _flip_word(word, rng)
        out.append(text[last : m.start()])
        out.append(new)
        last = m.end()
    out.append(text[last:])
    return "".join(out)

