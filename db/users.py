"""Members as the bot knows them: an id, a time zone, when their journey began."""

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, false
from sqlalchemy.ext.asyncio import AsyncSession

from db._sql import Prebuilt, insert_for, table_of
from db.database import ConcurrentChange
from db.models import User

USERS = table_of(User)


def user_upsert(dialect: str) -> Any:
    """The member's row inserted, or locked when it exists (see lock_user)."""
    statement = insert_for(dialect)(USERS).values(id=bindparam("id"), created_at=bindparam("now"))
    return statement.on_conflict_do_update(
        index_elements=[USERS.c.id],
        set_={"created_at": statement.excluded.created_at},
        where=false(),
    )


LOCK_USER = Prebuilt(user_upsert)


async def lock_user(session: AsyncSession, user_id: int, *, now: datetime) -> None:
    """The member's row, created on first use and locked until the transaction ends.

    One upsert (nothing read back), so it always ends with a row, whoever else is at work:
    - two first writes of a new member (a double submit, /decide during /reflect) race on
      PostgreSQL, and the loser must not fail;
    - `/mydata forget` locks the row before deleting (see db.mydata.forget), so a write that
      comes in meanwhile waits, then finds the row gone and makes a fresh one; and a write
      that locked first is finished (and forgotten too) before forget deletes anything.
    ON CONFLICT DO UPDATE locks the row it conflicts with (a plain read would not), and when
    that row is deleted meanwhile PostgreSQL retries the insert. Its WHERE is false, so the
    row is locked but never rewritten. On SQLite, BEGIN IMMEDIATE already serialises writes.
    Once locked, the row stays so until the transaction ends: a second call is free.
    """
    locked = locked_users(session)
    if user_id in locked:
        return
    connection = await session.connection()
    await connection.execute(LOCK_USER.on(connection), {"id": user_id, "now": now})
    locked.add(user_id)


def locked_users(session: AsyncSession) -> set[int]:
    """The members whose row this transaction has locked (lock_user)."""
    locked: set[int] = session.info.setdefault("locked_users", set())
    return locked


async def ensure_user(session: AsyncSession, user_id: int, *, now: datetime) -> User:
    """The member's row (see lock_user), read back."""
    await lock_user(session, user_id, now=now)
    user = await session.get(User, user_id, populate_existing=True)
    if user is None:  # inserted or locked just now; gone only if that reasoning broke
        raise ConcurrentChange()
    return user


async def member_timezone(session: AsyncSession, user_id: int) -> str | None:
    user = await session.get(User, user_id)
    return user.timezone if user else None
