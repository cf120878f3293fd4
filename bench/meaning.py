"""Benchmark: replies understood by meaning. Prints figures; asserts nothing about time.

Run: python bench/meaning.py [--rounds 5]
The model's load time (once per process), then per reply: ``read_answer`` (a yes/no/maybe
reading) and ``match_phrase`` (a code word by meaning) over the labelled replies in
tests/data/replies.csv, first seen (nothing cached) and again; against normalized exact matching
(what code words did before) in the same run. The issue's target: well under 100 ms a reply.
"""

from __future__ import annotations

import csv
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.arguments import bench_parser  # noqa: E402
from core.meaning import model  # noqa: E402
from core.meaning.judge import match_phrase, read_answer, warm  # noqa: E402
from core.meaning.text import normalize  # noqa: E402


def _timed(fn, items):  # type: ignore[no-untyped-def]
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _line(name: str, ms: list[float]) -> str:
    p99 = statistics.quantiles(ms, n=100)[98] if len(ms) >= 100 else max(ms)
    return f"   {name}: p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, max {max(ms):.2f} ms"


def main(rounds: int) -> None:
    with (ROOT / "tests" / "data" / "replies.csv").open(encoding="utf-8") as f:
        replies = [r["text"] for r in csv.DictReader(f)]
    t0 = time.perf_counter()
    warm()
    print(f"model loaded, examples embedded in {time.perf_counter() - t0:.2f} s (once a process)")
    print(f"{len(replies)} replies:")
    first = _timed(read_answer, replies)
    print(_line("read_answer, first time each", first))
    model.embed.cache_clear()
    warm()  # the examples again; the replies are not cached now
    cold = _timed(lambda r: match_phrase(r, "спасибо"), replies)
    print(_line("match_phrase, nothing cached", cold))
    again: list[float] = []
    for _ in range(rounds):
        again += _timed(read_answer, replies)
    print(_line(f"read_answer, {rounds} rounds again", again))
    base = _timed(lambda r: normalize(r) == "спасибо", replies * rounds)
    ratio = statistics.median(cold) / max(statistics.median(base), 1e-6)
    print(_line("baseline: normalized exact match", base) + f" (meaning costs {ratio:,.0f}x)")


if __name__ == "__main__":
    parser = bench_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="times the sample replies are read")
    main(parser.parse_args().rounds)
