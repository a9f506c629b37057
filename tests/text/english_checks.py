"""Surface checks shared by the caption and instruction tests: what makes a generated text not read as
written English (the per-text-kind checks live beside their tests)."""

from __future__ import annotations

import re

_DOUBLED = re.compile(r"\b(\w+)\s+\1\b", re.IGNORECASE)


def surface_problems(text: str) -> list[str]:
    """Empty, extra spaces, missing final period, unfilled slots, doubled words, "the the", space before
    punctuation, lower-cased "L-shape", sentences not capitalised."""
    if not text.strip():
        return ["empty"]
    problems = []
    if "  " in text or text != text.strip():
        problems.append("extra spaces")
    if not text.endswith("."):
        problems.append("no final period")
    if any(ch in text for ch in "{}<>_\0"):
        problems.append("unfilled slot or identifier")
    if _DOUBLED.search(text):
        problems.append(f"doubled word {_DOUBLED.search(text).group(0)!r}")
    if re.search(r"\bthe the\b", text, re.IGNORECASE):
        problems.append("the the")
    if " ." in text or " ," in text or ",," in text or ".." in text:
        problems.append("space before punctuation")
    if re.search(r"\bl-shape\b", text):
        problems.append("lower-cased L-shape")
    for sentence in text.rstrip(".").split(". "):
        if not sentence[:1].isupper():
            problems.append(f"sentence not capitalised: {sentence[:30]!r}")
    return problems
