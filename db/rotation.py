"""Key rotation: which keys seal the stored writing, and re-sealing it under the current key.

Every sealed value (a reflection's body, a decision's reason) records the id of the key that
sealed it (db.crypto.key_id; NULL for rows written before ids were kept). `rotate` walks each
table in primary-key order, in batches: it reads a batch (no lock), opens each value with
whichever configured key sealed it, seals it again with the current key, and writes the batch
back in one short transaction, each row only if it is unchanged since it was read (a member's
edit meanwhile wins, and is sealed with the current key anyway). The rows themselves are the
progress: a run killed at any point has lost nothing, and the next run carries on with what
is not yet under the current key.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise

from sqlalchemy import ColumnElement, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.crypto import DecryptionFailed, TextCipher
from db.database import Database
from db.models import Decision, Reflection

DEFAULT_BATCH = 500
# Passes over the tables at most: later passes re-seal what a process still on the old key
# wrote meanwhile. Rows that keep coming back after that mean such a process is running.
MAX_PASSES = 3


@dataclass(frozen=True)
class SealedColumn:
    """A column of sealed text, the key id beside it, and the member it is bound to."""

    name: str  # as operators read it
    table: Table
    column: str

    @property
    def value(self) -> ColumnElement[bytes]:
        return self.table.c[self.column]

    @property
    def key_id(self) -> ColumnElement[str]:
        return self.table.c.key_id


def _table(model: type[Reflection] | type[Decision]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


SEALED_COLUMNS = (
    SealedColumn("reflections", _table(Reflection), "body"),
    SealedColumn("decision reasons", _table(Decision), "reason"),
)


def _sealed(column: SealedColumn) -> ColumnElement[bool]:
    return column.value.is_not(None)


def _not_under(column: SealedColumn, key_id: str) -> ColumnElement[bool]:
    return and_(_sealed(column), or_(column.key_id.is_(None), column.key_id != key_id))


# What is stored, and under which keys -------------------------------------------------------


@dataclass(frozen=True)
class KeyCensus:
    """Rows of sealed text by the key that sealed them (None: unrecorded)."""

    counts: dict[str | None, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def not_under(self, key_id: str) -> int:
        return sum(n for kid, n in self.counts.items() if kid != key_id)


async def key_census(session: AsyncSession) -> KeyCensus:
    """Every sealed row counted by key (a full scan: for rotate-key and backups, not start-up)."""
    counts: dict[str | None, int] = {}
    for column in SEALED_COLUMNS:
        rows = await session.execute(
            select(column.key_id, func.count()).where(_sealed(column)).group_by(column.key_id)
        )
        for kid, n in rows:
            counts[kid] = counts.get(kid, 0) + n
    return KeyCensus(counts)


@dataclass(frozen=True)
class KeyCheck:
    """What start-up needs to know about the stored writing and the configured keys."""

    # Rows sealed with a key id none of the configured keys has, by that id.
    missing: dict[str, int]
    # Whether rows with no recorded key exist, and whether the newest of them opens.
    unrecorded: bool
    unrecorded_opens: bool
    # Whether any row is sealed with a configured key (so the configured keys fit the data).
    some_open: bool
    # Configured keys that seal nothing (a finished rotation's previous key).
    unused: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and (not self.unrecorded or self.unrecorded_opens)


async def check_keys(session: AsyncSession, cipher: TextCipher) -> KeyCheck:
    """Whether `cipher` opens the stored writing, in a few index probes (start-up).

    Rows name their key, so a missing key is found by asking the (key_id, id) index for ids
    between and around the configured ones; rows from before ids were recorded are judged by
    their newest one (of each table: one opening is enough, so one damaged row cannot stop
    the bot; under a wrong key none opens).
    """
    known = sorted(cipher.key_ids)
    missing: dict[str, int] = {}
    used: set[str] = set()
    unrecorded: list[tuple[bytes, int]] = []
    for column in SEALED_COLUMNS:
        outside = [column.key_id < known[0], column.key_id > known[-1]]
        outside += [
            and_(column.key_id > low, column.key_id < high) for low, high in pairwise(known)
        ]
        # Probe first (a few index searches); count only when something is there, since
        # grouping makes SQLite scan the whole index.
        if await session.scalar(select(column.key_id).where(or_(*outside)).limit(1)):
            rows = await session.execute(
                select(column.key_id, func.count()).where(or_(*outside)).group_by(column.key_id)
            )
            for kid, n in rows:
                missing[kid] = missing.get(kid, 0) + n
        for kid in known:
            if kid not in used and await session.scalar(
                select(column.table.c.id).where(column.key_id == kid).limit(1)
            ):
                used.add(kid)
        newest = (
            await session.execute(
                select(column.value, column.table.c.user_id)
                .where(column.key_id.is_(None), _sealed(column))
                .order_by(column.table.c.id.desc())
                .limit(1)
            )
        ).first()
        if newest is not None:
            unrecorded.append((newest[0], newest[1]))
    opens = any(_opens(cipher, blob, owner) for blob, owner in unrecorded)
    return KeyCheck(
        missing=missing,
        unrecorded=bool(unrecorded),
        unrecorded_opens=opens,
        some_open=bool(used) or opens,
        unused=[kid for kid in known if kid not in used],
    )


def _opens(cipher: TextCipher, blob: bytes, owner_id: int) -> bool:
    try:
        cipher.decrypt(blob, owner_id=owner_id)
    except DecryptionFailed:
        return False
    return True


# Rotation ------------------------------------------------------------------------------------


@dataclass
class RotationReport:
    """How a rotation went. `remaining` rows are not under the current key at the end."""

    to_rotate: int  # counted at the start
    rotated: int = 0
    # (what, id) of rows no configured key opens: damaged, or sealed with a key not given.
    unreadable: list[tuple[str, int]] = field(default_factory=list)
    remaining: int = 0
    passes: int = 0
    stopped: bool = False
    seconds: float = 0.0

    @property
    def finished(self) -> bool:
        return not self.stopped and self.remaining == 0 and not self.unreadable


Progress = Callable[[RotationReport], None]


async def count_to_rotate(
    database: Database, key_id: str, skip: dict[str, set[int]] | None = None
) -> int:
    """Sealed rows not under `key_id`, leaving out the ids in `skip` (by column name)."""
    async with database.read() as session:
        total = 0
        for column in SEALED_COLUMNS:
            query = select(func.count()).select_from(column.table)
            query = query.where(_not_under(column, key_id))
            left_out = (skip or {}).get(column.name, set())
            if len(left_out) <= 1000:
                query = query.where(column.table.c.id.not_in(left_out))
            total += (await session.scalar(query) or 0) - (
                len(left_out) if len(left_out) > 1000 else 0
            )
        return max(total, 0)


async def rotate(
    database: Database,
    cipher: TextCipher,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> RotationReport:
    """Re-seal every value not under `cipher`'s current key with it; see the module's doc.

    Each pass walks every table once. What is left afterwards (rows sealed meanwhile by a
    process still on an older key) gets another pass, up to MAX_PASSES.
    """
    started = time.monotonic()
    current = cipher.key_id
    report = RotationReport(to_rotate=await count_to_rotate(database, current))
    skip: dict[str, set[int]] = {column.name: set() for column in SEALED_COLUMNS}
    while not report.stopped and report.passes < MAX_PASSES:
        report.passes += 1
        for column in SEALED_COLUMNS:
            await _rotate_column(
                database,
                cipher,
                column,
                report,
                skip[column.name],
                batch_size,
                progress,
                should_stop,
            )
            if report.stopped:
                break
        report.remaining = await count_to_rotate(database, current, skip)
        if not report.remaining:
            break
    report.seconds = time.monotonic() - started
    return report


async def _rotate_column(
    database: Database,
    cipher: TextCipher,
    column: SealedColumn,
    report: RotationReport,
    skip: set[int],
    batch_size: int,
    progress: Progress | None,
    should_stop: Callable[[], bool],
) -> None:
    table, current, after = column.table, cipher.key_id, 0
    query = (
        select(table.c.id, table.c.user_id, column.value, column.key_id)
        .where(table.c.id > bindparam("after"), _not_under(column, current))
        .order_by(table.c.id)
        .limit(batch_size)
    )
    write = (
        update(table)
        .where(table.c.id == bindparam("row_id"), column.value == bindparam("old"))
        .values({column.column: bindparam("new"), "key_id": bindparam("new_key")})
    )
    while not should_stop():
        async with database.read() as session:
            rows = (await session.execute(query, {"after": after})).all()
        if not rows:
            return
        after = rows[-1][0]
        changes = []
        for row_id, owner, sealed, kid in rows:
            if row_id in skip:
                continue
            try:
                plain = cipher.decrypt(sealed, owner_id=owner, key_id=kid)
            except DecryptionFailed:
                skip.add(row_id)
                report.unreadable.append((column.name, row_id))
                continue
            new, new_kid = cipher.seal(plain, owner_id=owner)
            changes.append({"row_id": row_id, "old": sealed, "new": new, "new_key": new_kid})
        if changes:
            held = time.monotonic()
            async with database.transaction() as session:
                await session.execute(write, changes)
            held = time.monotonic() - held
            report.rotated += len(changes)
            if database.is_sqlite:
                # SQLite has one writer: leave the bot's writes at least as long a turn.
                await asyncio.sleep(held)
        if progress is not None:
            progress(report)
    report.stopped = True
