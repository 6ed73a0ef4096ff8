"""What the end-to-end benchmarks share: bots in their own processes, an emulator that counts
what went wrong, members' journals loaded in bulk, and the statistics.

The benchmark's own process runs the emulator (``sandbox.Emulator``, spec validation on) and
the load generator; every bot measured runs in a subprocess: Crossroads as an operator runs it
(``python bot.py run`` pointed at the emulator by ``DISCORD_EMULATOR_URL``), the baseline as
``python bench/bare_bot.py``. A latency is taken in the benchmark's process, from just before
the emulator dispatches an interaction to when the bot's final answer reaches the emulator.
``BenchEmulator`` checks request bodies against Discord's spec when a batch ends rather than
as they arrive (the check is the emulator's cost, not the bot's), and hands each batch its
non-2xx answers and violations.

Each operation (``advice``, ``open_reflection`` + ``submit_reflection``, ``journal_list``,
``journal_page``, ``progress``) checks the answer it got is the real one for the bot that
gave it (an error message answered quickly is not a fast answer); a wrong or missing answer
raises ``WrongAnswer``, which the benchmarks count as an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cogs.journal import PER_PAGE as PER_PAGE  # noqa: E402 (shared with the benchmarks)
from db.crypto import TextCipher  # noqa: E402
from sandbox import Emulator, Interaction, Violation  # noqa: E402

CROSSROADS = "crossroads"
BARE = "bare"
BOT_TOKEN = "bench-token"  # the emulator accepts any token but "invalid-token"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/crossroads_bench"
ANSWER_TIMEOUT_S = 30.0  # far beyond any answer; only a lost one waits this long
# Logged once discord.py fired on_ready: by Crossroads (cogs/_bot.py) and by bench/bare_bot.py.
READY_LINES = {CROSSROADS: "connected as", BARE: "bare bot ready"}


# --- the machine and the statistics ---------------------------------------------------------


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


# --- processes ----------------------------------------------------------------------------


def rss_bytes(pid: int) -> int | None:
    """VmRSS of a live process; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process used so far (its children not included)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (the chart workers and their resource tracker)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdecimal():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            return raw.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def base_env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}


