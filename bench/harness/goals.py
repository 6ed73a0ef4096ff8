"""Goals as the benchmarks judge them, one tagged line each, for bench/run_all.py to collect.

A benchmark prints its own report as it likes; beside each goal (or key figure, when it has
no goal) it also calls ``goal()``, which prints one line that run_all.py reads back:
``[goal] name | figure | target | verdict``.
"""

from __future__ import annotations

MARK = "[goal]"


def goal(name: str, figure: str, target: str = "-", met: bool | None = None) -> None:
    verdict = "-" if met is None else "met" if met else "NOT MET"
    print(f"{MARK} {name} | {figure} | {target} | {verdict}", flush=True)


def parse(line: str) -> tuple[str, str, str, str] | None:
    """(name, figure, target, verdict) of a line goal() printed; None for any other line."""
    if not line.startswith(MARK):
        return None
    parts = [part.strip() for part in line.removeprefix(MARK).split(" | ")]
    if len(parts) != 4:
        return None
    name, figure, target, verdict = parts
    return name, figure, target, verdict
