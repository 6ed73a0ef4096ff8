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
4. End to end: a member's DM answered by the real bot (``python bot.py run``, unmodified, on
   SQLite, and on PostgreSQL with ``--postgres-url``) against a bare discord.py bot
   (``bench/bare_bot.py --echo-dms``) answering each DM with a fixed answer of the same size
   and shape (a line, an embed of ~700 characters, three buttons and a select of six points),
   in the same run. Each bot talks to an emulator of its own in a process of its own
   (bench/harness/emulator_server.py, spec validation on, deferred to between rounds); this
   process only sends the DMs and reads back what the emulator recorded (bench/harness/
   dm_load.py). Load: ``--members`` distinct members writing at ``--rate`` DMs a second in
   all, steadily, each member far under the bot's fair use (10 answers a minute); texts drawn
   from tests/advice/chat_messages.yaml (on-topic and off-topic), from the sentences of
   bench/harness/texts.py at lengths up to 2,000 characters, and both combined. After an
   untimed warm-up, ``--rounds`` rounds of ``--count`` DMs per bot, the same DMs for each, the
   bots taking turns in an order that alternates, so machine noise falls on all. Latency: from
   the emulator storing the member's message, just before it sends MESSAGE_CREATE to the bot,
   to the emulator storing the bot's answer, both on the emulator's clock. Goal: p99 <= 2x the
   bare bot. Also the CPU seconds each bot's process used (from /proc) per 1,000 answers.
   Every DM must get exactly one answer (its nonce naming the DM), the one it calls for (the
   bare bot's; Crossroads' conversation answer to the text), with no emulator violation, no
   non-2xx answer, no deduplicated nonce and no error in a bot's log.

Hostile messages are matched too. Any match that raises, and any end-to-end error, makes the
run invalid (exit 1); the figures are only printed. Run from the repository root:

    .venv/bin/python bench/chat.py [--quick] [--misses tune|held-out|off-topic]
        [--rounds 4] [--count 500] [--rate 20] [--members 600] [--warmup 40]
        [--postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/h_chatbench] [--keep DIR]
        [--no-end-to-end]

``--quick`` (under two minutes): fewer matching rounds, 2 end-to-end rounds of 200 DMs from
300 members. PostgreSQL's database (never ``test``) is dropped and created afresh, and dropped
at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import yaml
from bare_bot import ECHO_CONTENT, ECHO_TITLE
from harness import goals
from harness.bot_names import ANSWERS_PER_WINDOW, SLOW_DOWN, Conversation, clean_text
from harness.bots import BARE, CROSSROADS, spawn_bot, wait_child_ready
from harness.database import own_database, postgres_reachable, reset_postgres
from harness.dm_load import Answer, DmTraffic, Exchange, Judge
from harness.emulator import Problems
from harness.emulator_process import FIRST_MEMBER_ID, EmulatorProcess, start_emulator
from harness.jobs import sampled
from harness.machine import code_version, load_average, machine_line
from harness.processes import Child, Children, cpu_seconds, keep_logs, slug
from harness.stats import Stats, percentile, print_header
from harness.texts import text_of_length

from advice.chat import ChatMatch, Matcher
from advice.clock import SystemClock
from advice.content import Content, load_content
from db.crypto import generate_key

REPO = Path(__file__).resolve().parents[1]
MESSAGES = REPO / "tests" / "advice" / "chat_messages.yaml"
LONG_CHARS = 2_000
GOAL_TOP1 = 0.90
GOAL_OFF_TOPIC = 0.90
GOAL_P99_LONG_MS = 1.0
GOAL_P99_RATIO = 2.0  # end to end: Crossroads' p99 against the bare bot's
ANSWER_WITHIN_S = 30.0  # after a batch's last DM: far beyond any answer; only a lost one waits
SETTLE_S = 1.0  # after the last round, before the answers are counted for good

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


# --- end to end: a member's DM answered, against a bare discord.py bot -----------------------


@dataclass(frozen=True)
class Bot:
    """A bot measured end to end: Crossroads on a database, or the bare echo bot."""

    name: str
    kind: str  # BARE or CROSSROADS
    database_url: str | None = None