class BotProcess:
    """One bot in its own process, pointed at the emulator; its output goes to a log file."""

    def __init__(self, kind: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.kind = kind
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(
        cls,
        kind: str,
        emulator: Emulator,
        workdir: Path,
        *,
        database_url: str | None = None,
        data_key: str | None = None,
        label: str | None = None,
        profile: Path | None = None,
    ) -> BotProcess:
        """``profile``: run the bot under cProfile, its statistics written there on exit."""
        root = emulator.api_base.removesuffix("/api/v10")
        env = {**base_env(), "DISCORD_TOKEN": BOT_TOKEN, "DISCORD_EMULATOR_URL": root}
        if kind == CROSSROADS:
            assert database_url is not None and data_key is not None
            args = [str(REPO / "bot.py"), "run"]
            env.update(DATABASE_URL=database_url, DATA_KEY=data_key, LOG_LEVEL="INFO")
        else:
            args = [str(REPO / "bench" / "bare_bot.py")]
        if profile is not None:
            args = ["-m", "cProfile", "-o", str(profile), *args]
        log = workdir / f"{label or kind}.log"
        with open(log, "wb") as output:  # noqa: ASYNC230 (a new file: nothing to wait for)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *args,
                cwd=workdir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
            )
        return cls(kind, process, log)

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def _died(self) -> SystemExit:
        tail = "\n".join(self.log_text().splitlines()[-25:])
        return SystemExit(f"the {self.kind} bot exited ({self.process.returncode}):\n{tail}")

    async def wait_ready(self, emulator: Emulator, *, timeout: float = 120) -> None:  # noqa: ASYNC109
        """Until its gateway session is live on the emulator (READY and every GUILD_CREATE
        sent) and discord.py fired on_ready (it waits for the guilds first): the bot's log
        says so. Raises with the log's tail if the bot dies on the way."""
        deadline = time.monotonic() + timeout
        exited = asyncio.create_task(self.process.wait())
        live = asyncio.create_task(emulator.wait_until_ready(timeout))
        try:
            await asyncio.wait({exited, live}, return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                raise self._died()
            live.result()
            while READY_LINES[self.kind] not in self.log_text():
                if exited.done():
                    raise self._died()
                if time.monotonic() > deadline:
                    raise SystemExit(f"the {self.kind} bot never logged its on_ready")
                await asyncio.sleep(0.05)  # a log file to poll: nothing to wait on
        finally:
            for task in (exited, live):
                task.cancel()

    def rss(self) -> int:
        size = rss_bytes(self.pid)
        if size is None:
            raise self._died()
        return size

    def helpers(self) -> list[tuple[int, str, int]]:
        """(pid, command line, VmRSS) of every process the bot started (chart workers)."""
        found = []
        for pid in descendants(self.pid):
            size = rss_bytes(pid)
            if size is not None:
                found.append((pid, command_line(pid), size))
        return found

    def problems(self) -> list[str]:
        """Log lines that mean something went wrong inside the bot."""
        return [
            line
            for line in self.log_text().splitlines()
            if "Traceback" in line or " ERROR " in line or "CRITICAL" in line
        ]

    async def stop(self, *, grace: float = 15) -> int:
        """SIGTERM, then SIGKILL after ``grace``; returns the exit code."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode


def keep_logs(workdir: Path, keep: Path) -> None:
    """Copy the bots' logs out of a run's temporary directory."""
    keep.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, keep / log.name)


# --- the emulator ---------------------------------------------------------------------------


@dataclass
class Problems:
    """What went wrong among a batch's interactions; a batch with any is not a result."""

    errors: Counter[str] = field(default_factory=Counter)  # wrong or missing answers, by kind
    statuses: Counter[int] = field(default_factory=Counter)  # non-2xx answers to the bot
    violations: list[Violation] = field(default_factory=list)
    examples: dict[str, list[str]] = field(default_factory=dict)  # a few of each kind

    def example(self, what: str, detail: str) -> None:
        kept = self.examples.setdefault(what, [])
        if len(kept) < 3:
            kept.append(detail)

    def error(self, what: str, detail: str) -> None:
        self.errors[what] += 1
        self.example(what, detail)

    def absorb(self, other: Problems) -> None:
        self.errors.update(other.errors)
        self.statuses.update(other.statuses)
        self.violations.extend(other.violations)
        for what, details in other.examples.items():
            for detail in details:
                self.example(what, detail)

    @property
    def count(self) -> int:
        return sum(self.errors.values()) + sum(self.statuses.values()) + len(self.violations)

    def summary(self) -> str:
        if not self.count:
            return "0 errors, 0 non-2xx answers, 0 emulator violations"
        parts = [
            f"{sum(self.errors.values())} errors ({dict(self.errors)})",
            f"{sum(self.statuses.values())} non-2xx answers ({dict(self.statuses)})",
            f"{len(self.violations)} emulator violations",
        ]
        lines = [", ".join(parts)]
        lines += [
            f"    {v.rule}: {v.method} {v.path}: {v.detail[:200]}" for v in self.violations[:5]
        ]
        for what, details in self.examples.items():
            lines += [f"    {what}: {detail[:300]}" for detail in details]
        return "\n".join(lines)


class BenchEmulator(Emulator):
    """The emulator with its request log drained by the benchmark: each batch's non-2xx
    answers and violations are taken (and forgotten) when the batch ends, so a long run keeps
    no growing log."""

    def __init__(self, *, defer_validation: bool = True, **kwargs: Any) -> None:
        super().__init__(record_requests=True, **kwargs)
        self._violations_seen = 0
        # Checking a body against the spec costs the emulator up to ~25 ms (a journal page's
        # embed; jsonschema is slow on component unions), which the bot's answer would be
        # timed with. Deferred, the check runs when the batch ends, off the clock: every body
        # is still checked, and a batch with a bad one is still invalid, but answered 2xx.
        self.defer_validation = defer_validation
        self._unchecked: list[tuple[str, str, str]] = []  # (method, template, body as JSON)
        self.validation_seconds = 0.0  # spent checking bodies inline (not deferred)

    async def start(self) -> None:
        await super().start()
        validator = self._validator
        if validator is None:
            return
        self._check = validator.validate

        def validate(method: str, template: str, body: Any) -> Any:
            if self.defer_validation:
                self._unchecked.append((method, template, json.dumps(body)))
                return []
            started = time.perf_counter()
            try:
                return self._check(method, template, body)
            finally:
                self.validation_seconds += time.perf_counter() - started

        validator.validate = validate  # type: ignore[method-assign]

    def check_deferred(self) -> None:
        """Check the bodies whose check was deferred; each bad one is a violation."""
        unchecked, self._unchecked = self._unchecked, []
        for method, template, body in unchecked:
            problems = self._check(method, template, json.loads(body))
            if problems:
                detail = "; ".join(f"{where}: {message}" for where, message in problems)
                self._add_violation(method, template, "schema (checked after the batch)", detail)

    @property
    def root(self) -> str:
        return self.api_base.removesuffix("/api/v10")

    def answer_of(self, interaction: Interaction) -> dict[str, Any]:
        """The answer as it is now, without the copy ``Interaction.message()`` makes (the
        load generator reads thousands)."""
        if interaction.answer_id is None:
            kinds = [c.get("type") for c in interaction.callbacks]
            raise WrongAnswer(f"the answer was no message (callbacks {kinds})")
        message: dict[str, Any] = self._world.messages[interaction.answer_id]
        return message

    def take_problems(self) -> Problems:
        """Non-2xx answers and violations since the last call (deferred checks run now)."""
        self.check_deferred()
        problems = Problems()
        pending = []
        for record in self.requests:
            if record.status == 0:  # still being answered: the next batch's
                pending.append(record)
            elif not 200 <= record.status < 300:
                problems.statuses[record.status] += 1
                problems.example(f"HTTP {record.status}", f"{record.method} {record.path}")
        self.requests[:] = pending
        problems.violations = self.violations[self._violations_seen :]
        self._violations_seen = len(self.violations)
        return problems


@dataclass(frozen=True)
class Place:
    """Where a member uses the bot."""

    user_id: int
    guild_id: int
    channel_id: int


FIRST_USER_ID = 700_000_000_000_000_000  # Discord-snowflake sized, fixed: the database knows them
FIRST_GUILD_ID = 600_000_000_000_000_000


def build_world(
    emulator: Emulator,
    *,
    guilds: int,
    members: int,
    channels_per_guild: int = 1,
    roles_per_guild: int = 3,
) -> list[Place]:
    """``guilds`` servers with ``channels_per_guild`` text channels and (with the emulator's
    own three) ``roles_per_guild`` roles each, and ``members`` ordinary members spread evenly
    among them (user ids from FIRST_USER_ID up, so a database seeded beforehand knows them).
    Returns where each member uses the bot: their server's first channel."""
    guild_ids = [emulator.add_guild(f"Server {n}", id=FIRST_GUILD_ID + n) for n in range(guilds)]
    channels: dict[int, int] = {}
    for guild_id in guild_ids:
        made = [
            emulator.add_text_channel(guild_id, f"channel-{n}") for n in range(channels_per_guild)
        ]
        channels[guild_id] = made[0]
        for n in range(max(0, roles_per_guild - 3)):
            emulator.add_role(guild_id, f"role-{n}")
    users = [emulator.add_user(f"member{n}", id=FIRST_USER_ID + n) for n in range(members)]
    for index, guild_id in enumerate(guild_ids):
        emulator.add_members(guild_id, users[index::guilds])
    return [
        Place(user_id, guild_ids[n % guilds], channels[guild_ids[n % guilds]])
        for n, user_id in enumerate(users)
    ]


# --- what members write ----------------------------------------------------------------------

SENTENCES = (
    "I keep coming back to what a slower year would cost me.",
    "Talked it through with an old friend and felt lighter afterwards.",
    "The money question scares me less than it did in spring.",
    "Some days the quiet sounds like freedom, some days like giving up.",
    "I wrote down what I would regret at eighty and it was not the job.",
    "Still unsure, but the reasons sound more like mine than other people's now.",
    "Noticed I only want the title when I am tired.",
    "A good week: I did the work for its own sake and nobody saw it.",
    "My supervisor asked why I wanted this and I had no short answer.",
    "Read three papers this month and understood one of them properly — progress.",
    "Der Gedanke an fünf Jahre Promotion macht mir weniger Angst als früher.",
    "Je me demande si c'est la recherche que j'aime ou l'idée d'être chercheuse.",
    "Spent the evening reproducing a result; it failed, and oddly I enjoyed it.",
    "If the lab closed tomorrow, would I still read these papers? Probably yes. 🙂",
    "Family dinner again: everyone has an opinion, nobody has to live with it.",
    "I am learning to tell tiredness from doubt; they feel the same at midnight.",
)


def text_of_length(rng: random.Random, length: int) -> str:
    """Prose of about ``length`` characters (never more), from the sentences above."""
    parts: list[str] = []
    size = 0
    while size < length:
        sentence = rng.choice(SENTENCES)
        parts.append(sentence)
        size += len(sentence) + 1
    return " ".join(parts)[:length].rstrip() or "ok"


def reflection_length(rng: random.Random) -> int:
    """Log-normal, median 300 characters: mostly a paragraph, sometimes a page, within the
    form's 1 to 4,000 characters."""
    return max(15, min(4000, int(rng.lognormvariate(math.log(300), 0.9))))


def journal_size(rng: random.Random, *, median: float = 12, largest: int = 400) -> int:
    """Entries a member who writes has: log-normal, a few with a year of weekly writing."""
    return max(1, min(largest, int(rng.lognormvariate(math.log(median), 1.0))))


# --- members' journals, loaded in bulk -------------------------------------------------------


@dataclass(frozen=True)
class Writer:
    """A member with a journal: how many reflections and decisions to load for them."""

    user_id: int
    entries: int
    decisions: int = 0
    timezone: str | None = None


REFLECTION_COLUMNS = ("user_id", "point", "kind", "body", "comfort", "created_at")
DECISION_COLUMNS = ("user_id", "leaning", "reason", "created_at")
USER_COLUMNS = ("id", "timezone", "created_at", "journey_started_at")
BODIES_PER_WRITER = 6  # distinct ciphertexts per member, reused across their rows
Stamp = Callable[[float], object]  # seconds into the journals' span -> a stored timestamp


class Journals:
    """Rows for ``writers``, spread over the year before ``end`` and streamed in time order
    (members' rows interleave in the table as real writing does).

    Each member's bodies are ``BODIES_PER_WRITER`` texts of realistic lengths, encrypted once
    with their id bound (so every row decrypts as that member's) and reused across their rows:
    a million rows need not be a million encryptions.
    """

    def __init__(
        self,
        cipher: TextCipher,
        writers: Sequence[Writer],
        slugs: Sequence[str],
        *,
        end: datetime,
        span: timedelta = timedelta(days=365),
        seed: int = 1,
    ) -> None:
        self.writers = list(writers)
        self.slugs = tuple(slugs)
        self.start = end - span
        self.span = span
        self.seed = seed
        rng = random.Random(seed)
        self.bodies = {
            w.user_id: [
                cipher.encrypt(text_of_length(rng, reflection_length(rng)), owner_id=w.user_id)
                for _ in range(min(w.entries, BODIES_PER_WRITER))
            ]
            for w in writers
        }
        self.reasons = {
            w.user_id: cipher.encrypt(text_of_length(rng, 120), owner_id=w.user_id)
            for w in writers
            if w.decisions
        }

    @property
    def rows(self) -> int:
        return sum(w.entries for w in self.writers)

    def users(self, stamp: Stamp) -> Iterator[tuple[object, ...]]:
        at = stamp(0.0)
        for writer in self.writers:
            yield (writer.user_id, writer.timezone, at, at)

    def _instants(self, rng: random.Random, counts: Sequence[int]) -> list[tuple[float, int]]:
        """(seconds into the span, writer's index) for ``counts[i]`` rows of writer i, in
        time order: one sort for every row, not a merge of ten thousand streams."""
        span = self.span.total_seconds()
        uniform = rng.uniform
        return sorted(
            (uniform(0, span), index) for index, count in enumerate(counts) for _ in range(count)
        )

    def reflections(self, stamp: Stamp) -> Iterator[tuple[object, ...]]:
        """Each member's points in random order, "first" then "revisit" once a point was
        written about; ratings a random walk from 3 (one in ten left out)."""
        rng = random.Random(self.seed)
        slugs, writers = self.slugs, self.writers
        seen: list[set[str]] = [set() for _ in writers]
        comfort = [3] * len(writers)
        written = [0] * len(writers)
        for seconds, index in self._instants(rng, [w.entries for w in writers]):
            writer = writers[index]
            bodies = self.bodies[writer.user_id]
            point = rng.choice(slugs)
            kind = "revisit" if point in seen[index] else "first"
            seen[index].add(point)
            comfort[index] = max(1, min(5, comfort[index] + rng.choice((-1, 0, 0, 1))))
            rating = None if rng.random() < 0.1 else comfort[index]
            body = bodies[written[index] % len(bodies)]
            written[index] += 1
            yield (writer.user_id, point, kind, body, rating, stamp(seconds))

    def decisions(self, stamp: Stamp) -> Iterator[tuple[object, ...]]:
        """Leanings a random walk from undecided; every other one with a reason."""
        rng = random.Random(self.seed + 1)
        writers = self.writers
        leaning = [0] * len(writers)
        made = [0] * len(writers)
        for seconds, index in self._instants(rng, [w.decisions for w in writers]):
            leaning[index] = max(-2, min(2, leaning[index] + rng.choice((-1, 0, 1))))
            reason = self.reasons[writers[index].user_id] if made[index] % 2 else None
            made[index] += 1
            yield (writers[index].user_id, leaning[index], reason, stamp(seconds))

    def sqlite_stamp(self) -> Stamp:
        """Seconds into the span as SQLAlchemy stores a UTC DATETIME on SQLite (naive)."""
        start = self.start.astimezone(UTC).replace(tzinfo=None)
        return lambda seconds: (start + timedelta(seconds=seconds)).isoformat(" ", "microseconds")

    def aware_stamp(self) -> Stamp:
        """Seconds into the span as an aware datetime (asyncpg's timestamptz)."""
        start = self.start
        return lambda seconds: start + timedelta(seconds=seconds)


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def load_sqlite(path: Path, journals: Journals) -> None:
    """Bulk-load a migrated SQLite file: one transaction, no journal (a scratch file)."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-262144")  # 256 MB: the indexes stay in RAM
        connection.execute("BEGIN")
        # The migrations' own indexes, dropped while loading and made again after: one sort
        # each instead of a million scattered inserts.
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('reflections', 'decisions')"
        ).fetchall()
        for name, _ in indexes:
            connection.execute(f"DROP INDEX {name}")
        stamp = journals.sqlite_stamp()
        for table, columns, rows in (
            ("users", USER_COLUMNS, journals.users(stamp)),
            ("reflections", REFLECTION_COLUMNS, journals.reflections(stamp)),
            ("decisions", DECISION_COLUMNS, journals.decisions(stamp)),
        ):
            connection.executemany(_insert_sql(table, columns), rows)
        for _, sql in indexes:
            connection.execute(sql)
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
        connection.execute("PRAGMA journal_mode=WAL")  # the bot's own mode; set back for it
    finally:
        connection.close()


async def load_postgresql(
    connection: asyncpg.Connection, journals: Journals, *, schema: str = "public"
) -> None:
    """Bulk-load with binary COPY on a raw asyncpg connection, in one transaction; the
    migrations' plain indexes are dropped while loading and made again after."""
    stamp = journals.aware_stamp()
    async with connection.transaction():
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 "
            "AND tablename IN ('reflections', 'decisions') "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)",
            schema,
        )
        for index in indexes:
            await connection.execute(f'DROP INDEX "{schema}"."{index["indexname"]}"')
        for table, columns, records in (
            ("users", USER_COLUMNS, journals.users(stamp)),
            ("reflections", REFLECTION_COLUMNS, journals.reflections(stamp)),
            ("decisions", DECISION_COLUMNS, journals.decisions(stamp)),
        ):
            await connection.copy_records_to_table(
                table, records=records, columns=columns, schema_name=schema
            )
        for index in indexes:
            await connection.execute(index["indexdef"])
    # VACUUM too, as autovacuum would have by now: it sets the visibility map that lets
    # PostgreSQL answer from an index alone.
    await connection.execute("VACUUM (ANALYZE) users, reflections, decisions")


