"""Benchmark the chat matcher (advice/chat.py): how often it finds the right point, and how fast.

1. Quality, on the labelled messages of tests/advice/chat_messages.yaml: top-1 accuracy on the
   on-topic ones (correct when the best point is one of the message's labels; a message about two
   points has both), for all of them, for the part the cues were tuned on and for the held-out
   third, which was fixed before any cue existed and never used to choose one. Off-topic: the
   share answered without a confident point. Goals: top-1 >= 90 %, off-topic >= 90 %.
2. Speed of one match, p50 and p99: the labelled messages; 2,000-character messages made of
   them; and 2,000 characters of words never seen before (no word memoised yet: the worst
   case). Goal: p99 <= 1 ms for a 2,000-character message.
3. Memory: the resident set added by importing advice.chat into a process that has loaded the
   content (as the bot has), with its bytecode cached and compiled at import; by building the
   matcher; and by its memo of the text already read, once full.

Hostile messages are matched too. Any match that raises makes the run invalid (exit 1); the
figures are only printed. Run from the repository root:

    .venv/bin/python bench/chat.py [--quick] [--misses tune|held-out|off-topic]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import string
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from advice.chat import ChatMatch, Matcher
from advice.content import load_content

REPO = Path(__file__).resolve().parents[1]
MESSAGES = REPO / "tests" / "advice" / "chat_messages.yaml"
LONG_CHARS = 2_000
GOAL_TOP1 = 0.90
GOAL_OFF_TOPIC = 0.90
GOAL_P99_LONG_MS = 1.0

HOSTILE = (
    "",
    " ",
    "\ud800",
    "money \udfff salary",
    "\u200b" * 50,
    "m\u200bo\u200bn\u200be\u200by",
    "@everyone @here <@123456789012345678> <#1> <:money:123> <t:1700000000:R>",
    "https://example.com/salary?money=1 www.fame.example",
    "```\nsalary = pay_cut(money)\n```",
    "💰" * 1000,
    "a" * 5000,
    "x" * 100_000,
    "Ph.D." * 800,
    ("salary " * 700)[:4000],
    "".join(chr(c) for c in range(0x20, 0x3000)),
    "\x00\x01\x02 money \x7f",
    "ＭＯＮＥＹ ｓａｌａｒｙ",
)


@dataclass(frozen=True)
class Labelled:
    text: str
    points: tuple[str, ...]  # () for off-topic
    held_out: bool


def load_labelled(path: Path = MESSAGES) -> list[Labelled]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [
        Labelled(str(m["text"]), tuple(m["points"]), bool(m.get("held_out", False)))
        for m in data["messages"]
    ]


PARTS = ("all", "tune", "held-out")


@dataclass
class Quality:
    top1: dict[str, tuple[int, int]]  # part -> (correct, on-topic messages)
    off_topic: dict[str, tuple[int, int]]  # part -> (not confident, off-topic messages)
    misses: dict[str, list[tuple[Labelled, ChatMatch]]]


def evaluate(matcher: Matcher, labelled: Sequence[Labelled], errors: list[str]) -> Quality:
    """Top-1 accuracy and the off-topic share by part (all, tune, held-out), with the misses;
    a match that raises counts as a miss and is added to `errors`."""
    top1 = {part: [0, 0] for part in PARTS}
    off = {part: [0, 0] for part in PARTS}
    misses: dict[str, list[tuple[Labelled, ChatMatch]]] = {
        "tune": [],
        "held-out": [],
        "off-topic": [],
    }
    for item in labelled:
        try:
            result = matcher.match(item.text)
        except Exception:
            errors.append(f"labelled: {item.text[:60]!r}\n{traceback.format_exc()}")
            result = ChatMatch(points=(), confident=False)
        part = "held-out" if item.held_out else "tune"
        if item.points:
            right = result.confident and result.points[0].slug in item.points
            tally = top1
        else:
            right = not result.confident
            tally = off
        for key in ("all", part):
            tally[key][0] += right
            tally[key][1] += 1
        if not right:
            misses["off-topic" if not item.points else part].append((item, result))
    return Quality(
        top1={key: (value[0], value[1]) for key, value in top1.items()},
        off_topic={key: (value[0], value[1]) for key, value in off.items()},
        misses=misses,
    )


# --- speed ---------------------------------------------------------------------------------------


@dataclass
class Timings:
    """Wall-clock time per match, and the CPU time of this thread alone (which other work on the
    machine does not lengthen)."""

    label: str
    nanoseconds: list[int] = field(default_factory=list)
    cpu_nanoseconds: list[int] = field(default_factory=list)

    def line(self) -> str:
        ms = [n / 1e6 for n in self.nanoseconds]
        cpu = [n / 1e6 for n in self.cpu_nanoseconds]
        return (
            f"  {self.label:<42} n={len(ms):>5}  p50 {percentile(ms, 0.50):.3f} ms"
            f"  p99 {percentile(ms, 0.99):.3f} ms  max {max(ms):.3f} ms"
            f"  | CPU p50 {percentile(cpu, 0.50):.3f}  p99 {percentile(cpu, 0.99):.3f} ms"
        )


@dataclass
class MatchingReport:
    """What the matching section measured; `errors` lists every match that raised."""

    quality: Quality
    timings: list[Timings]
    errors: list[str]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def long_messages(labelled: Sequence[Labelled], count: int, seed: int) -> list[str]:
    """Messages of exactly LONG_CHARS characters, made of the labelled ones in a random order."""
    rng = random.Random(seed)
    texts = [item.text for item in labelled]
    out = []
    for _ in range(count):
        parts: list[str] = []
        length = 0
        while length < LONG_CHARS:
            parts.append(rng.choice(texts))
            length += len(parts[-1]) + 2
        out.append("\n\n".join(parts)[:LONG_CHARS])
    return out


def unseen_words_messages(count: int, seed: int) -> list[str]:
    """Messages of LONG_CHARS characters of made-up words: nothing memoised, every word new."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        words: list[str] = []
        length = 0
        while length < LONG_CHARS:
            words.append("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10))))
            length += len(words[-1]) + 1
        out.append(" ".join(words)[:LONG_CHARS])
    return out


def time_matches(
    match: Callable[[str], ChatMatch], texts: Sequence[str], label: str, errors: list[str]
) -> Timings:
    timings = Timings(label)
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for text in texts:
        start, cpu_start = clock(), cpu_clock()
        try:
            match(text)
        except Exception:
            errors.append(f"{label}: {text[:60]!r}\n{traceback.format_exc()}")
            continue
        cpu_end, end = cpu_clock(), clock()
        timings.nanoseconds.append(end - start)
        timings.cpu_nanoseconds.append(cpu_end - cpu_start)
    return timings


def measure_matching(matcher: Matcher, labelled: Sequence[Labelled], quick: bool) -> MatchingReport:
    """The matcher alone, in this process: quality on the labelled set, then time per match."""
    errors: list[str] = []
    quality = evaluate(matcher, labelled, errors)
    rounds = 3 if quick else 30
    count = 200 if quick else 2_000
    texts = [item.text for item in labelled]
    for text in HOSTILE:
        time_matches(matcher.match, [text], "hostile", errors)
    gc.collect()
    timings = [
        time_matches(matcher.match, texts * rounds, "labelled messages", errors),
        time_matches(
            matcher.match, long_messages(labelled, count, seed=1), "2,000 chars of them", errors
        ),
        time_matches(
            matcher.match,
            unseen_words_messages(count // 4, seed=2),
            "2,000 chars of unseen words (worst case)",
            errors,
        ),
    ]
    return MatchingReport(quality=quality, timings=timings, errors=errors)


# --- end-to-end DM latency: to be built -----------------------------------------------------------
# A later section measures a member's DM through the real bot and the Discord emulator (message in,
# answer out), beside the matcher's own time above. Write it as
# `measure_dm_latency(quick: bool) -> list[Timings]` (bench/_harness.py starts the emulator and the
# bot), call it from `main` after `measure_matching`, and print its Timings the same way.


# --- memory --------------------------------------------------------------------------------------


_MEMORY_SCRIPT = """
import sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'): return int(line.split()[1]) * 1024
import advice.content
advice.content.default_content()
before = rss()
import advice.chat
imported = rss()
matcher = advice.chat.default_matcher()
built = rss()
for text in sys.stdin.read().split("\\0"):
    matcher.match(text)
print(before, imported, built, rss(), len(matcher._memo))
"""


@dataclass
class Memory:
    imported_compiled: int  # bytes added by `import advice.chat`, compiling it from source
    imported_cached: int  # the same with its bytecode cached (.pyc), as an installed package is
    built: int  # building the default matcher
    memo_full: int  # matching until the memo of pieces read is full
    memo_entries: int


def memory_cost() -> Memory:
    """VmRSS of fresh interpreters that have loaded the content (as the bot has), then import
    advice.chat, build the default matcher, and match made-up words until the memo is full."""
    filler = "\0".join(unseen_words_messages(60, seed=3))
    with tempfile.TemporaryDirectory() as cache:
        runs = []
        for environment in (
            {"PYTHONDONTWRITEBYTECODE": "1"},  # compiled from source, nothing written
            {"PYTHONPYCACHEPREFIX": cache},  # writes the bytecode...
            {"PYTHONPYCACHEPREFIX": cache},  # ...and reads it
        ):
            env = {
                key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"
            }
            out = subprocess.run(
                [sys.executable, "-c", _MEMORY_SCRIPT],
                cwd=REPO,
                input=filler,
                capture_output=True,
                text=True,
                check=True,
                env={**env, **environment},
            )
            runs.append([int(field) for field in out.stdout.split()])
    compiled, _, cached = runs
    return Memory(
        imported_compiled=compiled[1] - compiled[0],
        imported_cached=cached[1] - cached[0],
        built=cached[2] - cached[1],
        memo_full=cached[3] - cached[2],
        memo_entries=cached[4],
    )


# --- report --------------------------------------------------------------------------------------


def share(part: tuple[int, int]) -> str:
    right, total = part
    return f"{right / total:.1%} ({right}/{total})" if total else "n/a"


def kib(size: int) -> str:
    return f"{size / 2**10:,.0f} KiB"


def show_misses(misses: list[tuple[Labelled, ChatMatch]]) -> None:
    for item, result in misses:
        got = ", ".join(f"{p.slug} {p.score:g} {list(p.words)}" for p in result.points)
        sure = "confident" if result.confident else "not confident"
        print(f"  want {list(item.points) or 'off-topic'}; got {got or 'nothing'} ({sure})")
        print(f"      {' '.join(item.text.split())[:150]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    parser.add_argument(
        "--misses",
        choices=("tune", "held-out", "off-topic"),
        help="list the messages of one part that the matcher got wrong",
    )
    args = parser.parse_args(argv)

    load = os.getloadavg()
    print(
        f"machine: {len(os.sched_getaffinity(0))} CPUs, Python {platform.python_version()}; "
        f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}"
    )
    labelled = load_labelled()
    matcher = Matcher.from_content(load_content())
    report = measure_matching(matcher, labelled, args.quick)

    quality = report.quality
    print(f"\nQuality on {len(labelled)} labelled messages ({MESSAGES.relative_to(REPO)})")
    print(f"  {'':<28}{'all':>18}{'tuned part':>18}{'held-out part':>18}")
    print(
        f"  {'top-1, on-topic':<28}"
        + "".join(f"{share(quality.top1[part]):>18}" for part in PARTS)
        + f"   goal >= {GOAL_TOP1:.0%}"
    )
    print(
        f"  {'off-topic, not confident':<28}"
        + "".join(f"{share(quality.off_topic[part]):>18}" for part in PARTS)
        + f"   goal >= {GOAL_OFF_TOPIC:.0%}"
    )
    print(f"\nTime per match (goal: p99 <= {GOAL_P99_LONG_MS:g} ms for {LONG_CHARS:,} chars)")
    for timings in report.timings:
        print(timings.line())

    memory = memory_cost()
    print("\nMemory (VmRSS of a fresh process that has loaded the content)")
    print(f"  import advice.chat, bytecode cached     +{kib(memory.imported_cached)}")
    print(f"  import advice.chat, compiled at import  +{kib(memory.imported_compiled)}")
    print(f"  build the default matcher               +{kib(memory.built)}")
    print(
        f"  match until the memo is full            +{kib(memory.memo_full)}"
        f" ({memory.memo_entries:,} pieces)"
    )

    if args.misses:
        print(f"\nMisses, {args.misses}:")
        show_misses(quality.misses[args.misses])
    if report.errors:
        print(f"\nINVALID: {len(report.errors)} match(es) raised:", file=sys.stderr)
        for error in report.errors:
            print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