@dataclass
class Measured:
    """One bot with its emulator, both in processes of their own, and what was measured."""

    bot: Bot
    emulator: EmulatorProcess
    child: Child
    traffic: DmTraffic
    latencies: dict[int, list[float]] = field(default_factory=dict)  # by round, in seconds
    cpu: float = 0.0  # the bot's CPU s over the measured rounds
    emulator_cpu: float = 0.0  # its emulator's, over the same rounds
    answered: int = 0  # DMs answered in the measured rounds
    late_sends: float = 0.0  # the load's worst lag behind its schedule, in s
    problems: Problems = field(default_factory=Problems)

    def pooled(self) -> Stats:
        return Stats([s for samples in self.latencies.values() for s in samples])

    def per_thousand(self, seconds: float) -> float:
        return seconds * 1000 / max(1, self.answered)


@dataclass(frozen=True)
class DmPlan:
    """The DMs of the whole run, in order (the same for every bot): warm-up, then each round."""

    dms: list[tuple[int, str]]  # (member, text)
    warmup: int
    count: int  # per round
    rounds: int

    def round(self, number: int) -> list[tuple[int, str]]:
        first = self.warmup + (number - 1) * self.count
        return self.dms[first : first + self.count]


def dm_text(rng: random.Random, labelled: Sequence[Labelled]) -> str:
    """What a member writes: a labelled message (some off-topic); prose of any length from
    bench/harness/texts.py's sentences (English, some German and French, an emoji); or two or
    three labelled messages in one. At most 2,000 characters, as Discord allows."""
    draw = rng.random()
    if draw < 0.6:
        return rng.choice(labelled).text
    if draw < 0.85:
        length = int(rng.lognormvariate(math.log(150), 1.0))
        return text_of_length(rng, max(12, min(LONG_CHARS, length)))
    parts = [rng.choice(labelled).text for _ in range(rng.randint(2, 3))]
    return "\n\n".join(parts)[:LONG_CHARS]


def plan_dms(labelled: Sequence[Labelled], args: argparse.Namespace) -> DmPlan:
    """Members in a shuffled order, again and again: each writes every members / rate s."""
    rng = random.Random(args.seed)
    members = [FIRST_MEMBER_ID + n for n in range(args.members)]
    rng.shuffle(members)
    total = args.warmup + args.rounds * args.count
    dms = [(members[n % len(members)], dm_text(rng, labelled)) for n in range(total)]
    return DmPlan(dms, args.warmup, args.count, args.rounds)


def describe_plan(plan: DmPlan, matcher: Matcher, args: argparse.Namespace) -> str:
    measured = plan.dms[plan.warmup :]
    lengths = [len(text) for _, text in measured]
    confident = sum(1 for _, text in measured if matcher.match(clean_text(text)).confident)
    every = args.members / args.rate
    return (
        f"{args.members} members, {args.rate:g} DMs a second in all (one every "
        f"{1000 / args.rate:.0f} ms, steady), so each member writes every {every:.0f} s "
        f"({60 / every:.1f} a minute; fair use allows {ANSWERS_PER_WINDOW}); {args.warmup} "
        f"untimed warm-up DMs, then {args.rounds} round(s) of {args.count} per bot, the bots "
        f"alternating; texts {min(lengths)} to {max(lengths)} characters (p50 "
        f"{percentile(lengths, 0.5):.0f}, p99 {percentile(lengths, 0.99):.0f}), "
        f"{confident / len(measured):.0%} matching a point, the rest answered with the six"
    )


def judge_for(bot: Bot, content: Content) -> Judge:
    """Whether an answer is the one this bot owes the DM: the bare bot's fixed one, or
    Crossroads' conversation answer to the text (its lead line and the points shown)."""
    if bot.kind == BARE:

        def bare(exchange: Exchange, answer: Answer) -> str | None:
            right = answer.content == ECHO_CONTENT and answer.titles == (ECHO_TITLE,)
            return None if right else "answers other than the echo"

        return bare
    conversation = Conversation(content, SystemClock())

    def crossroads(exchange: Exchange, answer: Answer) -> str | None:
        if answer.content == SLOW_DOWN:
            return "answers suppressed by fair use"
        expected = conversation.answer(
            clean_text(exchange.text), owner=exchange.user_id, message_id=exchange.message_id
        )
        titles = tuple(embed.title for embed in expected.embeds)
        if answer.content != expected.content or answer.titles != titles:
            return "answers other than the point that fits"
        return None

    return crossroads