def postgres_dsn(url: URL) -> str:
    """asyncpg's form of a SQLAlchemy URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def reset_postgres_schema(url: URL, schema: str = "public") -> None:
    connection = await asyncpg.connect(postgres_dsn(url), timeout=5)
    try:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.execute(f"CREATE SCHEMA {schema}")
    finally:
        await connection.close()


# --- operations, as members do them --------------------------------------------------------


class WrongAnswer(Exception):
    """The bot's answer was not the one expected (or never came)."""


def _expect(condition: bool, what: str, message: dict[str, Any]) -> None:
    if not condition:
        shown = {k: message.get(k) for k in ("content", "embeds", "flags")}
        raise WrongAnswer(f"{what}: got {str(shown)[:400]}")


def _embed(message: dict[str, Any]) -> dict[str, Any]:
    embeds = message.get("embeds") or [{}]
    first: dict[str, Any] = embeds[0]
    return first


async def _answered(interaction: Interaction, started: float) -> float:
    try:
        return await interaction.answered(timeout=ANSWER_TIMEOUT_S) - started
    except TimeoutError:
        raise WrongAnswer(f"no answer within {ANSWER_TIMEOUT_S:.0f} s") from None


async def advice(
    emulator: BenchEmulator, kind: str, place: Place, subcommand: str = "purpose"
) -> float:
    """``/advice <subcommand>``; the seconds to its answer."""
    started = time.perf_counter()
    interaction = await emulator.slash(
        place.user_id,
        f"advice {subcommand}",
        guild_id=place.guild_id,
        channel_id=place.channel_id,
    )
    latency = await _answered(interaction, started)
    message = emulator.answer_of(interaction)
    if kind == BARE:
        _expect(message.get("content") == "ok", "bare /advice", message)
    elif subcommand == "overview":
        _expect(bool(_embed(message).get("title")), "/advice overview", message)
    else:
        title = str(_embed(message).get("title", ""))
        _expect(title[:1].isdigit(), f"/advice {subcommand} (a point's page)", message)
    _ephemeral(message)
    emulator.discard(interaction)
    return latency


