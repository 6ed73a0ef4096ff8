"""The lock order: the one order in which any transaction takes a member's rows.

Two transactions that take the same rows in opposite orders can deadlock on PostgreSQL (each
holds what the other waits for), and one of them fails. So every transaction that writes a
member's rows takes them in this order, and only in this order:

1. the member's ``users`` row (``lock_member``), first, before anything else of theirs: every
   command, button, form and DM reply (``CrossroadsBot.member_write``), the check-in
   dispatcher's records (``db.checkins.record_*``), and ``/mydata forget``;
2. then the servers they used the bot in (``guild_members``), recorded at the start;
3. then their check-in plan (``checkin_plans``), before
4. their check-ins (``checkins``), before
5. their reflections and decisions.

Since everything of a member's starts at step 1, two of their own actions at once simply take
turns: the second waits for the first, then reads what it left (a Snooze pressed twice finds
the check-in already answered). A server's own rows (settings, its audit trail, weekly posts)
are locked by server, never while a member's rows are held.

On SQLite, BEGIN IMMEDIATE takes the whole database for every write, so the order cannot
matter there; the code is the same on both.

On PostgreSQL, steps 1 and 2 of a command in a server are one statement
(``db.server_stats.remember_member``): round trips are most of a command's time on a busy
machine.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User
from db.users import lock_user

# Steps 2 to 5 above, by table: what a transaction that takes several of them takes first.
LOCK_ORDER = ("guild_members", "checkin_plans", "checkins", "reflections", "decisions")


async def lock_member(session: AsyncSession, user_id: int, *, now: datetime) -> None:
    """Step 1 for a member's own action: their row, created on first use, locked."""
    await lock_user(session, user_id, now=now)


async def lock_existing_member(session: AsyncSession, user_id: int) -> bool:
    """Step 1 for the bot's own writes (delivering a check-in): the row is locked if it still
    exists, never made again for a member who deleted their data. False when it is gone."""
    found = await session.scalar(select(User.id).where(User.id == user_id).with_for_update())
    return found is not None
