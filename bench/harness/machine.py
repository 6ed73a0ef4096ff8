"""What ran a benchmark: the machine, its load, and which code was measured."""

from __future__ import annotations

import os
import platform
import subprocess

from harness.paths import REPO


def load_average() -> str:
    # Other work on the machine shows up in the p99s; this says how much there was.
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def machine_line() -> str:
    import discord

    return (
        f"machine: {len(os.sched_getaffinity(0))} CPUs, {platform.platform()}; "
        f"Python {platform.python_version()}; discord.py {discord.__version__}; {load_average()}"
    )


def code_version() -> str:
    """Which code was measured: the commit, and whether the bot's files differ from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "bot.py", "cogs", "db"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        return "code: not a git checkout"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"code: {head}" + (f" + uncommitted {', '.join(changed)}" if changed else "")
