"""The pre-parse checks of ``posture/inputs.py`` take shortcuts (a lookahead in the YAML 1.1 test, C
counts before the nesting loop): they must decide exactly what the plain versions decide."""

from __future__ import annotations

import random
import re

import pytest

from garrison.posture import inputs

PLAIN_NEEDS_PYYAML = re.compile(inputs._NEEDS_PYYAML.pattern.replace("(?=[yYnNoO0-9+\\-])", "", 1), re.M)
PIECES = [": ", "- ", "[", ",", " ", "\t", "\n", "y", "Y", "yes", "no", "On", "OFF", "0", "07", "0o7", "08", "1:30",
          "-1:5", "+2_0:59", "x", "true", "]", "}", "#", "a", ":", "-", "~", "'", '"']  # fmt: skip


def _texts(n: int) -> list[str]:
    rng = random.Random(7)
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(1, 25))) for _ in range(n)]


def test_the_yaml11_test_finds_what_the_plain_pattern_finds() -> None:
    assert inputs._NEEDS_PYYAML.pattern != PLAIN_NEEDS_PYYAML.pattern
    for text in _texts(20_000):
        a, b = inputs._NEEDS_PYYAML.search(text), PLAIN_NEEDS_PYYAML.search(text)
        assert (a and a.span()) == (b and b.span()), repr(text)


def _plain_too_deep(doc: str) -> str:
    depth = top = 0
    for b in inputs._BRACKETS.findall(doc):
        depth = depth + 1 if b in "[{" else max(0, depth - 1)
        top = max(top, depth)
        if top > inputs.MAX_DEPTH:
            return f"nested deeper than {inputs.MAX_DEPTH} levels"
    if inputs._DEEP_INDENT.search(doc):
        return f"indented deeper than {inputs.MAX_DEPTH * 4} columns"
    return ""


@pytest.mark.parametrize(
    "doc",
    [
        "[" * 200,
        "[" * 201,
        "[" * 201 + "]" * 201,
        "[]" * 300,
        "{" * 150 + "[" * 51,
        "a:\n" + " " * 801 + "b: 1\n",
        "a:\n" + " " * 800 + "b: 1\n",
        "a:\n" + "\t" * 801 + "b: 1\n",
        "a:\n" + " \t" * 401 + "b: 1\n",
        "x: " + " " * 900 + "y\n",  # a long run of blanks that is not at a line start
        "",
    ],
)
def test_the_nesting_check_decides_as_the_plain_loop(doc: str) -> None:
    assert inputs._too_deep(doc) == _plain_too_deep(doc)


def test_the_nesting_check_on_random_brackets() -> None:
    rng = random.Random(11)
    for _ in range(300):
        doc = "".join(rng.choice("[[[{{]}  x\n") for _ in range(rng.randint(0, 900)))
        assert inputs._too_deep(doc) == _plain_too_deep(doc)


def test_document_starts_are_the_patterns_matches() -> None:
    rng = random.Random(5)
    pieces = ["---", "...", "--- !tag", "---\t{a: 1}", "--", "----", " ---", "... ", "...x", "a: 1", "#c", "\n", "\r\n"]
    texts = ["---", "...", "", "a\n---", "---\n---\n", "x ---\n--- y\n...\n"]
    texts += ["\n".join(rng.choice(pieces) for _ in range(rng.randint(0, 30))) for _ in range(5_000)]
    for text in texts:
        want = [(m.start(), m.end(), m.group()) for m in inputs._DOC_START.finditer(text)]
        assert [(m.start(), m.end(), m.group()) for m in inputs._doc_starts(text)] == want, repr(text)
