"""What every benchmark's command line shares."""

from __future__ import annotations

import argparse


def bench_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser described by the first line of the benchmark's docstring, whose --help shows
    each option's default."""
    return argparse.ArgumentParser(
        description=doc.splitlines()[0] if doc else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