async def start_bot(
    children: Children, http: aiohttp.ClientSession, bot: Bot, members: int, key: str
) -> Measured:
    """The bot's emulator (spec checks deferred to between rounds), then the bot."""
    emulator = await start_emulator(
        children, http, members, None, label=f"emulator-{slug(bot.name)}", defer_validation=True
    )
    child = spawn_bot(
        children,
        bot.kind,
        emulator,
        label=slug(bot.name),
        database_url=bot.database_url,
        data_key=key,
        options=("--echo-dms",) if bot.kind == BARE else (),
    )
    return Measured(bot, emulator, child, await DmTraffic.open(emulator))


async def run_batch(
    measured: Measured, dms: list[tuple[int, str]], rate: float, tag: str
) -> tuple[float, float, bool]:
    """``dms`` sent at ``rate``, until all are answered (or 30 s after the last); then the
    emulator's deferred spec checks, off the clock. Returns the bot's and its emulator's CPU
    seconds meanwhile, and whether every DM was answered in time."""
    bot_pid, emulator_pid = measured.child.popen.pid, measured.emulator.child.popen.pid
    bot_cpu, emulator_cpu = cpu_seconds(bot_pid), cpu_seconds(emulator_pid)
    late = await measured.traffic.send_steady(dms, rate, tag)
    measured.late_sends = max(measured.late_sends, late)
    answered = await measured.traffic.wait_answered(ANSWER_WITHIN_S)
    used = cpu_seconds(bot_pid) - bot_cpu, cpu_seconds(emulator_pid) - emulator_cpu
    await measured.traffic.read_log()
    await measured.emulator.post("/check")
    return used[0], used[1], answered


async def measure_dm_latency(
    labelled: Sequence[Labelled], matcher: Matcher, args: argparse.Namespace
) -> list[Measured]:
    """Each bot and its emulator in processes of their own, started once; the warm-up; then
    the rounds, the bots taking turns (the order alternating), each sent the same DMs."""
    content = load_content()
    plan = plan_dms(labelled, args)
    print(f"\nEnd to end, load: {describe_plan(plan, matcher, args)}")
    key = generate_key()
    with tempfile.TemporaryDirectory(prefix="crossroads-chat-") as tmp:
        workdir = Path(tmp)
        bots = [
            Bot("bare discord.py (echo)", BARE),
            Bot("crossroads, SQLite", CROSSROADS, f"sqlite+aiosqlite:///{workdir / 'chat.db'}"),
        ]
        if args.pg is not None:
            await reset_postgres(args.pg)
            url = args.pg.render_as_string(hide_password=False)
            bots.append(Bot("crossroads, PostgreSQL", CROSSROADS, url))
        async with (
            aiohttp.ClientSession() as http,
            sampled(Children(workdir), drop=args.pg) as children,
        ):
            started = time.perf_counter()
            everyone = [await start_bot(children, http, bot, args.members, key) for bot in bots]
            for measured in everyone:
                await wait_child_ready(measured.child, measured.bot.kind, measured.emulator)
            print(f"  {len(everyone)} bots ready in {time.perf_counter() - started:.1f} s")
            for measured in everyone:
                _, _, answered = await run_batch(
                    measured, plan.dms[: plan.warmup], args.rate, "warm-up"
                )
                if not answered:
                    measured.problems.error("warm-up DMs unanswered in time", measured.bot.name)
            for number in range(1, args.rounds + 1):
                order = everyone if number % 2 else everyone[::-1]
                cells = []
                for measured in order:
                    bot_cpu, emulator_cpu, _ = await run_batch(
                        measured, plan.round(number), args.rate, f"round {number}"
                    )
                    exchanges = measured.traffic.tagged(f"round {number}")
                    latencies = [e.latency for e in exchanges if e.latency is not None]
                    measured.latencies[number] = latencies
                    measured.cpu += bot_cpu
                    measured.emulator_cpu += emulator_cpu
                    measured.answered += len(latencies)
                    stats = Stats(latencies)
                    cells.append(
                        f"{measured.bot.name} p50 {stats.p50:.1f} p99 {stats.p99:.1f} ms"
                        if stats.n
                        else f"{measured.bot.name}: no answers"
                    )
                print(f"  round {number}: {'; '.join(cells)}; {load_average()}")
            await asyncio.sleep(SETTLE_S)  # an answer sent twice would land by now
            for measured in everyone:
                await conclude(measured, children, judge_for(measured.bot, content))
            if args.keep:
                keep_logs(workdir, args.keep)
    return everyone


