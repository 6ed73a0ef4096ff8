"""The weekly posts the dispatcher claims (db.jobs): one row per server and slot.

A server has at most one pending post, never due within six days of the last one posted
(advice.weekly.MIN_GAP). The (server, slot) pair is unique and a posted slot is never made
pending again, so however often the post is switched off and on or moved, or however many
processes schedule it, each week's post goes out once.

Lock order: a server's settings row first, then its posts (as db.guild_settings.change does),
so a moderator's change and the dispatcher recording a post never deadlock each other. The
batch forms (``*_many``) keep it across servers: every settings row of the batch, by server,
then every post, by id, so two batches never wait on each other in a circle either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from advice.weekly import WeeklyRule, catch_up_after, next_post_at
from db._sql import dialect_insert, table_of
from db.jobs import JobState, finish, retry_later
from db.models import GuildSettings, WeeklyPost


def rule_of(settings: GuildSettings) -> WeeklyRule:
    return WeeklyRule(settings.weekly_weekday, settings.weekly_hour, settings.weekly_timezone)


async def schedule_next(session: AsyncSession, settings: GuildSettings, *, after: datetime) -> None:
    """Make the server's next slot after `after` its one pending post."""
    await _schedule_next_many(session, [(settings, after)])


async def _schedule_next_many(
    session: AsyncSession, servers: Sequence[tuple[GuildSettings, datetime]]
) -> None:
    """`schedule_next` for several servers (each once) in three statements: their pending
    posts cancelled, their last posted slots read, their next slots made pending."""
    if not servers:
        return
    guild_ids = sorted(settings.guild_id for settings, _ in servers)
    await session.execute(
        update(WeeklyPost)
        .where(WeeklyPost.guild_id.in_(guild_ids), WeeklyPost.state == JobState.PENDING)
        .values(state=JobState.CANCELLED, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    last_posted: dict[int, datetime] = {
        guild_id: at
        for guild_id, at in await session.execute(
            select(WeeklyPost.guild_id, func.max(WeeklyPost.scheduled_at))
            .where(WeeklyPost.guild_id.in_(guild_ids), WeeklyPost.state == JobState.DONE)
            .group_by(WeeklyPost.guild_id)
        )
    }
    slots = [
        next_post_at(rule_of(settings), after=after, last_posted=last_posted.get(settings.guild_id))
        for settings, after in servers
    ]
    table = table_of(WeeklyPost)
    insert = dialect_insert(session, table)
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=[table.c.guild_id, table.c.scheduled_at],
            set_={"state": JobState.PENDING, "due_at": insert.excluded.due_at, "lease_until": None},
            where=table.c.state != JobState.DONE,  # a slot posted once stays posted
        ),
        [
            {
                "guild_id": settings.guild_id,
                "scheduled_at": slot,
                "due_at": slot,
                "state": JobState.PENDING,
                "attempts": 0,
            }
            for (settings, _), slot in zip(servers, slots, strict=True)
        ],
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


async def settings_of_many(
    session: AsyncSession, guild_ids: Sequence[int]
) -> dict[int, GuildSettings]:
    """The settings of every server of `guild_ids` that has a row, by server, in one
    statement (one without a row has db.guild_settings.defaults)."""
    if not guild_ids:
        return {}
    rows = await session.scalars(
        select(GuildSettings).where(GuildSettings.guild_id.in_(sorted(set(guild_ids))))
    )
    return {settings.guild_id: settings for settings in rows}


@dataclass(frozen=True)
class Accepted:
    """A weekly post Discord accepted, to record with the rest of its batch."""

    post: WeeklyPost
    point: str
    channel_id: int
    message_id: int


async def record_posted_many(
    session: AsyncSession, accepted: Sequence[Accepted], *, now: datetime
) -> set[int]:
    """`record_posted` for a whole batch (one post per server) in one transaction and a
    constant number of statements: the ids recorded. The others are left as `record_posted`
    leaves them: taken over by another process, or cancelled by a moderator's change while
    on their way (the new slot stands)."""
    if len({each.post.guild_id for each in accepted}) != len(accepted):
        raise ValueError("one post per server in a batch")
    settings = await _locked_settings_many(session, [each.post.guild_id for each in accepted])
    recorded = await _finish_many(
        session,
        [each.post for each in accepted],
        JobState.DONE,
        [
            {
                "point": each.point,
                "channel_id": each.channel_id,
                "message_id": each.message_id,
                "sent_at": now,
            }
            for each in accepted
        ],
    )
    posted = [
        (settings[each.post.guild_id], each.post)
        for each in accepted
        if each.post.id in recorded and each.post.guild_id in settings
    ]
    if posted:
        table = table_of(GuildSettings)
        await session.execute(
            update(table)
            .where(table.c.guild_id == bindparam("b_guild_id"))
            .values(weekly_posts_made=table.c.weekly_posts_made + 1),
            [{"b_guild_id": server.guild_id} for server, _ in posted],
        )
    await _schedule_next_many(
        session,
        [
            (server, max(now, post.scheduled_at))
            for server, post in posted
            if server.weekly_post_enabled
        ],
    )
    return recorded


async def record_unsent_many(
    session: AsyncSession,
    *,
    cancelled: Sequence[WeeklyPost],
    dropped: Sequence[WeeklyPost],
    now: datetime,
) -> set[int]:
    """What a batch settles without posting (one post per server), in one transaction and a
    constant number of statements: `cancelled`, of a server whose post is off, as
    `finish(..., CANCELLED)`; `dropped`, too late to post, as `record_dropped` (the next one
    scheduled). The ids settled (the others were taken over meanwhile)."""
    posts = [*cancelled, *dropped]
    if len({post.guild_id for post in posts}) != len(posts):
        raise ValueError("one post per server in a batch")
    settings = await _locked_settings_many(session, [post.guild_id for post in dropped])
    settled = await _finish_many(session, posts, JobState.CANCELLED)
    following = []
    for post in dropped:
        server = settings.get(post.guild_id)
        if post.id in settled and server is not None and server.weekly_post_enabled:
            following.append((server, max(catch_up_after(now), post.scheduled_at)))
    await _schedule_next_many(session, following)
    return settled


async def _locked_settings_many(
    session: AsyncSession, guild_ids: Sequence[int]
) -> dict[int, GuildSettings]:
    """`locked_settings` of several servers in one statement, locked by server (lock order)."""
    if not guild_ids:
        return {}
    rows = await session.scalars(
        select(GuildSettings)
        .where(GuildSettings.guild_id.in_(sorted(guild_ids)))
        .order_by(GuildSettings.guild_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {settings.guild_id: settings for settings in rows}


async def _finish_many(
    session: AsyncSession,
    posts: Sequence[WeeklyPost],
    state: JobState,
    values: Sequence[dict[str, object]] | None = None,
) -> set[int]:
    """`finish` for several posts in two statements: the ids finished.

    The posts still ours (pending and claimed by the attempt we hold, the fence of db.jobs)
    are found and locked first, by id (lock order), then updated at once. `values`, one dict
    of the same columns for each post in order, are set as well.
    """
    if not posts:
        return set()
    table = table_of(WeeklyPost)
    current = {
        post_id: (state_now, attempts)
        for post_id, state_now, attempts in await session.execute(
            select(table.c.id, table.c.state, table.c.attempts)
            .where(table.c.id.in_(sorted(post.id for post in posts)))
            .order_by(table.c.id)
            .with_for_update()
        )
    }
    extra = values if values is not None else [{} for _ in posts]
    held = [
        (post, columns)
        for post, columns in zip(posts, extra, strict=True)
        if current.get(post.id) == (JobState.PENDING, post.attempts)
    ]
    if not held:
        return set()
    names = sorted(held[0][1])
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.attempts == bindparam("b_attempts"))
        .values(
            state=state,
            lease_until=None,
            **{name: bindparam(f"b_{name}") for name in names},
        ),
        [
            {
                "b_id": post.id,
                "b_attempts": post.attempts,
                **{f"b_{name}": columns[name] for name in names},
            }
            for post, columns in held
        ],
    )
    return {post.id for post, _ in held}


async def retry(
    session: AsyncSession, post: WeeklyPost, *, after: timedelta, now: datetime
) -> bool:
    return await retry_later(session, WeeklyPost, post, at=now + after)


async def retry_many(session: AsyncSession, retries: Sequence[tuple[WeeklyPost, datetime]]) -> None:
    """`retry` for several posts in one statement: each claimable again from its time, if it
    is still ours (the fence of db.jobs)."""
    if not retries:
        return
    table = table_of(WeeklyPost)
    await session.execute(
        update(table)
        .where(
            table.c.id == bindparam("b_id"),
            table.c.state == JobState.PENDING,
            table.c.attempts == bindparam("b_attempts"),
        )
        .values(lease_until=bindparam("b_at")),
        [{"b_id": post.id, "b_attempts": post.attempts, "b_at": at} for post, at in retries],
    )


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
