"""Ripple effects, aggregations and sentence assembly on hand-written statements."""

from __future__ import annotations

import random

from poseembroider.text.captioning.aggregation import (
    STATISTICAL_RULES,
    Statement,
    apply_implications,
    build_pieces,
    entity_aggregation,
    mirror,
    polish,
    rules_to_remove,
    symmetry_aggregation,
    transitive_ripple,
)
from poseembroider.text.captioning.captions import CANONICAL, PART_RANK, caption_statements


def S(side1, part1, interp, side2=None, part2=None, kind="relative_y"):
    return Statement(side1, part1, interp, side2, part2, kind)


def test_transitive_ripple_drops_the_implied_relation():
    above_knee = S("left", "hand", "above", "left", "knee")
    knee_foot = S("left", "knee", "above", "right", "foot")
    implied = S("left", "hand", "above", "right", "foot")
    said_reversed = S("right", "foot", "below", "left", "hand")  # same fact, other subject
    assert transitive_ripple([above_knee, knee_foot, implied]) == [above_knee, knee_foot]
    assert transitive_ripple([above_knee, knee_foot, said_reversed]) == [above_knee, knee_foot]
    other_family = S("left", "hand", "front", "right", "foot", kind="relative_z")
    assert other_family in transitive_ripple([above_knee, knee_foot, other_family])


def test_statistical_rules_are_mirrored():
    raised = S("left", "hand", "above", None, "neck")
    assert ("left", "hand", "above", "left", "shoulder") in rules_to_remove({raised.key}, STATISTICAL_RULES)
    assert ("right", "hand", "above", "right", "shoulder") in rules_to_remove({mirror(raised).key}, STATISTICAL_RULES)
    assert rules_to_remove({S("left", "knee", "right angle", kind="angle").key}, STATISTICAL_RULES) == set()


def test_hand_above_the_head_implies_above_the_neck():
    head = S("left", "hand", "above", None, "head")
    neck = S("left", "hand", "above", None, "neck")
    shoulder = S("left", "hand", "above", "left", "shoulder")
    right = S("right", "hand", "above", "right", "shoulder")
    assert apply_implications([head, neck, shoulder, right]) == [head, right]


def test_entity_and_symmetry_aggregation():
    hand = S("left", "hand", "below", "right", "hand")
    elbow = S("left", "elbow", "below", "right", "elbow")
    assert entity_aggregation([hand, elbow], None, 1.0) == [S("left", "arm", "below", "right", "arm")]
    thigh = S("left", "thigh", "horizontal", kind="segment_orientation")
    shin = S("left", "shin", "horizontal", kind="segment_orientation")
    assert entity_aggregation([thigh, shin], None, 1.0)[0].part1 == "leg"
    both = symmetry_aggregation([thigh, thigh._replace(side1="right")], None, 1.0)
    assert both == [thigh._replace(side1="both")]
    crossed = symmetry_aggregation([S("left", "hand", "close", "left", "knee", "distance"),
                                    S("right", "hand", "close", "right", "knee", "distance")], None, 1.0)
    assert [(s.side1, s.side2) for s in crossed] == [("both", "both")]
    objects = symmetry_aggregation([S("left", "hand", "close", "left", "knee", "distance"),
                                    S("left", "hand", "close", "right", "knee", "distance")], None, 1.0)
    assert [(s.side1, s.side2) for s in objects] == [("left", "both")]
    # never applied with probability 0
    assert len(symmetry_aggregation([thigh, thigh._replace(side1="right")], random.Random(0), 0.0)) == 2


def test_polish_says_same_part_pairs_canonically():
    below = S("left", "hand", "below", "right", "hand")
    assert polish([below], None) == [S("right", "hand", "above", "left", "hand")]
    apart = S("left", "foot", "wide", "right", "foot", kind="distance")
    assert polish([apart], None) == [S("both", "foot", "wide", None, None, kind="distance")]
    sides = {polish([below], random.Random(i))[0].side1 for i in range(30)}
    assert sides == {"left", "right"}


def test_interpretation_and_focus_pieces():
    a = S("left", "knee", "slightly bent", kind="angle")
    b = S("right", "elbow", "slightly bent", kind="angle")
    c = S("left", "hand", "above", None, "neck")
    d = S("left", "hand", "front", None, "torso", kind="relative_z")
    pieces = build_pieces([a, b, c, d], None, 1.0, aggregate=True, part_rank=PART_RANK)
    assert [p.subjects for p in pieces] == [(("right", "elbow"), ("left", "knee")), (("left", "hand"),)]
    assert len(pieces[1].predicates) == 2
    assert len(build_pieces([a, b, c, d], None, 1.0, aggregate=False, part_rank=PART_RANK)) == 4


def test_caption_statements_reads_well():
    statements = [S(None, "body", "kneeling", kind="super"), S("left", "elbow", "right angle", kind="angle"),
                  S("left", "hand", "above", None, "neck")]
    text = caption_statements(statements, CANONICAL, None)
    assert text == "The person is kneeling. The left elbow is bent at a right angle. The left hand is raised high."
    assert caption_statements([], CANONICAL, None).startswith("The person is ")
    for seed in range(20):
        text = caption_statements(statements, CANONICAL.__class__(), random.Random(seed))
        assert text[0].isupper() and text.endswith(".") and "  " not in text
