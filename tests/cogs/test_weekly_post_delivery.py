"""Weekly posts prepared and recorded a batch at a time, on both databases: a constant number of
statements whatever the batch's size, and for a batch of every kind of post the same outcomes
and the same rows as preparing and recording them one by one.

The dispatcher runs for real; only its requests are replaced (`send`), by canned answers.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
from sqlalchemy import delete, select, update

from advice.clock import ManualClock
from advice.content import load_content
from cogs.core.jobs.dispatcher import MAX_ATTEMPTS, Dispatcher, Outcome
from cogs.core.jobs.pace import Pacer
from cogs.weekly_post.delivery import Posted, Ready, WeeklyPostDelivery
from db import Database
from db.guild_settings import Setting, change
from db.jobs import claim_due
from db.models import ConfigChange, GuildSettings, WeeklyPost
from tests.statements import statements

MOD = 101
TURNED_ON = datetime(2026, 11, 30, 12, tzinfo=UTC)  # a Monday; the default slot is 17:00 UTC
DUE = datetime(2026, 11, 30, 17, 1, tzinfo=UTC)
LEASE = timedelta(minutes=2)

# One server for each thing that can become of a claimed post.
POSTED, POSTED_TOO = 1, 2
SWITCHED_OFF, CHANNEL_UNSET = 3, 4  # off before it was prepared: cancelled, nothing sent
MISSED = 5  # due two days ago (the bot was down): dropped, and the slot missed by hours posted
SUPERSEDED = 6  # a moderator moved the post while it was on its way
TAKEN_OVER = 7  # another process took it over while it was on its way
CHANNEL_GONE, NO_PERMISSION = 8, 9  # switched off, and /config show says why
SERVER_ERROR, UNREACHABLE = 10, 11  # tried again after a back-off
GIVEN_UP = 12  # failed its last attempt: dropped, next week's scheduled
SETTINGS_GONE = 13  # the server's settings vanished while it was on its way
OFF_WHILE_SENT = 14  # switched off while it was on its way (without cancelling it)
SERVERS = range(1, 15)


class CountedOutcomes:
    """The metrics the dispatcher reports to (only what it counts)."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter()

    def timed_job(self, kind: str, outcome: str) -> None:
        self.outcomes[outcome] += 1


def delivery_on(database: Database, clock: ManualClock) -> WeeklyPostDelivery:
    """The weekly posts' dispatcher on what it needs of a bot; sending is replaced by tests."""
    bot = SimpleNamespace(
        database=database,
        clock=clock,
        content=load_content(),
        job_lease=LEASE,
        requests_per_second=50.0,
        metrics=CountedOutcomes(),
    )
    return WeeklyPostDelivery(bot)  # type: ignore[arg-type]


def one_by_one(delivery: WeeklyPostDelivery) -> WeeklyPostDelivery:
    """The same dispatcher with the dispatcher's defaults: every post prepared and recorded
    on its own, as before batches."""
    delivery.prepare_batch = partial(Dispatcher.prepare_batch, delivery)  # type: ignore[method-assign]
    delivery.record_batch = partial(Dispatcher.record_batch, delivery)  # type: ignore[method-assign]
    return delivery


async def turn_on(database: Database, guild_ids: range | list[int]) -> None:
    async with database.transaction() as session:
        for guild_id in guild_ids:
            for setting, values in (
                (Setting.CHANNEL, {"channel_id": 5000 + guild_id}),
                (Setting.WEEKLY_POST, {"weekly_post_enabled": True}),
            ):
                await change(
                    session,
                    guild_id=guild_id,
                    user_id=MOD,
                    setting=setting,
                    now=TURNED_ON,
                    **values,
                )


async def clear(database: Database) -> None:
    async with database.transaction() as session:
        for model in (WeeklyPost, ConfigChange, GuildSettings):
            await session.execute(delete(model))


