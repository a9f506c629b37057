"""Left/right text flip: side words swapped, other meanings of "right" kept, clock / axis texts refused."""

from __future__ import annotations

import random

import pytest

from poseembroider.text.text_flip import flip_text, is_flippable


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The left knee is bent.", "The right knee is bent."),
        ("Left hand up, RIGHT foot down.", "Right hand up, LEFT foot down."),
        ("the hand is to the right of the torso", "the hand is to the left of the torso"),
        ("turn leftwards, then rightward", "turn rightwards, then leftward"),
        ("a left-handed grip near the front-right corner, right-most",
         "a right-handed grip near the front-left corner, left-most"),
        ("their lefthand side", "their righthand side"),
        # "right" meaning correct / exactly stays
        ("The left elbow is bent at a right angle.", "The right elbow is bent at a right angle."),
        ("the right knee forms right angles", "the left knee forms right angles"),
        ("the hand is right above the knee", "the hand is right above the knee"),
        ("the foot is right behind the left heel", "the foot is right behind the right heel"),
        ("that is right, all right", "that is right, all right"),
        # ... unless a determiner makes it a side
        ("the right behind the knee", "the left behind the knee"),
        ("their right in front", "their left in front"),
        # words containing "right" are other words
        ("The torso is upright and bright.", "The torso is upright and bright."),
        ("rotate clockwise", "rotate counterclockwise"),
        ("rotate anti-clockwise", "rotate clockwise"),
    ],
)
def test_flip_text(text, expected):
    assert flip_text(text) == expected


@pytest.mark.parametrize("text", ["Raise the left hand to 3 o'clock.", "Point at the clock on the left.",
                                  "Move left along the x-axis."])
def test_clock_and_axis_texts_are_not_flipped(text):
    assert not is_flippable(text)
    assert flip_text(text) is None


def test_flip_is_an_involution_on_side_words():
    text = "Their left hand is to the right of the left knee while the right foot is leaning leftward."
    assert flip_text(flip_text(text)) == text


def test_counter_clockwise_spelling_can_be_drawn():
    spellings = {flip_text("turn clockwise", rng=random.Random(i)) for i in range(40)}
    counter = ("counterclockwise", "anticlockwise", "counter-clockwise", "anti-clockwise")
    assert spellings == {f"turn {s}" for s in counter}
    assert flip_text("Clockwise") == "Counterclockwise"
