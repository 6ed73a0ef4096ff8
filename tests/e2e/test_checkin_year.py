"""A whole simulated year of check-ins, across time zones, cadences and daylight-saving changes.

Nine members (weekly, fortnightly and monthly, each in Berlin, New York and Sydney) opt in on
the same Monday; the clock then jumps from one due check-in to the next for 13 months, and the
loop is ticked at each. Every DM is read back from the emulator, as the members saw it.
"""

import itertools
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from db.models import Checkin
from tests.e2e.conftest import World

ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney")
CADENCES = {"weekly": 7, "fortnightly": 14, "monthly": 28}
ORDER = ("purpose", "autonomy", "decades", "money", "fame", "obscurity")


async def tick(world: World) -> int:
    cog: Any = world.bot.get_cog("Checkins")
    return int(await cog.loop.tick())


def kind_of(message: dict[str, Any]) -> tuple[str, str | None]:
    """("first" | "revisit" | "summary", point slug) read from the DM's embed, as shown."""
    embed = message["embeds"][0]
    title = embed["title"]
    if title.startswith("Your year"):
        return "summary", None
    number = int(title.split("· ", 1)[1].split(".", 1)[0])
    return ("first" if title.startswith("Check-in") else "revisit"), ORDER[number - 1]


async def next_due(world: World) -> datetime | None:
    async with world.database.read() as session:
        return await session.scalar(
            select(func.min(Checkin.due_at)).where(Checkin.state == "pending")
        )


async def run_year(world: World, members: dict[int, tuple[str, str]]) -> None:
    end = world.clock.now() + timedelta(days=400)
    while (due := await next_due(world)) is not None and due < end:
        # Thirty seconds after it fell due: well inside the loop's one-minute promise.
        world.clock.set(max(due, world.clock.now()) + timedelta(seconds=30))
        await tick(world)


async def test_a_year_of_checkins_in_three_zones_and_three_cadences(world: World) -> None:
    members: dict[int, tuple[str, str]] = {}
    for zone in ZONES:
        for cadence in CADENCES:
            user = world.emulator.add_user(f"{cadence}-{zone}")
            world.emulator.add_member(world.guild_id, user)
            await (await world.slash(user, "timezone", zone=zone)).message()
            started = await world.slash(user, "checkin start", cadence=cadence)
            assert "Check-ins are on" in (await started.message())["content"]
            members[user] = (zone, cadence)
    start = world.clock.now()

    await run_year(world, members)

    for user, (zone, cadence) in members.items():
        tz = ZoneInfo(zone)
        welcome, *sent = world.emulator.dm_messages(user)
        assert welcome["embeds"][0]["title"] == "Welcome to your year of check-ins"
        kinds = [kind_of(m) for m in sent]
        where = f"{cadence} in {zone}"

        # Never doubled: one message per nonce, one nonce per check-in, and not one request
        # sent twice (Discord would drop the copy, so the messages alone could hide it).
        nonces = [m["nonce"] for m in sent]
        assert len(set(nonces)) == len(nonces), where
        channel = world.emulator.dm_channel_id(user)
        assert world.emulator.deduplicated_nonces_in(channel) == 0, where
        assert world.emulator.message_create_requests_in(channel) == 1 + len(sent), where

        async with world.database.read() as session:
            rows = list(
                await session.scalars(
                    select(Checkin)
                    .where(Checkin.user_id == user, Checkin.sent_at.is_not(None))
                    .order_by(Checkin.sent_at)
                )
            )
        assert len(rows) == len(sent), where
        local = [row.sent_at.astimezone(tz) for row in rows]
        # Every one at the member's hour on their weekday, across DST, never in quiet hours,
        # and on the cadence's grid of local days. Started without a weekday at 09:00 UTC:
        # Monday where 18:00 was still ahead (Berlin, New York); in Sydney it was 20:00, so
        # the first came the next evening, a Tuesday, rather than a week later.
        weekday = 1 if zone == "Australia/Sydney" else 0
        assert {(at.hour, at.minute, at.weekday()) for at in local} == {(18, 0, weekday)}, where
        assert rows[0].sent_at - start < timedelta(days=1, hours=12), where
        first_day = local[0].date()
        assert all((at.date() - first_day).days % CADENCES[cadence] == 0 for at in local), where
        assert all(not row.late for row in rows), where

        # First every point once, in the essay's order.
        assert kinds[:6] == [("first", slug) for slug in ORDER], where
        # Then each point returns (members here never answer, so the prompt stays "first"),
        # at most once per round, never two weeks running, and the year closes with a summary.
        assert kinds[-1] == ("summary", None), where
        assert ("summary", None) not in kinds[:-1], where
        per_point = Counter(slug for _, slug in kinds[:-1])
        assert set(per_point) == set(ORDER), where
        assert all(2 <= count <= 4 for count in per_point.values()), (where, per_point)
        for slug in ORDER:
            offered = [at for at, (_, s) in zip(local, kinds, strict=True) if s == slug]
            gaps = [(b - a).days for a, b in itertools.pairwise(offered)]
            assert all(gap >= 28 for gap in gaps), (where, slug, gaps)
        # The summary comes at the first slot after the year ends, and nothing after it.
        year_end = start + timedelta(days=365)
        assert rows[-1].sent_at >= year_end, where
        assert rows[-1].sent_at < year_end + timedelta(days=CADENCES[cadence]), where
        assert await next_due_for(world, user) is None, where

    # Worked out by hand for the weekly member in Berlin (first check-in Monday 5 January
    # 2026, 18:00): the first pass in weeks 0-5; 3-month returns from 6 April (after the
    # clocks changed on 29 March); 6-month returns from 6 July; the first point's 12-month
    # return on 4 January 2027 (the others fall after the year ends); the summary on 11 January.
    weekly_berlin = next(u for u, (z, c) in members.items() if (z, c) == (ZONES[0], "weekly"))
    sent = world.emulator.dm_messages(weekly_berlin)[1:]
    async with world.database.read() as session:
        delivered = await session.scalars(
            select(Checkin.sent_at)
            .where(Checkin.user_id == weekly_berlin, Checkin.sent_at.is_not(None))
            .order_by(Checkin.sent_at)
        )
        days = [at.astimezone(ZoneInfo(ZONES[0])).date().isoformat() for at in delivered if at]
    assert [kind_of(m)[1] for m in sent] == [*ORDER, *ORDER, *ORDER, "purpose", None]
    assert days[:7] == [
        "2026-01-05",
        "2026-01-12",
        "2026-01-19",
        "2026-01-26",
        "2026-02-02",
        "2026-02-09",
        "2026-04-06",
    ]
    assert days[12] == "2026-07-06" and days[-2:] == ["2027-01-04", "2027-01-11"]


async def next_due_for(world: World, user_id: int) -> datetime | None:
    async with world.database.read() as session:
        return await session.scalar(
            select(func.min(Checkin.due_at)).where(
                Checkin.state == "pending", Checkin.user_id == user_id
            )
        )
