"""What moderators chose for their server, and the audit trail of every change to it.

Each change runs in one transaction that locks the server's settings row first, so two
moderators changing settings at once are applied one after the other and each audit row
holds the value that was really replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Integer, delete, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from advice.errors import InvalidInput
from advice.weekly import DEFAULT_HOUR, DEFAULT_WEEKDAY, DEFAULT_ZONE
from db import weekly_posts
from db._sql import locked_row
from db.jobs import JobState, finish
from db.models import ConfigChange, GuildMember, GuildSettings, WeeklyPost
from db.state import get_state, set_state

RECENT_CHANGES = 5
WEEKLY_POST_NEEDS_CHANNEL = (
    "The weekly post needs a channel first: `/config channel`. Nothing was changed."
)


class Setting(StrEnum):
    """The settings as /config names them (and the audit trail records them)."""

    CHANNEL = "channel"
    CHECKINS = "checkins"
    WEEKLY_POST = "weekly-post"
    RESTRICT = "restrict"
    CHAT = "chat"


def defaults(guild_id: int) -> GuildSettings:
    """A server nobody configured (not added to any session)."""
    return GuildSettings(
        guild_id=guild_id,
        channel_id=None,
        checkins_enabled=True,
        restricted=False,
        chat_enabled=True,
        weekly_post_enabled=False,
        weekly_weekday=DEFAULT_WEEKDAY,
        weekly_hour=DEFAULT_HOUR,
        weekly_timezone=DEFAULT_ZONE,
        weekly_posts_made=0,
        weekly_problem=None,
    )


def describe(settings: GuildSettings, setting: Setting) -> str:
    """A setting's value as /config shows it and the audit trail keeps it (Discord markdown)."""
    if setting is Setting.CHANNEL:
        return f"<#{settings.channel_id}>" if settings.channel_id else "not set"
    if setting is Setting.CHECKINS:
        return "allowed" if settings.checkins_enabled else "not allowed"
    if setting is Setting.RESTRICT:
        return "on" if settings.restricted else "off"
    if setting is Setting.CHAT:
        return "on" if settings.chat_enabled else "off"
    state = "on" if settings.weekly_post_enabled else "off"
    return f"{state}, {weekly_posts.rule_of(settings).describe()}"


async def server_settings(session: AsyncSession, guild_id: int) -> GuildSettings:
    """The server's settings, or the defaults when nobody configured it."""
    return await session.get(GuildSettings, guild_id) or defaults(guild_id)


async def _locked(session: AsyncSession, guild_id: int, now: datetime) -> GuildSettings:
    """The settings row, created if missing, locked until the transaction ends."""
    row = {**_columns(defaults(guild_id)), "updated_at": now}
    return await locked_row(session, GuildSettings, GuildSettings.guild_id == guild_id, **row)


def _columns(settings: GuildSettings) -> dict[str, object]:
    return {c.key: getattr(settings, c.key) for c in GuildSettings.__table__.columns}


@dataclass(frozen=True)
class Change:
    setting: Setting
    old: str
    new: str

    @property
    def changed(self) -> bool:
        return self.old != self.new


async def change(
    session: AsyncSession,
    *,
    guild_id: int,
    user_id: int | None,
    setting: Setting,
    now: datetime,
    **values: object,
) -> Change:
    """Set `values` on the server's settings and record the change (None user: the bot).

    Setting something to what it already is records nothing. Turning the weekly post on, or
    changing its time, schedules the next post; turning it off cancels the pending one.
    """
    settings = await _locked(session, guild_id, now)
    old = describe(settings, setting)
    for name, value in values.items():
        setattr(settings, name, value)
    if settings.weekly_post_enabled and settings.channel_id is None:
        # Checked here, under the lock: a /config reset racing this change cannot leave the
        # post on with nowhere to go. (The transaction rolls back.)
        raise InvalidInput(WEEKLY_POST_NEEDS_CHANNEL)
    result = Change(setting, old, describe(settings, setting))
    if not result.changed:
        return result
    settings.updated_at = now
    if setting is Setting.WEEKLY_POST:
        if settings.weekly_post_enabled:
            settings.weekly_problem = None
            await weekly_posts.schedule_next(session, settings, after=now)
        else:
            await weekly_posts.cancel_pending(session, guild_id)
    await _audit(session, guild_id, user_id, result, now)
    return result


