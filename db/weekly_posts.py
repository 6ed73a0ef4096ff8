"""The weekly posts the dispatcher claims (db.jobs): one row per server and slot.

A server has at most one pending post, never due within six days of the last one posted
(advice.weekly.MIN_GAP). The (server, slot) pair is unique and a posted slot is never made
pending again, so however often the post is switched off and on or moved, or however many
processes schedule it, each week's post goes out once.

Lock order: a server's settings row first, then its posts (as db.guild_settings.change does),
so a moderator's change and the dispatcher recording a post never deadlock each other.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from advice.weekly import WeeklyRule, catch_up_after, next_post_at
from db._sql import dialect_insert
from db.jobs import JobState, finish, retry_later
from db.models import GuildSettings, WeeklyPost


def rule_of(settings: GuildSettings) -> WeeklyRule:
    return WeeklyRule(settings.weekly_weekday, settings.weekly_hour, settings.weekly_timezone)


async def schedule_next(session: AsyncSession, settings: GuildSettings, *, after: datetime) -> None:
    """Make the server's next slot after `after` its one pending post."""
    await cancel_pending(session, settings.guild_id)
    last_posted = await session.scalar(
        select(func.max(WeeklyPost.scheduled_at)).where(
            WeeklyPost.guild_id == settings.guild_id, WeeklyPost.state == JobState.DONE
        )
    )
    slot = next_post_at(rule_of(settings), after=after, last_posted=last_posted)
    insert = dialect_insert(session, WeeklyPost).values(
        guild_id=settings.guild_id,
        scheduled_at=slot,
        due_at=slot,
        state=JobState.PENDING,
        attempts=0,
    )
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[WeeklyPost.guild_id, WeeklyPost.scheduled_at],
            set_={"state": JobState.PENDING, "due_at": slot, "lease_until": None},
            where=WeeklyPost.state != JobState.DONE,  # a slot posted once stays posted
        )
    )


async def cancel_pending(session: AsyncSession, guild_id: int) -> None:
    await session.execute(
        update(WeeklyPost)
        .where(WeeklyPost.guild_id == guild_id, WeeklyPost.state == JobState.PENDING)
        .values(state=JobState.CANCELLED, lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def locked_settings(session: AsyncSession, guild_id: int) -> GuildSettings | None:
    """The server's settings, locked first (see the lock order above); None once forgotten."""
    return await session.scalar(
        select(GuildSettings)
        .where(GuildSettings.guild_id == guild_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def record_posted(
    session: AsyncSession,
    post: WeeklyPost,
    *,
    point: str,
    channel_id: int,
    message_id: int,
    now: datetime,
) -> bool:
    """Record a post Discord accepted, move the rotation on and schedule next week's.

    False (nothing written) when another process took this post over meanwhile.
    """
    settings = await locked_settings(session, post.guild_id)
    done = await finish(
        session,
        WeeklyPost,
        post,
        JobState.DONE,
        point=point,
        channel_id=channel_id,
        message_id=message_id,
        sent_at=now,
    )
    if done and settings is not None:
        settings.weekly_posts_made += 1
        if settings.weekly_post_enabled:
            await schedule_next(session, settings, after=max(now, post.scheduled_at))
    return done


async def record_dropped(session: AsyncSession, post: WeeklyPost, *, now: datetime) -> bool:
    """Too late to be this week's post (the bot was down), or given up on: on to the next.

    After an outage that is the most recent slot not missed yet (advice.weekly.catch_up_after),
    due at once, if there is one: a bot down eight days still posts the slot it missed by
    three hours. Never this post's own slot again, and never within six days of the last post
    (schedule_next keeps both).
    """
    settings = await locked_settings(session, post.guild_id)
    done = await finish(session, WeeklyPost, post, JobState.CANCELLED)
    if done and settings is not None and settings.weekly_post_enabled:
        after = max(catch_up_after(now), post.scheduled_at)
        await schedule_next(session, settings, after=after)
    return done


async def retry(
    session: AsyncSession, post: WeeklyPost, *, after: timedelta, now: datetime
) -> bool:
    return await retry_later(session, WeeklyPost, post, at=now + after)


async def pending_post(session: AsyncSession, guild_id: int) -> WeeklyPost | None:
    return await session.scalar(
        select(WeeklyPost).where(
            WeeklyPost.guild_id == guild_id, WeeklyPost.state == JobState.PENDING
        )
    )


async def next_due_at(session: AsyncSession, *, until: datetime) -> datetime | None:
    """When the earliest pending weekly post can next be claimed, if not after `until` (for the
    sandbox's clock, as db.checkins.next_due_at)."""
    pending = WeeklyPost.state == JobState.PENDING
    due = await session.scalar(
        select(func.min(WeeklyPost.due_at)).where(
            pending,
            WeeklyPost.due_at <= until,
            (WeeklyPost.lease_until.is_(None)) | (WeeklyPost.lease_until <= WeeklyPost.due_at),
        )
    )
    retry = await session.scalar(
        select(func.min(WeeklyPost.lease_until)).where(
            pending, WeeklyPost.lease_until > WeeklyPost.due_at, WeeklyPost.lease_until <= until
        )
    )
    return min((at for at in (due, retry) if at is not None), default=None)