def settings_of(guild_id: int) -> Any:
    return update(GuildSettings).where(GuildSettings.guild_id == guild_id)


def post_of(guild_id: int) -> Any:
    return update(WeeklyPost).where(WeeklyPost.guild_id == guild_id)


async def set_the_scene(database: Database) -> None:
    """Every server's post on, then the changes that make each server's case."""
    await turn_on(database, SERVERS)
    async with database.transaction() as session:
        for guild_id, values in (
            (SWITCHED_OFF, {"weekly_post_enabled": False}),
            (CHANNEL_UNSET, {"channel_id": None}),
        ):
            await session.execute(settings_of(guild_id).values(**values))
        missed_slot = datetime(2026, 11, 28, 17, tzinfo=UTC)
        await session.execute(post_of(MISSED).values(scheduled_at=missed_slot, due_at=missed_slot))
        await session.execute(post_of(GIVEN_UP).values(attempts=MAX_ATTEMPTS - 1))


def http_error(status: int, code: int = 0) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason="canned")
    kind = {403: discord.Forbidden, 404: discord.NotFound}.get(status, discord.HTTPException)
    return kind(response, {"code": code, "message": "canned"})  # type: ignore[arg-type]


def canned_send(database: Database, clock: ManualClock) -> Any:
    """What Discord and the world do to each server's first post while it is on its way."""
    seen: set[int] = set()

    async def send(ready: Ready, pacer: Pacer) -> Posted:
        guild_id = ready.post.guild_id
        first = guild_id not in seen
        seen.add(guild_id)
        if not first:
            return Posted(message_id=900_000 + 100 * guild_id + len(seen))
        async with database.transaction() as session:
            if guild_id == SUPERSEDED:
                await change(
                    session,
                    guild_id=guild_id,
                    user_id=MOD,
                    setting=Setting.WEEKLY_POST,
                    now=clock.now(),
                    weekly_hour=18,
                )
            elif guild_id == TAKEN_OVER:
                await session.execute(post_of(guild_id).values(attempts=WeeklyPost.attempts + 1))
            elif guild_id == SETTINGS_GONE:
                await session.execute(
                    delete(GuildSettings).where(GuildSettings.guild_id == guild_id)
                )
            elif guild_id == OFF_WHILE_SENT:
                await session.execute(settings_of(guild_id).values(weekly_post_enabled=False))
        errors: dict[int, Exception] = {
            CHANNEL_GONE: http_error(404, 10003),
            NO_PERMISSION: http_error(403, 50013),
            SERVER_ERROR: http_error(503),
            UNREACHABLE: aiohttp.ClientConnectionError("canned"),
            GIVEN_UP: http_error(502),
        }
        if guild_id in errors:
            return Posted(error=errors[guild_id])
        return Posted(message_id=900_000 + 100 * guild_id)

    return send