async def reset(
    session: AsyncSession, *, guild_id: int, user_id: int, now: datetime
) -> list[Change]:
    """Every setting back to its default; each one that changed gets its audit row."""
    settings = await _locked(session, guild_id, now)
    fresh = defaults(guild_id)
    changes = [Change(s, describe(settings, s), describe(fresh, s)) for s in Setting]
    for name, value in _columns(fresh).items():
        if name not in ("guild_id", "weekly_posts_made"):  # the rotation carries on
            setattr(settings, name, value)
    settings.updated_at = now
    await weekly_posts.cancel_pending(session, guild_id)
    for each in changes:
        if each.changed:
            await _audit(session, guild_id, user_id, each, now)
    return [each for each in changes if each.changed]


async def record_post_refused(
    session: AsyncSession, post: WeeklyPost, *, problem: str, now: datetime
) -> bool:
    """Discord will refuse this server's weekly post every time (its channel is gone, or the
    bot lost permission): the bot switches the post off itself and keeps the reason for
    /config show. False when another process had taken the post over."""
    settings = await weekly_posts.locked_settings(session, post.guild_id)  # lock order
    if not await finish(session, WeeklyPost, post, JobState.FAILED) or settings is None:
        return False
    await change(
        session,
        guild_id=post.guild_id,
        user_id=None,
        setting=Setting.WEEKLY_POST,
        now=now,
        weekly_post_enabled=False,
        weekly_problem=problem,
    )
    return True


async def _audit(
    session: AsyncSession, guild_id: int, user_id: int | None, change: Change, now: datetime
) -> None:
    session.add(
        ConfigChange(
            guild_id=guild_id,
            moderator_id=user_id,
            setting=change.setting.value,
            old_value=change.old[:200],
            new_value=change.new[:200],
            created_at=now,
        )
    )


async def recent_changes(
    session: AsyncSession, guild_id: int, *, limit: int = RECENT_CHANGES
) -> list[ConfigChange]:
    """The server's latest changes, newest first."""
    rows = await session.scalars(
        select(ConfigChange)
        .where(ConfigChange.guild_id == guild_id)
        .order_by(ConfigChange.created_at.desc(), ConfigChange.id.desc())
        .limit(limit)
    )
    return list(rows)


async def forget_server(session: AsyncSession, guild_id: int) -> None:
    """The bot left the server: its settings, audit trail, posts and who used the bot there
    go. Members' own entries are theirs and stay."""
    for model in (GuildSettings, ConfigChange, WeeklyPost, GuildMember):
        await session.execute(delete(model).where(model.guild_id == guild_id))


# Discord's shard of a server: (server id >> 22) % shard count.
SHARD_SHIFT = 22


async def servers_kept(session: AsyncSession, *, shard_id: int, shard_count: int) -> set[int]:
    """Every server of shard `shard_id` (of `shard_count`) something is kept for: settings,
    audit trail, weekly posts, members who used the bot there (what forget_server deletes)."""
    found: set[int] = set()
    for model in (GuildSettings, ConfigChange, WeeklyPost, GuildMember):
        column = model.guild_id
        # The shift inline: PostgreSQL has no bigint >> bigint, which a bound int would make.
        shift = literal_column(str(SHARD_SHIFT), Integer)
        shard = column.op(">>", return_type=BigInteger)(shift) % shard_count
        found.update(await session.scalars(select(column).distinct().where(shard == shard_id)))
    return found


APPLICATION_KEY = "servers:application-id"


async def is_this_applications(
    session: AsyncSession, application_id: int, *, now: datetime
) -> bool:
    """Whether the servers kept in this database are this Discord application's (the first
    to ask claims them): a bot run on it with another application's token (a staging bot,
    say) is in none of them, and must not take them all for gone."""
    stored = await get_state(session, APPLICATION_KEY)
    if stored is None:
        await set_state(session, APPLICATION_KEY, str(application_id), now=now)
    return stored in (None, str(application_id))
