"""A member's lock as a transaction's first statement: one transaction with what follows it,
committed or rolled back whole, its failures told as any statement's."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select

from db import Database
from db.database import ConcurrentChange
from db.models import GuildMember, User
from db.server_stats import remember_member
from db.users import lock_user

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
GUILD, MEMBER, OTHER = 7001, 202, 303


class Undone(Exception):
    pass


async def users(database: Database) -> list[int]:
    async with database.read() as session:
        return sorted(await session.scalars(select(User.id)))


async def test_a_write_undone_after_its_lock_leaves_nothing_and_its_connection_clean(
    database: Database,
) -> None:
    with pytest.raises(Undone):
        async with database.transaction() as session:
            await remember_member(session, guild_id=GUILD, user_id=MEMBER, now=NOW)
            raise Undone
    assert await users(database) == []
    # The same pooled connection (one caller at a time) begins the next transaction afresh.
    for user_id in (MEMBER, OTHER):
        async with database.transaction() as session:
            await lock_user(session, user_id, now=NOW)
    assert await users(database) == [MEMBER, OTHER]


async def test_a_first_statement_that_fails_is_told_as_any_statement(database: Database) -> None:
    """A constraint broken by a transaction's first statement: ConcurrentChange, as
    db.database tells any, and nothing of the transaction is kept."""
    statement = insert(GuildMember.__table__).values(
        guild_id=bindparam("guild_id"), user_id=bindparam("id"), first_seen_at=bindparam("now")
    )
    values = {"guild_id": GUILD, "id": MEMBER, "now": NOW}  # no such member: a foreign key
    with pytest.raises(ConcurrentChange):
        async with database.transaction() as session:
            connection = await session.connection()
            await connection.execute(statement, values)
    async with database.transaction() as session:
        await remember_member(session, guild_id=GUILD, user_id=MEMBER, now=NOW)
    async with database.read() as session:
        assert list(await session.scalars(select(GuildMember.user_id))) == [MEMBER]
