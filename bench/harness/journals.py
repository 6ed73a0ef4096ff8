"""Members' journals (reflections and decisions), made up and loaded in bulk: a million rows
in seconds, through the migrations' schema."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from db.crypto import TextCipher
from harness.texts import reflection_length, text_of_length


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