def _ephemeral(message: dict[str, Any]) -> None:
    _expect(bool(int(message.get("flags") or 0) & 64), "a private (ephemeral) answer", message)


@dataclass
class OpenForm:
    place: Place
    modal: dict[str, Any]


async def open_reflection(emulator: BenchEmulator, place: Place, point: str) -> OpenForm:
    """``/reflect point:<point>``: the form it opens (not timed: the member types next)."""
    interaction = await emulator.slash(
        place.user_id,
        "reflect",
        options={"point": point},
        guild_id=place.guild_id,
        channel_id=place.channel_id,
    )
    try:
        modal = await interaction.modal(timeout=ANSWER_TIMEOUT_S)
    except (TimeoutError, AssertionError) as exc:
        raise WrongAnswer(f"/reflect opened no form: {exc}") from None
    emulator.discard(interaction)
    return OpenForm(place, modal)


async def submit_reflection(
    emulator: BenchEmulator, kind: str, form: OpenForm, text: str, comfort: int | None
) -> float:
    """Submit the form with ``text``; the seconds to the answer (saved, privately)."""
    values: dict[str, str | list[str]] = {"text": text}
    if comfort is not None:
        values["comfort"] = [str(comfort)]
    started = time.perf_counter()
    interaction = await emulator.submit_modal(form.place.user_id, form.modal, values)
    latency = await _answered(interaction, started)
    message = emulator.answer_of(interaction)
    if kind == BARE:
        _expect(message.get("content") == "saved", "bare reflection", message)
    else:
        _expect(str(message.get("content", "")).startswith("Saved your"), "saved", message)
    _ephemeral(message)
    emulator.discard(interaction)
    return latency


