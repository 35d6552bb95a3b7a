"""The de-identification detector with each candidate spaCy pipeline, side by side.

    .venv/bin/python bench/deidentify_models.py [--repeat 3] [MODEL ...]

Runs ``bench/deidentify.py --json --model MODEL`` in a fresh process per model (one at a time,
so that the peak memory is that model's and the timings do not share the CPU) and prints, per
model: recall and precision on the tuning and held-out parts, the process's peak resident
memory, the loading time and the p50/p99 analysis time of 1,000-character fields. A model
that is not installed is reported as such; candidates are installed by hand in the working
copy's environment, never as dependencies (docs/deidentification.md says which install from
PyPI and which cannot). The product's model is ``shared.deidentify.SPACY_MODEL``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CANDIDATES = ("fr_core_news_md", "fr_core_news_sm", "fr_core_news_lg")


def run(model: str, repeat: int) -> dict | None:
    """The figures of one model, or None if it is not installed."""
    if importlib.util.find_spec(model) is None:
        return None
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "deidentify.py"), "--json",
                          "--model", model, "--repeat", str(repeat)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def row(figures: dict) -> str:
    cells = []
    for part in ("tuning", "held-out"):
        overall = figures["parts"][part]["scores"]["overall"]
        recall = overall["found"] / overall["expected"]
        precision = overall["correct"] / overall["predicted"] if overall["predicted"] else 1
        cells += [f"{recall:.1%}", f"{precision:.1%}"]
    timing = figures["parts"]["tuning"]
    return (f"{figures['model']:<17}" + "".join(f"{c:>10}" for c in cells)
            + f"{figures['max_rss_mib']:>10.0f}{figures['load_s']:>8.1f}"
            + f"{timing['block_p50_ms']:>9.1f}{timing['block_p99_ms']:>9.1f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=list(CANDIDATES))
    parser.add_argument("--repeat", type=int, default=3, help="timing passes over each part")
    args = parser.parse_args(argv)
    print(f"{'model':<17}{'tune rec':>10}{'tune prec':>10}{'held rec':>10}{'held prec':>10}"
          f"{'RSS MiB':>10}{'load s':>8}{'p50 ms':>9}{'p99 ms':>9}")
    for model in args.models:
        figures = run(model, args.repeat)
        print(row(figures) if figures else f"{model:<17}  not installed", flush=True)
    print("p50/p99: analysis time of a 1,000-character field (tuning part's narratives).")


if __name__ == "__main__":
    main()
