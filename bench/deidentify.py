"""De-identification benchmark: recall, precision and analysis time of the detector.

    .venv/bin/python bench/deidentify.py [--repeat 5]

Runs ``shared.deidentify.analyse`` on the synthetic narratives of
``tests/data/deidentify_corpus.yaml`` (inline markup ``[[kind:text]]`` marks the expected
spans) and prints, per kind and overall, recall and precision. A detection counts when it
overlaps an expected span of the same kind; "any kind" counts an expected span found under
another kind too (it is flagged all the same). Times: the median and p99 over every field of
the analysis time per 1,000 characters, and of fields of exactly 1,000 characters made of
consecutive narratives (the model loaded beforehand, as in a running intake process).

Targets (issue 8): recall >= 95 %, precision >= 80 %, p99 <= 150 ms per 1,000 characters.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402  (the repository root goes on sys.path first)

from shared.deidentify import KINDS, Detection, analyse, forget_analyses, load  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "deidentify_corpus.yaml"
_MARK = re.compile(r"\[\[(\w+):(.+?)\]\]", re.DOTALL)


@dataclass(frozen=True)
class Span:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Narrative:
    text: str
    expected: tuple[Span, ...]


def load_corpus(path: Path = CORPUS) -> list[Narrative]:
    """The narratives, markup removed, with their expected spans."""
    narratives = []
    for marked in yaml.safe_load(path.read_text(encoding="utf-8"))["narratives"]:
        text, spans, last = "", [], 0
        for match in _MARK.finditer(marked):
            text += marked[last:match.start()]
            kind, value = match.group(1), match.group(2)
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r} in {path.name}")
            spans.append(Span(kind, len(text), len(text) + len(value)))
            text += value
            last = match.end()
        narratives.append(Narrative(text + marked[last:], tuple(spans)))
    return narratives


@dataclass
class Score:
    expected: int = 0
    found: int = 0  # expected spans found with their kind
    found_any_kind: int = 0
    predicted: int = 0
    correct: int = 0  # predictions overlapping an expected span of their kind

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def recall_any_kind(self) -> float:
        return self.found_any_kind / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


def _overlaps(a: Span | Detection, b: Span | Detection) -> bool:
    return a.start < b.end and b.start < a.end


def evaluate(narratives: list[Narrative]) -> dict[str, Score]:
    """Scores per kind and under ``"overall"``."""
    scores = {kind: Score() for kind in (*KINDS, "overall")}
    for narrative in narratives:
        predicted = analyse(narrative.text)
        for span in narrative.expected:
            hit = [p for p in predicted if _overlaps(p, span)]
            for key in (span.kind, "overall"):
                scores[key].expected += 1
                scores[key].found += any(p.kind == span.kind for p in hit)
                scores[key].found_any_kind += bool(hit)
        for p in predicted:
            right = any(s.kind == p.kind and _overlaps(p, s) for s in narrative.expected)
            for key in (p.kind, "overall"):
                scores[key].predicted += 1
                scores[key].correct += right
    return scores


def timings(narratives: list[Narrative], repeat: int) -> tuple[list[float], list[float]]:
    """Milliseconds per 1,000 characters for every field, and for 1,000-character fields."""
    load()
    texts = [n.text for n in narratives]
    joined = " ".join(texts)
    blocks = [joined[i:i + 1000] for i in range(0, len(joined) - 999, 1000)]
    per_field, per_block = [], []
    for _ in range(repeat):
        for text in texts:
            forget_analyses()  # the detector's own time, not the memo's
            started = time.perf_counter()
            analyse(text)
            per_field.append((time.perf_counter() - started) * 1000 * 1000 / len(text))
        for block in blocks:
            forget_analyses()
            started = time.perf_counter()
            analyse(block)
            per_block.append((time.perf_counter() - started) * 1000)
    return per_field, per_block


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timing passes over the corpus")
    args = parser.parse_args(argv)
    narratives = load_corpus()
    started = time.perf_counter()
    load()
    print(f"model loaded in {time.perf_counter() - started:.1f} s; {len(narratives)} "
          f"narratives, {sum(len(n.expected) for n in narratives)} expected spans, "
          f"{sum(not n.expected for n in narratives)} without any")
    scores = evaluate(narratives)
    print(f"{'kind':<16}{'expected':>9}{'found':>7}{'recall':>9}{'any kind':>10}"
          f"{'predicted':>11}{'precision':>11}")
    for kind, score in scores.items():
        print(f"{kind:<16}{score.expected:>9}{score.found:>7}{score.recall:>9.1%}"
              f"{score.recall_any_kind:>10.1%}{score.predicted:>11}{score.precision:>11.1%}")
    per_field, per_block = timings(narratives, args.repeat)
    print(f"analysis, ms per 1,000 characters over {len(per_field)} fields: "
          f"median {statistics.median(per_field):.1f}, p99 {p99(per_field):.1f}")
    print(f"fields of 1,000 characters ({len(per_block)}): "
          f"median {statistics.median(per_block):.1f} ms, p99 {p99(per_block):.1f} ms")


if __name__ == "__main__":
    main()