@dataclass
class JournalPage:
    """The first page of a member's journal, kept to turn its pages later."""

    place: Place
    interaction: Interaction
    message: dict[str, Any]
    pages: int


PAGE_FOOTER = re.compile(r"Page (\d+) of (\d+)")


def _page_of(kind: str, message: dict[str, Any]) -> tuple[int, int]:
    """(page shown, from 1; pages); the bare bot's answer ("page <n>") names no count."""
    if kind == BARE:
        match = re.fullmatch(r"page (\d+)", str(message.get("content")))
        _expect(match is not None, "bare journal", message)
        assert match is not None
        return int(match.group(1)) + 1, 0
    embed = _embed(message)
    match = PAGE_FOOTER.search(str((embed.get("footer") or {}).get("text", "")))
    _expect(
        match is not None and str(embed.get("title", "")).startswith("Your journal"),
        "journal page",
        message,
    )
    assert match is not None
    _expect(len(embed.get("fields") or []) >= 1, "entries on the page", message)
    return int(match.group(1)), int(match.group(2))


async def journal_list(
    emulator: BenchEmulator, kind: str, place: Place
) -> tuple[float, JournalPage]:
    """``/journal list``: the seconds to its first page, and the page (answer kept)."""
    started = time.perf_counter()
    interaction = await emulator.slash(
        place.user_id, "journal list", guild_id=place.guild_id, channel_id=place.channel_id
    )
    latency = await _answered(interaction, started)
    message = emulator.answer_of(interaction)
    _ephemeral(message)
    shown, pages = _page_of(kind, message)
    _expect(shown == 1, "the first page", message)
    return latency, JournalPage(place, interaction, copy.deepcopy(message), pages)


