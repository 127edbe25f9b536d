"""Measure the offline parser's pronoun resolution against annotated stories.

Each story file (``tests/data/stories/**/*.json``) lists, in story order, every third-person
pronoun it contains with the characters it refers to (``"referents": []`` for a pronoun that
refers to something else, such as objects). A pronoun counts as correct when the parser's
referents equal the annotation as a set (a pronoun that refers to no character is correct only
if the parser left it unresolved).

Usage::

    python -m llm.evaluate [FOLDER ...]   # default: tests/data/stories, heldout/, heldout2/
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm.offline import analyze_story

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "tests" / "data" / "stories"


@dataclass
class Score:
    """Correct / total, overall and per pronoun (lower-cased)."""

    correct: int = 0
    total: int = 0
    per_pronoun: dict[str, list[int]] = field(default_factory=dict)  # word -> [correct, total]
    errors: list[str] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        """Fraction of pronouns resolved correctly (1.0 when there are none)."""
        return self.correct / self.total if self.total else 1.0

    def add(self, word: str, ok: bool, where: str) -> None:
        """Count one pronoun."""
        self.total += 1
        self.correct += ok
        counts = self.per_pronoun.setdefault(word.lower(), [0, 0])
        counts[0] += ok
        counts[1] += 1
        if not ok:
            self.errors.append(where)


def load_stories(folders: Iterable[Path]) -> list[dict[str, Any]]:
    """Every ``*.json`` story directly inside ``folders``, sorted by file name."""
    stories = []
    for folder in folders:
        for path in sorted(Path(folder).glob("*.json")):
            data = json.loads(path.read_text(encoding="utf-8"))
            data.setdefault("id", path.stem)
            stories.append(data)
    return stories


def score_story(story: dict[str, Any], score: Score) -> None:
    """Add one story's pronouns to ``score``.

    Raises:
        ValueError: the annotation does not list the same pronouns as the parser found.
    """
    analysis = analyze_story(story["story"], [tuple(c) for c in story["characters"]])
    expected: Sequence[dict[str, Any]] = story.get("pronouns", [])
    found = analysis.resolutions
    if [e["pronoun"].lower() for e in expected] != [r.pronoun.lower() for r in found]:
        raise ValueError(
            f"{story['id']}: annotated pronouns {[e['pronoun'] for e in expected]} "
            f"!= found {[r.pronoun for r in found]}"
        )
    for e, r in zip(expected, found, strict=True):
        ok = set(e["referents"]) == set(r.referents)
        where = (
            f"{story['id']} sentence {r.sentence + 1} {r.pronoun!r}: "
            f"got {list(r.referents)}, want {e['referents']}"
        )
        score.add(r.pronoun, ok, where)


def evaluate(folders: Iterable[Path]) -> Score:
    """Score every story found in ``folders``."""
    score = Score()
    for story in load_stories(folders):
        score_story(story, score)
    return score


def format_score(name: str, score: Score) -> str:
    """A small text report."""
    lines = [f"{name}: {score.correct}/{score.total} = {score.accuracy:.1%}"]
    for word, (ok, n) in sorted(score.per_pronoun.items()):
        lines.append(f"  {word:<11} {ok}/{n}")
    lines += [f"  miss: {e}" for e in score.errors]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the accuracy for each folder and for all of them together."""
    parser = argparse.ArgumentParser(prog="python -m llm.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*", type=Path)
    args = parser.parse_args(argv)
    folders = args.folders or [DEFAULT_DIR, DEFAULT_DIR / "heldout", DEFAULT_DIR / "heldout2"]
    total = Score()
    for folder in folders:
        score = evaluate([folder])
        print(format_score(str(folder), score))
        total.correct += score.correct
        total.total += score.total
        for word, (ok, n) in score.per_pronoun.items():
            counts = total.per_pronoun.setdefault(word, [0, 0])
            counts[0] += ok
            counts[1] += n
    if len(folders) > 1:
        print(format_score("all", Score(total.correct, total.total, total.per_pronoun)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