async def conclude(measured: Measured, children: Children, judge: Judge) -> None:
    """The run's errors for one bot: every DM answered once and rightly, the emulator's
    counters, the bot's log and exit code. Stops the bot and its emulator."""
    await measured.traffic.read_log()
    await measured.emulator.post("/check")
    problems = measured.problems
    problems.absorb(measured.traffic.check(judge))
    counters = await measured.emulator.get("/counters")
    if counters["violations"]:
        problems.errors["emulator violations"] += counters["violations"]
        report = await measured.emulator.get("/report")
        for sample in report["violation_samples"]:
            problems.example("emulator violations", sample)
    if counters["nonce_duplicates"]:
        problems.errors["deduplicated nonces"] += counters["nonce_duplicates"]
    creates, sent = counters["message_create_requests"], measured.traffic.sent
    if creates != sent:
        problems.error("Create Message requests other than one a DM", f"{creates} for {sent} DMs")
    for status, count in counters["statuses"].items():
        if not 200 <= int(status) < 300:
            problems.statuses[int(status)] += count
    await children.stop(measured.child)
    for line in measured.child.log_lines(" ERROR ", "Traceback", "could not answer"):
        problems.error("bot log errors", line)
    if measured.child.exit_code != 0:
        problems.error("bot exit code", str(measured.child.exit_code))
    await children.stop(measured.emulator.child)