def _next_button(message: dict[str, Any]) -> dict[str, Any] | None:
    for row in message.get("components") or []:
        for component in row.get("components") or []:
            if component.get("type") == 2 and "Next" in str(component.get("label", "")):
                found: dict[str, Any] = component
                return found
    return None


async def journal_page(emulator: BenchEmulator, kind: str, first: JournalPage, page: int) -> float:
    """Turn ``first`` to ``page`` (from 0) with its Next button; the seconds to the edit.

    The button's custom_id is rewritten to the page wanted, as if the member had pressed Next
    until the page before it: the same handler and query, without timing every page on the
    way. Pages are checked in the answer (a wrong one is an error)."""
    message = copy.deepcopy(first.message)
    button = _next_button(message)
    _expect(button is not None, "a Next button", message)
    assert button is not None
    prefix, _, _ = str(button["custom_id"]).rpartition(":")
    button["custom_id"] = f"{prefix}:{page}"
    button["disabled"] = False
    started = time.perf_counter()
    interaction = await emulator.click(first.place.user_id, message, button["custom_id"])
    latency = await _answered(interaction, started)
    answer = emulator.answer_of(interaction)
    shown, _ = _page_of(kind, answer)
    _expect(shown == page + 1, f"page {page + 1}", answer)
    emulator.discard(interaction)
    return latency


