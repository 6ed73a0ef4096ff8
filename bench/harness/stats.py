"""The statistics the benchmarks print: percentiles, latency summaries, sizes, table rules."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Stats:
    """Latencies in seconds, shown in ms."""

    samples: Sequence[float]

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def p50(self) -> float:
        return percentile(self.samples, 0.50) * 1000

    @property
    def p99(self) -> float:
        return percentile(self.samples, 0.99) * 1000

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) * 1000

    def cells(self) -> str:
        return f"n {self.n:5d}  p50 {self.p50:8.2f} ms  p99 {self.p99:8.2f} ms"


def mib(size: float) -> str:
    return f"{size / 2**20:.1f} MiB"


def print_header(header: str) -> None:
    """A table's header (indented two spaces) and the rule under it."""
    print(header)
    print("  " + "-" * (len(header) - 2))