def report_dm_latency(everyone: list[Measured]) -> bool:
    """The table; whether the run was valid (no errors anywhere)."""
    base = everyone[0].pooled()
    print(
        f"\nEnd to end: a member's DM, from the emulator sending it to the bot to the emulator "
        f"storing the answer (the emulator's clock, its own process); pooled over "
        f"{len(everyone[0].latencies)} round(s); goal: p99 <= {GOAL_P99_RATIO:g}x the bare bot"
    )
    print_header(
        f"  {'bot':<26}{'answers':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'x bare p50':>11}{'x bare p99':>11}{'CPU s/1,000':>12}{'bytes/answer':>13}{'errors':>8}"
    )
    valid = True
    for measured in everyone:
        stats = measured.pooled()
        errors = measured.problems.count
        valid = valid and errors == 0 and stats.n > 0
        if not stats.n:
            print(f"  {measured.bot.name:<26}{0:>8}   no answers{errors:>86}")
            continue
        sizes = [e.answers[0].size for e in measured.traffic.exchanges.values() if e.answers]
        ratios = (
            f"{stats.p50 / base.p50:>11.2f}{stats.p99 / base.p99:>11.2f}"
            if base.n
            else f"{'n/a':>11}{'n/a':>11}"
        )
        print(
            f"  {measured.bot.name:<26}{stats.n:>8}{stats.p50:>9.2f}{stats.p99:>9.2f}"
            f"{max(stats.samples) * 1000:>9.1f}{ratios}"
            f"{measured.per_thousand(measured.cpu):>12.2f}"
            f"{statistics.fmean(sizes):>13,.0f}{errors:>8}"
        )
    for measured in everyone[1:]:
        stats = measured.pooled()
        if not stats.n or not base.n:
            continue
        ratio = stats.p99 / base.p99
        met = "met" if ratio <= GOAL_P99_RATIO else "NOT MET"
        goals.goal(
            f"conversation DM p99, {measured.bot.name}",
            f"{ratio:.2f}x bare ({stats.p99:.1f} vs {base.p99:.1f} ms)",
            f"<= {GOAL_P99_RATIO:g}x",
            ratio <= GOAL_P99_RATIO,
        )
        rounds = ", ".join(
            f"{Stats(samples).p50 / Stats(everyone[0].latencies[n]).p50:.2f}/"
            f"{Stats(samples).p99 / Stats(everyone[0].latencies[n]).p99:.2f}"
            for n, samples in measured.latencies.items()
            if samples and everyone[0].latencies.get(n)
        )
        print(
            f"  {measured.bot.name}: p99 ratio {ratio:.2f} (goal <= {GOAL_P99_RATIO:g}: {met}); "
            f"per round (p50/p99 ratio): {rounds}"
        )
        by_kind: dict[str, list[float]] = {"a point": [], "the six to pick from": []}
        for exchange in measured.traffic.exchanges.values():
            if exchange.tag.startswith("round") and exchange.latency is not None:
                kind = "a point" if exchange.answers[0].titles else "the six to pick from"
                by_kind[kind].append(exchange.latency)
        print(
            "    by answer: "
            + "; ".join(
                f"{kind} n {len(samples)} p50 {Stats(samples).p50:.2f} p99 "
                f"{Stats(samples).p99:.2f} ms"
                for kind, samples in by_kind.items()
                if samples
            )
        )
    print(
        "  emulator CPU s per 1,000 answers (the load's side, not the bot's): "
        + ", ".join(f"{m.bot.name} {m.per_thousand(m.emulator_cpu):.2f}" for m in everyone)
        + "; the load's worst lag behind its schedule: "
        + f"{max(m.late_sends for m in everyone) * 1000:.0f} ms"
    )
    for measured in everyone:
        problems = measured.problems
        kinds = {**problems.errors, **{f"HTTP {k}": n for k, n in problems.statuses.items()}}
        counted = ", ".join(f"{kind} {n}" for kind, n in kinds.items() if n) or "none"
        print(f"  errors, {measured.bot.name}: {counted}")
        for kind, details in problems.examples.items():
            print("\n".join(f"    {kind}: {detail[:240]}" for detail in details))
    print(
        "  (every DM must get exactly one answer, its nonce naming the DM, the one the DM "
        "calls for; no emulator violations (bodies checked against the spec after each "
        "round), no non-2xx answer, no deduplicated nonce, no error in a bot's log)"
    )
    return valid


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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a run under two minutes")
    parser.add_argument(
        "--misses",
        choices=("tune", "held-out", "off-topic"),
        help="list the messages of one part that the matcher got wrong",
    )
    end_to_end = parser.add_argument_group("end to end")
    end_to_end.add_argument("--rounds", type=int, default=4, help="turns of each bot")
    end_to_end.add_argument("--count", type=int, default=500, help="DMs per bot and round")
    end_to_end.add_argument("--rate", type=float, default=20.0, help="DMs a second, in all")
    end_to_end.add_argument("--members", type=int, default=600, help="distinct members")
    end_to_end.add_argument("--warmup", type=int, default=40, help="untimed DMs per bot first")
    end_to_end.add_argument("--seed", type=int, default=1)
    end_to_end.add_argument(
        "--postgres-url", help="also Crossroads on PostgreSQL, in this (own) database"
    )
    end_to_end.add_argument("--keep", type=Path, help="copy the bots' and emulators' logs here")
    end_to_end.add_argument(
        "--no-end-to-end", action="store_true", help="the matcher alone (sections 1-3)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.count, args.members, args.warmup = 2, 200, 300, 20
    args.pg = own_database(parser, args.postgres_url) if args.postgres_url else None
    # Each member writes every members / rate seconds: at most half the fair-use limit.
    if args.members / args.rate < 2 * 60 / ANSWERS_PER_WINDOW:
        parser.error(
            f"--members / --rate must be at least {2 * 60 / ANSWERS_PER_WINDOW:g} s (each "
            f"member at most {ANSWERS_PER_WINDOW // 2} DMs a minute, half of fair use)"
        )
    if min(args.rounds, args.count, args.members, args.warmup) < 1 or args.rate <= 0:
        parser.error("--rounds, --count, --members, --warmup and --rate must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    print(machine_line())
    print(code_version())
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
    for label, counts, target in (
        ("top-1, on-topic", quality.top1["all"], GOAL_TOP1),
        ("off-topic, not confident", quality.off_topic["all"], GOAL_OFF_TOPIC),
    ):
        right, of = counts
        goals.goal(
            f"matching, {label}", share(counts), f">= {target:.0%}", of > 0 and right / of >= target
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

    valid = True
    if not args.no_end_to_end:
        if args.pg is not None and (problem := asyncio.run(postgres_reachable(args.pg))):
            print(f"\nPostgreSQL unreachable ({problem}): Crossroads on SQLite only")
            args.pg = None
        everyone = asyncio.run(measure_dm_latency(labelled, matcher, args))
        valid = report_dm_latency(everyone)
    print(f"\n{load_average()}; total runtime {time.perf_counter() - began:.0f} s")
    if report.errors:
        print(f"\nINVALID: {len(report.errors)} match(es) raised:", file=sys.stderr)
        for error in report.errors:
            print(error, file=sys.stderr)
        return 1
    if not valid:
        print("\nINVALID: an end-to-end run with errors is not a result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
