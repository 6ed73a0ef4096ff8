"""/mydata export is complete: every table that holds a member's data is in it, every row of
theirs, their writing decrypted for them, and nothing of anyone else's; on both databases."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import BigInteger, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

import db.mydata
from advice.checkins import CheckinKind, Offer
from advice.content import load_content
from advice.journey import PromptKind
from advice.progress import Leaning
from advice.schedule import Cadence
from db import Database
from db.checkins import (
    link_reflection,
    record_delivered,
    remember_dm_channel,
    set_timezone,
    start_plan,
)
from db.crypto import TextCipher, generate_key, parse_key
from db.decisions import add_decision
from db.guild_settings import Setting, change
from db.journal import add_reflection
from db.models import Base, Reflection
from db.mydata import export
from db.server_stats import remember_member

ORDER = list(load_content().slugs)
# Sized like Discord's ids, so no small number elsewhere in a row (an hour, a count, one of
# our own row ids) can be taken for them when the tables are searched by value.
ALICE, BOB = 1_300_000_000_000_000_011, 1_300_000_000_000_000_022
GUILD = 1_300_000_000_000_000_101
START = datetime(2026, 12, 6, 21, 0, tzinfo=UTC)  # a Sunday evening in Berlin


@pytest.fixture
def cipher() -> TextCipher:
    return TextCipher(parse_key(generate_key()))


async def uses_everything(database: Database, cipher: TextCipher, user_id: int) -> None:
    """A member who has used every feature that stores something: a time zone, check-ins
    (one delivered and answered, the next pending) and so a DM channel, a reflection, a
    decision with a reason, a server, and a setting changed there as a moderator."""
    async with database.transaction() as session:
        await set_timezone(session, user_id=user_id, zone_name="Europe/Berlin", now=START)
        _, checkin = await start_plan(
            session,
            user_id=user_id,
            cadence=Cadence.WEEKLY,
            weekday=0,
            hour=18,
            order=ORDER,
            now=START,
        )
        await remember_dm_channel(session, user_id=user_id, channel_id=user_id + 1)
        await remember_member(session, guild_id=GUILD, user_id=user_id, now=START)
        await change(
            session,
            guild_id=GUILD,
            user_id=user_id,
            setting=Setting.CHANNEL,
            now=START,
            channel_id=user_id + 2,
        )
    sent = checkin.due_at
    async with database.transaction() as session:
        await record_delivered(
            session,
            checkin,
            Offer(CheckinKind.POINT, "purpose", PromptKind.FIRST),
            message_id=user_id + 3,
            late=False,
            order=ORDER,
            now=sent,
        )
    async with database.transaction() as session:
        entry, _ = await add_reflection(
            session,
            cipher,
            user_id=user_id,
            point="purpose",
            text=f"Impact, honestly ({user_id}'s words).",
            comfort=None,
            submission_key=f"dm-{user_id + 4}",
            now=sent + timedelta(hours=1),
        )
        await link_reflection(
            session,
            user_id=user_id,
            checkin_id=checkin.id,
            reflection_id=entry.id,
            now=sent + timedelta(hours=1),
        )
        await add_decision(
            session,
            cipher,
            user_id=user_id,
            leaning=Leaning.UNDECIDED,
            reason=f"Not yet ({user_id}'s reason).",
            now=sent + timedelta(hours=2),
        )


async def tables_holding(session: AsyncSession, user_id: int) -> dict[str, int]:
    """Every table of the schema, searched in every 64-bit column (the type Discord's ids
    are kept in) for the member's id: how many rows name them. By value, not by column name,
    so a table added later is found however it names a member."""
    found = {}
    for table in Base.metadata.sorted_tables:
        columns = [column for column in table.c if isinstance(column.type, BigInteger)]
        if not columns:
            continue
        rows = await session.scalar(
            select(func.count())
            .select_from(table)
            .where(or_(*(column == user_id for column in columns)))
        )
        if rows:
            found[table.name] = rows
    return found


def missing_from(data: dict[str, Any], holding: dict[str, int]) -> list[str]:
    """The tables holding the member's rows that the export leaves out, or shows fewer of."""
    section_of = {table: section for section, table in data["stored_in"].items()}
    missing = []
    for table, count in sorted(holding.items()):
        section = section_of.get(table)
        if section is None or section not in data:
            missing.append(table)
            continue
        rows = data[section]
        shown = len(rows) if isinstance(rows, list) else int(rows is not None)
        if shown != count:
            missing.append(f"{table} ({shown} of {count} rows)")
    return missing