async def what_is_stored(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the posts touched, without the ids the database numbered them with."""
    async with database.read() as session:
        posts = [
            (
                *(p.guild_id, p.scheduled_at, p.due_at, p.state, p.attempts, p.lease_until),
                *(p.point, p.channel_id, p.message_id, p.sent_at),
            )
            for p in await session.scalars(
                select(WeeklyPost).order_by(WeeklyPost.guild_id, WeeklyPost.scheduled_at)
            )
        ]
        servers = [
            (
                *(s.guild_id, s.channel_id, s.weekly_post_enabled, s.weekly_hour),
                *(s.weekly_posts_made, s.weekly_problem, s.updated_at),
            )
            for s in await session.scalars(select(GuildSettings).order_by(GuildSettings.guild_id))
        ]
        audit = [
            (c.guild_id, c.moderator_id, c.setting, c.old_value, c.new_value, c.created_at)
            for c in await session.scalars(
                select(ConfigChange).order_by(ConfigChange.guild_id, ConfigChange.id)
            )
        ]
    return {"posts": posts, "servers": servers, "audit": audit}


async def run_mixed_batch(
    database: Database, *, batched: bool
) -> tuple[int, Counter[str], dict[str, list[tuple[Any, ...]]]]:
    await clear(database)
    clock = ManualClock(TURNED_ON)
    await set_the_scene(database)
    delivery = delivery_on(database, clock)
    if not batched:
        one_by_one(delivery)
    delivery.send = canned_send(database, clock)  # type: ignore[method-assign]
    clock.set(DUE)
    delivered = await delivery.tick()
    clock.advance(timedelta(minutes=1))  # after the failed posts' back-off
    delivered += await delivery.tick()
    assert delivery.metrics is not None
    return delivered, delivery.metrics.outcomes, await what_is_stored(database)  # type: ignore[attr-defined]


async def test_a_mixed_batch_ends_as_it_does_one_by_one(database: Database) -> None:
    alone = await run_mixed_batch(database, batched=False)
    batched = await run_mixed_batch(database, batched=True)
    assert batched == alone
    delivered, outcomes, stored = batched
    # What each server's case comes to (the first tick, then the retries' one).
    assert outcomes == {
        Outcome.DELIVERED: 7,  # two posted, the missed server's catch-up, two with the settings
        # gone or off, then the two retried once their back-off passed
        Outcome.UNREACHABLE: 2,
        Outcome.FAILED: 3,
    }
    assert delivered == 7
    made = {server[0]: server[4] for server in stored["servers"]}
    assert made[POSTED] == made[MISSED] == made[OFF_WHILE_SENT] == 1
    assert made[SUPERSEDED] == made[TAKEN_OVER] == made[SWITCHED_OFF] == 0
    assert SETTINGS_GONE not in made


async def prepared_and_recorded_with_counts(
    database: Database, size: int
) -> tuple[list[int], list[Outcome | None]]:
    """A batch of `size` posts, a fifth off, a fifth missed, the rest sent (every third of
    those failing with a 503, to try again): how many statements preparing it took and
    recording it, and what recording it came to."""
    await clear(database)
    clock = ManualClock(TURNED_ON)
    servers = list(range(1, size + 1))
    await turn_on(database, servers)
    async with database.transaction() as session:
        for guild_id in servers[: size // 5]:
            await session.execute(settings_of(guild_id).values(weekly_post_enabled=False))
        missed_slot = datetime(2026, 11, 28, 17, tzinfo=UTC)
        for guild_id in servers[size // 5 : 2 * size // 5]:
            await session.execute(
                post_of(guild_id).values(scheduled_at=missed_slot, due_at=missed_slot)
            )
    clock.set(DUE)
    async with database.transaction() as session:
        posts = await claim_due(session, WeeklyPost, now=DUE, lease=LEASE, limit=size)
    assert len(posts) == size
    delivery = delivery_on(database, clock)
    with statements(database) as preparing:
        prepared = await delivery.prepare_batch(posts)
    ready = [each for each in prepared if isinstance(each, Ready)]
    assert len(ready) == size - 2 * (size // 5)
    results = [
        (each, Posted(error=http_error(503)) if index % 3 == 2 else Posted(message_id=index + 1))
        for index, each in enumerate(ready)
    ]
    with statements(database) as recording:
        outcomes = await delivery.record_batch(results)
    assert outcomes == {
        index: Outcome.FAILED if result.error else Outcome.DELIVERED
        for index, (_, result) in enumerate(results)
    }
    return [len(preparing), len(recording)], list(outcomes.values())


async def test_preparing_and_recording_a_batch_takes_as_many_statements_for_5_as_for_50(
    database: Database,
) -> None:
    small, small_outcomes = await prepared_and_recorded_with_counts(database, 5)
    large, large_outcomes = await prepared_and_recorded_with_counts(database, 50)
    assert small == large, (small, large)
    assert set(small_outcomes) == set(large_outcomes) == {Outcome.DELIVERED, Outcome.FAILED}
