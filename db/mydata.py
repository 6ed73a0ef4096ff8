"""Everything stored about one member: a summary, a full export, and forgetting it all."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    CursorResult,
    LargeBinary,
    Result,
    RowMapping,
    Table,
    delete,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from advice.progress import Leaning
from advice.schedule import Rule
from db.checkins import rule_of
from db.crypto import DecryptionFailed, TextCipher
from db.locks import LOCK_ORDER
from db.models import Base, CheckinPlan, ConfigChange, Decision, Reflection, User
from db.users import locked_users

# 2: every table with the member's rows, as stored (ciphertext decrypted), named in `stored_in`.
EXPORT_FORMAT = 2


@dataclass(frozen=True)
class DataSummary:
    known: bool  # False when nothing at all is stored
    timezone: str | None
    journey_started_at: datetime | None
    reflections: int
    points_covered: int
    decisions: int
    first_at: datetime | None
    last_at: datetime | None
    checkin_rule: Rule | None = None  # None: no check-ins were ever started
    checkin_status: str | None = None  # db.checkins.PlanStatus


async def summarize(session: AsyncSession, *, user_id: int) -> DataSummary:
    user = await session.get(User, user_id)
    plan = await session.get(CheckinPlan, user_id)
    count, points, first, last = (
        await session.execute(
            select(
                func.count(Reflection.id),
                func.count(Reflection.point.distinct()),
                func.min(Reflection.created_at),
                func.max(Reflection.created_at),
            ).where(Reflection.user_id == user_id)
        )
    ).one()
    decisions = await session.scalar(
        select(func.count(Decision.id)).where(Decision.user_id == user_id)
    )
    return DataSummary(
        known=user is not None,
        timezone=user.timezone if user else None,
        journey_started_at=user.journey_started_at if user else None,
        reflections=count,
        points_covered=points,
        decisions=decisions or 0,
        first_at=first,  # min/max keep the column's type, so these come back aware UTC
        last_at=last,
        checkin_rule=rule_of(plan, user.timezone if user else None) if plan else None,
        checkin_status=plan.status if plan else None,
    )


async def has_encrypted_text(session: AsyncSession) -> bool:
    """Whether anyone's writing is stored (so the encryption key must not change)."""
    reflection = await session.scalar(select(Reflection.id).limit(1))
    decision = await session.scalar(
        select(Decision.id).where(Decision.reason.is_not(None)).limit(1)
    )
    return reflection is not None or decision is not None


# What each table of a member's rows is called in the export, in the order it comes; a table
# added later comes after these, under its own name, until it is given one here.
SECTIONS = {
    "users": "user",
    "reflections": "reflections",
    "decisions": "decisions",
    "checkin_plans": "checkin_plan",
    "checkins": "checkins",
    "guild_members": "servers_used_in",
    "config_changes": "settings_changes_made",
}
# Columns that read better in the export under another name, or as words.
RENAMED = {("reflections", "body"): "text"}
AS_WORDS: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("decisions", "leaning"): lambda value: Leaning(value).label,
}
UNREADABLE = "[this text could not be decrypted]"
# Columns that are the bot's own bookkeeping, not anything of the member's: which of the
# operator's keys sealed a row (db.crypto) says nothing to them.
INTERNAL = frozenset({"key_id"})


def unreadable_texts(data: dict[str, Any]) -> int:
    """How many of the export's texts no key of the bot's could open."""
    return sum(
        1
        for rows in data.values()
        if isinstance(rows, list)
        for row in rows
        if isinstance(row, dict)
        for value in row.values()
        if value == UNREADABLE
    )


# Rows in the order they happened, where a table says when.
TIME_ORDER = ("created_at", "first_seen_at", "scheduled_at")


def exported_tables() -> list[tuple[Table, Column[Any]]]:
    """Every table holding a member's data, with the column that names them: their own row,
    every table /mydata forget empties (member_tables), and the settings they changed as a
    moderator (the server's audit trail: kept when they forget their data, theirs to read)."""
    users = cast(Table, User.__table__)
    changes = cast(Table, ConfigChange.__table__)
    return [
        (users, users.c.id),
        *((table, table.c.user_id) for table in member_tables()),
        (changes, changes.c.moderator_id),
    ]