def forget_page(emulator: BenchEmulator, first: JournalPage) -> None:
    emulator.discard(first.interaction)


CHART_FILENAME = "progress.png"


async def progress(emulator: BenchEmulator, kind: str, place: Place) -> float:
    """``/progress``: the seconds to the answer with its chart attached."""
    started = time.perf_counter()
    interaction = await emulator.slash(
        place.user_id, "progress", guild_id=place.guild_id, channel_id=place.channel_id
    )
    latency = await _answered(interaction, started)
    message = emulator.answer_of(interaction)
    names = [a.get("filename") for a in message.get("attachments") or []]
    _expect(CHART_FILENAME in names, "a chart", message)
    if kind == CROSSROADS:
        _expect(bool(_embed(message).get("title")), "the progress embed", message)
    emulator.discard(interaction)
    return latency


# --- load -----------------------------------------------------------------------------------


async def record(operation: Awaitable[float], latencies: list[float], problems: Problems) -> None:
    """One operation: its latency, or (if it raised) an error, never both."""
    try:
        latencies.append(await operation)
    except WrongAnswer as exc:
        problems.error("wrong or missing answer", str(exc))
    except (LookupError, ValueError, PermissionError, RuntimeError) as exc:
        problems.error(type(exc).__name__, str(exc))


async def open_loop(
    count: int, rate: float, operation: Callable[[int], Awaitable[float]], *, seed: int
) -> tuple[list[float], Problems]:
    """``count`` operations arriving at ``rate`` a second (Poisson arrivals, whatever the
    answers' pace, so a slow bot meets the same load as a fast one); each one's latency, and
    what went wrong."""
    rng = random.Random(seed)
    problems = Problems()
    latencies: list[float] = []
    tasks = []
    due = time.perf_counter()
    for index in range(count):
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(record(operation(index), latencies, problems)))
        due += rng.expovariate(rate)
    await asyncio.gather(*tasks)
    return latencies, problems


async def closed_loop(
    count: int, concurrency: int, operation: Callable[[int], Awaitable[float]]
) -> tuple[list[float], Problems]:
    """``count`` operations, ``concurrency`` in flight at a time."""
    problems = Problems()
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await record(operation(index), latencies, problems)

    await asyncio.gather(*(one(i) for i in range(count)))
    return latencies, problems