async def test_every_table_holding_a_members_data_is_in_their_export(
    database: Database, cipher: TextCipher
) -> None:
    await uses_everything(database, cipher, ALICE)
    await uses_everything(database, cipher, BOB)
    async with database.read() as session:
        holding = await tables_holding(session, ALICE)
        data = await export(session, cipher, user_id=ALICE, now=START + timedelta(days=2))
    # The member above touches every table made for a member's rows: a table added later
    # fails here until this member uses it too, and then below until the export has it.
    member_tables = {t.name for t in Base.metadata.sorted_tables if "user_id" in t.c}
    assert member_tables | {"users", "config_changes"} <= set(holding)
    assert missing_from(data, holding) == []


async def test_the_check_finds_a_table_the_export_leaves_out(
    database: Database, cipher: TextCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The completeness check bites: an export built without one table is caught."""
    await uses_everything(database, cipher, ALICE)
    every = db.mydata.member_tables()
    monkeypatch.setattr(
        db.mydata, "member_tables", lambda: [t for t in every if t.name != "checkin_plans"]
    )
    async with database.read() as session:
        holding = await tables_holding(session, ALICE)
        data = await export(session, cipher, user_id=ALICE, now=START)
    assert missing_from(data, holding) == ["checkin_plans"]
    del data["checkins"][0]
    assert missing_from(data, holding) == ["checkin_plans", "checkins (1 of 2 rows)"]


async def test_the_export_is_theirs_alone_decrypted_and_exact(
    database: Database, cipher: TextCipher
) -> None:
    await uses_everything(database, cipher, ALICE)
    await uses_everything(database, cipher, BOB)
    async with database.read() as session:
        data = await export(session, cipher, user_id=ALICE, now=START)
        sealed = await session.scalar(select(Reflection.body).where(Reflection.user_id == ALICE))
        created = await session.scalar(
            select(Reflection.created_at).where(Reflection.user_id == ALICE)
        )
    dump = json.dumps(data, ensure_ascii=False)  # plain JSON: no bytes anywhere
    # Nothing of another member's: not their id, their words, their DM channel.
    assert str(BOB) not in dump and "Impact, honestly (1300000000000000022" not in dump
    assert str(BOB + 1) not in dump
    # Their writing decrypted, no ciphertext and no key material.
    assert sealed is not None and sealed.hex() not in dump
    assert [r["text"] for r in data["reflections"]] == [f"Impact, honestly ({ALICE}'s words)."]
    assert [d["reason"] for d in data["decisions"]] == [f"Not yet ({ALICE}'s reason)."]
    assert "key" not in dump.lower().replace("submission_key", "")
    # Exact UTC instants; Discord's ids as strings, our own row ids as numbers.
    assert created is not None and data["reflections"][0]["created_at"] == created.isoformat()
    assert data["reflections"][0]["created_at"].endswith("+00:00")
    assert data["user"]["id"] == str(ALICE) and data["user"]["dm_channel_id"] == str(ALICE + 1)
    delivered, pending = data["checkins"]
    assert delivered["message_id"] == str(ALICE + 3)
    assert delivered["reflection_id"] == data["reflections"][0]["id"]
    assert isinstance(delivered["reflection_id"], int)
    assert (delivered["response"], pending["state"]) == ("reflected", "pending")
    assert data["checkin_plan"]["cadence"] == "weekly"
    assert data["servers_used_in"] == [{"guild_id": str(GUILD), "first_seen_at": START.isoformat()}]
    [setting] = data["settings_changes_made"]
    assert (setting["guild_id"], setting["new_value"]) == (str(GUILD), f"<#{ALICE + 2}>")
    assert data["decisions"][0]["leaning"] == "undecided"


async def test_nothing_stored_exports_as_nothing(database: Database, cipher: TextCipher) -> None:
    async with database.read() as session:
        data = await export(session, cipher, user_id=ALICE, now=START)
    assert data["user"] is None and data["checkin_plan"] is None
    assert data["reflections"] == data["checkins"] == data["settings_changes_made"] == []