async def export(
    session: AsyncSession, cipher: TextCipher, *, user_id: int, now: datetime
) -> dict[str, Any]:
    """Every row of the member's, table by table, as plain JSON-ready values: times as exact
    UTC instants, Discord ids as strings, their writing decrypted (it is theirs).

    A table with one row per member (their own, their check-in plan) is an object, or None;
    the others are lists. `stored_in` names the table each section was read from."""
    sections: dict[str, Any] = {}
    stored_in: dict[str, str] = {}
    for table, column in exported_tables():
        rows = await session.execute(
            select(table).where(column == user_id).order_by(*_in_order(table))
        )
        items = [_row(table, column, row, cipher, user_id) for row in rows.mappings()]
        section = SECTIONS.get(table.name, table.name)
        one_each = [c.name for c in table.primary_key.columns] == [column.name]
        sections[section] = (items[0] if items else None) if one_each else items
        stored_in[section] = table.name
    known = [name for name in SECTIONS.values() if name in sections]
    ordered = {name: sections[name] for name in [*known, *sorted(set(sections) - set(known))]}
    return {
        "format": EXPORT_FORMAT,
        "exported_at": now.isoformat(),
        **ordered,
        "stored_in": {name: stored_in[name] for name in ordered},
    }


def _in_order(table: Table) -> list[Column[Any]]:
    return [*(table.c[name] for name in TIME_ORDER if name in table.c), *table.primary_key]


def _row(
    table: Table, member: Column[Any], row: RowMapping, cipher: TextCipher, owner_id: int
) -> dict[str, Any]:
    """Every column but the one naming the member: their id is given once, under "user"."""
    return {
        RENAMED.get((table.name, column.name), column.name): _value(
            table, column, row[column.name], cipher, owner_id
        )
        for column in [*table.primary_key, *(c for c in table.c if not c.primary_key)]
        if (column is not member or table.name == "users") and column.name not in INTERNAL
    }


def _value(table: Table, column: Column[Any], value: Any, cipher: TextCipher, owner_id: int) -> Any:
    if value is None:
        return None
    if isinstance(column.type, LargeBinary):  # a member's writing, sealed to them (db.crypto)
        try:
            return cipher.decrypt(value, owner_id=owner_id)
        except DecryptionFailed:
            return UNREADABLE
    if (table.name, column.name) in AS_WORDS:
        return AS_WORDS[table.name, column.name](value)
    if isinstance(value, datetime):
        return value.isoformat()
    if _is_discord_id(column):
        return str(value)  # beyond what JSON numbers hold exactly in most readers
    return value


def _is_discord_id(column: Column[Any]) -> bool:
    """Discord's ids (members, servers, channels, messages) are BIGINTs we never generate;
    our own row ids are generated keys, or point at one."""
    if not isinstance(column.type, BigInteger):
        return False
    targets = {key.column.table.name for key in column.foreign_keys}
    if targets:
        return targets == {"users"}
    return not (column.primary_key and column.autoincrement is not False)


async def forget(session: AsyncSession, *, user_id: int) -> int:
    """Delete every row tied to the member, in every table; returns how many went.

    Everything that existed when it locked the member's row goes; a reflection saved after
    that is kept, under a fresh record. Walks the metadata rather than naming tables, so a
    table added later with a `user_id` column is covered without anyone remembering it here.
    """
    # The member's row first: a write for them that comes in meanwhile waits for this to end
    # and then starts a fresh record (db.users.ensure_user), instead of failing.
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    removed = 0
    for table in member_tables():
        removed += _rowcount(await session.execute(delete(table).where(table.c.user_id == user_id)))
    locked_users(session).discard(user_id)  # gone: a later write here makes it anew
    return removed + _rowcount(await session.execute(delete(User).where(User.id == user_id)))


def member_tables() -> list[Table]:
    """Every table with a member's rows (a `user_id` column), in the lock order of db.locks
    (servers used in, plan, check-ins, then the writing); tables added later come after."""
    tables = [t for t in Base.metadata.sorted_tables if "user_id" in t.c]
    return sorted(tables, key=lambda t: LOCK_ORDER.index(t.name) if t.name in LOCK_ORDER else 99)


def _rowcount(result: Result[Any]) -> int:
    # DELETE always yields a cursor result; typing only knows the general Result.
    return cast(CursorResult[Any], result).rowcount or 0
