"""DM check-ins end to end: /timezone, /checkin, delivery, the buttons, replies and failures.

The real bot over real HTTP and websocket to the emulator. Time moves by the injected clock;
the check-in loop is ticked explicitly so a test knows exactly when delivery happened.
"""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from db.journal import marks
from db.models import Checkin, CheckinPlan
from tests.e2e.conftest import World, answer, text_of

MONDAY_18_BERLIN = datetime(2026, 1, 5, 17, 0, tzinfo=UTC)  # the fixture clock starts 09:00 UTC


async def tick(world: World) -> int:
    """One tick of the check-in loop, now. (Not isinstance: discord.py re-imports an
    extension's modules each time a bot loads it.)"""
    cog: Any = world.bot.get_cog("Checkins")
    return int(await cog.loop.tick())


def unix(at: datetime) -> str:
    return str(int(at.timestamp()))


async def checkins(world: World, user_id: int) -> list[Checkin]:
    async with world.database.read() as session:
        rows = await session.scalars(
            select(Checkin).where(Checkin.user_id == user_id).order_by(Checkin.id)
        )
        return list(rows)


def dm_posts(world: World, user_id: int) -> int:
    channel = world.emulator.dm_channel_id(user_id)
    return sum(
        1
        for r in world.emulator.requests
        if r.method == "POST" and r.path == f"/channels/{channel}/messages"
    )


async def start_berlin(world: World, user_id: int, **options: object) -> dict[str, Any]:
    await answer(world, user_id, "timezone", zone="Europe/Berlin")
    return await answer(world, user_id, "checkin start", **options)


# --- /timezone -----------------------------------------------------------------------------------


async def test_timezone_autocomplete_matches_parts_of_names(world: World) -> None:
    for typed, expected in (
        ("berlin", "Europe/Berlin"),
        ("new york", "America/New_York"),
        ("sydney", "Australia/Sydney"),
    ):
        choices = await world.emulator.autocomplete(
            world.alice, "timezone", focused="zone", value=typed, guild_id=world.guild_id
        )
        assert choices[0]["value"] == expected, (typed, choices[:3])
        assert len(choices) <= 25


async def test_timezone_confirms_with_local_time_and_names_close_matches(world: World) -> None:
    reply = await answer(world, world.alice, "timezone", zone="europe/berlin")
    # 09:00 UTC on Monday 5 January is 10:00 in Berlin.
    assert "Europe/Berlin" in reply["content"] and "10:00 on Monday" in reply["content"]
    unknown = await answer(world, world.alice, "timezone", zone="Berln")
    assert "isn't a time zone I know" in unknown["content"]
    assert "Europe/Berlin" in unknown["content"]


# --- /checkin start and the welcome ---------------------------------------------------------------


async def test_start_sends_a_welcome_dm_and_schedules_the_first_checkin(
    world_any_db: World,
) -> None:
    world = world_any_db
    reply = await start_berlin(world, world.alice)
    # Monday 10:00 in Berlin: the first check-in is today at 18:00, still ahead.
    assert f"<t:{unix(MONDAY_18_BERLIN)}:F>" in reply["content"]
    assert "Every week on Monday at 18:00" in reply["content"]
    [welcome] = world.emulator.dm_messages(world.alice)
    assert welcome["embeds"][0]["title"] == "Welcome to your year of check-ins"
    assert "/checkin pause" in text_of(welcome) and "Stop" in text_of(welcome)
    assert welcome["nonce"].startswith("cr-w-")
    [pending] = await checkins(world, world.alice)
    assert pending.state == "pending" and pending.due_at == MONDAY_18_BERLIN
    # The first check-in is not the welcome: nothing else is sent before it is due.
    assert await tick(world) == 0
    assert len(world.emulator.dm_messages(world.alice)) == 1


async def test_start_in_the_evening_sends_the_first_tomorrow_not_in_a_week(world: World) -> None:
    world.clock.set(datetime(2026, 1, 5, 19, 40, tzinfo=UTC))  # Monday 20:40 in Berlin
    reply = await start_berlin(world, world.alice)
    tuesday_18 = datetime(2026, 1, 6, 17, tzinfo=UTC)
    assert "Every week on Tuesday at 18:00" in reply["content"]
    assert f"<t:{unix(tuesday_18)}:F>" in reply["content"]
    [welcome] = world.emulator.dm_messages(world.alice)
    assert f"<t:{unix(tuesday_18)}:F>" in text_of(welcome)
    world.clock.set(tuesday_18 + timedelta(seconds=30))
    assert await tick(world) == 1
    [pending] = [r for r in await checkins(world, world.alice) if r.state == "pending"]
    assert pending.due_at == tuesday_18 + timedelta(weeks=1)  # it keeps that weekday
    # With a weekday given, the next such weekday: Monday's 18:00 has passed, so next Monday.
    monday = await answer(world, world.bob, "checkin start", weekday=0)
    assert "Every week on Monday at 18:00" in monday["content"]
    assert f"<t:{unix(datetime(2026, 1, 12, 18, tzinfo=UTC))}:F>" in monday["content"]


async def test_start_without_a_time_zone_uses_utc_and_suggests_one(world: World) -> None:
    reply = await answer(world, world.alice, "checkin start", weekday=2, hour=9)
    assert "UTC" in reply["content"]
    assert "/timezone zone:America/New_York" in reply["content"]  # the emulator's locale: en-US
    # Wednesday 7 January, 09:00 UTC.
    assert f"<t:{unix(datetime(2026, 1, 7, 9, tzinfo=UTC))}:F>" in reply["content"]


async def test_options_outside_the_rules_get_a_clear_answer(world: World) -> None:
    interaction = await world.slash(
        world.alice, "checkin start", hour=23, enforce_client_limits=False
    )
    message = await interaction.message()
    assert "never at night" in message["content"]
    assert await checkins(world, world.alice) == []


# --- delivery -------------------------------------------------------------------------------------


async def test_a_due_checkin_goes_out_once_with_a_nonce_and_one_request(
    world_any_db: World,
) -> None:
    world = world_any_db
    await start_berlin(world, world.alice)
    posts_before = dm_posts(world, world.alice)
    world.clock.set(MONDAY_18_BERLIN + timedelta(seconds=30))
    assert await tick(world) == 1
    _welcome, checkin = world.emulator.dm_messages(world.alice)
    [row, pending] = await checkins(world, world.alice)
    assert checkin["nonce"] == f"cr-ci-{row.id}" and len(checkin["nonce"]) <= 25
    assert checkin["embeds"][0]["title"].startswith("Check-in · 1.")
    assert "late" not in text_of(checkin).lower()
    labels = [c["label"] for row_ in checkin["components"] for c in row_["components"]]
    assert labels == ["Reflect", "Snooze (1 day)", "Skip", "Stop"]
    # The DM channel was kept from the welcome: one request for the check-in, no channel lookup.
    assert dm_posts(world, world.alice) == posts_before + 1
    assert not [r for r in world.emulator.requests if r.path == "/users/@me/channels"][1:]
    assert row.state == "done" and row.message_id == int(checkin["id"]) and row.point == "purpose"
    # The next one is a week later at the same local hour, and nothing goes out twice.
    assert pending.state == "pending" and pending.due_at == MONDAY_18_BERLIN + timedelta(weeks=1)
    assert await tick(world) == 0
    assert len(world.emulator.dm_messages(world.alice)) == 2


async def test_reflect_button_records_the_reflection_as_the_checkins(world_any_db: World) -> None:
    world = world_any_db
    await start_berlin(world, world.alice)
    world.clock.set(MONDAY_18_BERLIN)
    await tick(world)
    dm = world.emulator.dm_messages(world.alice)[-1]
    [row, _] = await checkins(world, world.alice)
    modal = await (
        await world.emulator.click(world.alice, dm, f"cr:checkin-reflect:{row.id}")
    ).modal()
    submitted = await world.emulator.submit_modal(
        world.alice, modal, {"text": "Impact over decades.", "comfort": ["4"]}
    )
    assert "Saved your reflection on" in (await submitted.message())["content"]
    [row, _] = await checkins(world, world.alice)
    async with world.database.read() as session:
        [mark] = await marks(session, user_id=world.alice)
    assert row.reflection_id == mark.id and row.response == "reflected"
    assert mark.point == "purpose" and mark.comfort == 4


async def test_skip_snooze_and_stop_act_once_and_only_for_the_owner(world: World) -> None:
    await start_berlin(world, world.alice)
    world.clock.set(MONDAY_18_BERLIN)
    await tick(world)
    dm = world.emulator.dm_messages(world.alice)[-1]
    [row, pending] = await checkins(world, world.alice)

    # Someone else pressing (a forged copy): refused, nothing changes.
    world.emulator.add_member(world.guild_id, world.bob)  # already a member; harmless
    forged = await world.emulator.click(world.bob, dm, f"cr:checkin-skip:{row.id}")
    assert "isn't yours" in (await forged.message())["content"]

    snoozed = await world.emulator.click(world.alice, dm, f"cr:checkin-snooze:{row.id}")
    edited = await snoozed.message()
    tomorrow = MONDAY_18_BERLIN + timedelta(days=1)
    assert f"<t:{unix(tomorrow)}:F>" in edited["content"] and edited["components"] == []
    rows = await checkins(world, world.alice)
    # The point comes back tomorrow; the regular check-in keeps its slot next Monday.
    assert sorted(r.due_at for r in rows if r.state == "pending") == [
        tomorrow,
        MONDAY_18_BERLIN + timedelta(weeks=1),
    ]
    again = await world.emulator.click(world.alice, dm, f"cr:checkin-skip:{row.id}")
    assert "already answered" in (await again.message())["content"]

    world.clock.set(tomorrow)
    assert await tick(world) == 1
    snoozed_dm = world.emulator.dm_messages(world.alice)[-1]
    assert snoozed_dm["embeds"][0]["title"].startswith("Check-in · 1.")  # the same point back
    # The day after, the grid carries on: next Monday at 18:00.
    assert [r.due_at for r in await checkins(world, world.alice) if r.state == "pending"] == [
        MONDAY_18_BERLIN + timedelta(weeks=1)
    ]
    latest = [r for r in await checkins(world, world.alice) if r.sent_at][-1]
    stop = await world.emulator.click(world.alice, snoozed_dm, f"cr:checkin-stop:{latest.id}")
    assert "stopped" in (await stop.message())["content"]
    assert [r for r in await checkins(world, world.alice) if r.state == "pending"] == []
    status = await answer(world, world.alice, "checkin status")
    assert "Stopped" in text_of(status)
    del pending


async def test_skip_lets_the_point_pass_and_the_schedule_carry_on(world_any_db: World) -> None:
    world = world_any_db
    await start_berlin(world, world.alice)
    world.clock.set(MONDAY_18_BERLIN)
    await tick(world)
    dm = world.emulator.dm_messages(world.alice)[-1]
    [row, _] = await checkins(world, world.alice)
    skipped = await (
        await world.emulator.click(world.alice, dm, f"cr:checkin-skip:{row.id}")
    ).message()
    next_week = MONDAY_18_BERLIN + timedelta(weeks=1)
    assert (
        skipped["content"].startswith("Skipped.")
        and f"<t:{unix(next_week)}:F>" in (skipped["content"])
    )
    assert skipped["components"] == []
    [row, pending] = await checkins(world, world.alice)
    assert (row.response, row.responded_at) == ("skipped", MONDAY_18_BERLIN)
    assert (pending.state, pending.due_at, pending.point) == ("pending", next_week, None)
    # Nothing comes back tomorrow (a skip is not a snooze), and a second press changes nothing.
    world.clock.set(MONDAY_18_BERLIN + timedelta(days=1))
    assert await tick(world) == 0
    again = await world.emulator.click(world.alice, dm, f"cr:checkin-skip:{row.id}")
    assert "already answered" in (await again.message())["content"]
    assert len(await checkins(world, world.alice)) == 2


async def test_a_press_on_an_old_checkin_gets_a_clear_answer(world: World) -> None:
    await start_berlin(world, world.alice)
    world.clock.set(MONDAY_18_BERLIN)
    await tick(world)
    first = world.emulator.dm_messages(world.alice)[-1]
    world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=1))
    await tick(world)
    [old, *_] = await checkins(world, world.alice)
    press = await world.emulator.click(world.alice, first, f"cr:checkin-snooze:{old.id}")
    assert "has passed" in (await press.message())["content"]
    forged = json.loads(
        json.dumps(first).replace(f"checkin-skip:{old.id}", "checkin-skip:999999999")
    )
    unknown = await world.emulator.click(world.alice, forged, "cr:checkin-skip:999999999")
    assert "doesn't exist" in (await unknown.message())["content"]


async def test_after_downtime_only_the_latest_missed_checkin_comes_late(world: World) -> None:
    await start_berlin(world, world.alice)
    # Five weeks offline, back on a Tuesday at 10:00 in Berlin.
    world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=5, hours=16))
    assert await tick(world) == 1
    late = world.emulator.dm_messages(world.alice)[-1]
    # It stands for the most recent slot missed (Monday of week 5), not the first.
    week_5 = MONDAY_18_BERLIN + timedelta(weeks=5)
    assert "Late" in text_of(late) and f"<t:{unix(week_5)}:F>" in text_of(late)
    [row, pending] = await checkins(world, world.alice)
    assert row.late
    # The schedule continues from now: next Monday 18:00, not a replay of the missed weeks.
    assert pending.due_at == MONDAY_18_BERLIN + timedelta(weeks=6)
    assert await tick(world) == 0


async def test_an_overdue_checkin_waits_out_quiet_hours(world: World) -> None:
    await start_berlin(world, world.alice)
    night = datetime(2026, 1, 5, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    world.clock.set(night)
    assert await tick(world) == 0
    assert len(world.emulator.dm_messages(world.alice)) == 1  # the welcome only
    world.clock.set(datetime(2026, 1, 6, 7, 0, tzinfo=UTC))  # 08:00 in Berlin
    assert await tick(world) == 1
    assert "Late" in text_of(world.emulator.dm_messages(world.alice)[-1])


async def test_a_429_is_waited_out_and_the_checkin_sent_once(world: World) -> None:
    await start_berlin(world, world.alice)
    channel = world.emulator.dm_channel_id(world.alice)
    world.emulator.fail_next("POST", f"^/channels/{channel}/messages$", status=429, retry_after=0.2)
    world.clock.set(MONDAY_18_BERLIN)
    assert await tick(world) == 1
    assert len(world.emulator.dm_messages(world.alice)) == 2
    assert [r.status for r in world.emulator.requests if r.path == f"/channels/{channel}/messages"][
        -2:
    ] == [429, 200]


async def test_a_server_error_is_retried_with_backoff(world: World) -> None:
    await start_berlin(world, world.alice)
    channel = world.emulator.dm_channel_id(world.alice)
    world.emulator.fail_next("POST", f"^/channels/{channel}/messages$", status=503)
    world.clock.set(MONDAY_18_BERLIN)
    assert await tick(world) == 0
    [row] = [r for r in await checkins(world, world.alice) if r.state == "pending"]
    assert row.attempts == 1 and row.lease_until == MONDAY_18_BERLIN + timedelta(minutes=1)
    status = await answer(world, world.alice, "checkin status")
    assert "could not take it just now (503)" in text_of(status)
    world.clock.set(MONDAY_18_BERLIN + timedelta(minutes=1))
    assert await tick(world) == 1
    assert len(world.emulator.dm_messages(world.alice)) == 2
    [done, _] = await checkins(world, world.alice)
    assert not done.late  # a minute's retry is not "late"


async def test_status_pause_resume_and_zone_change(world_any_db: World) -> None:
    world = world_any_db
    await start_berlin(world, world.alice)
    status = text_of(await answer(world, world.alice, "checkin status"))
    assert "Every week on Monday at 18:00 (Europe/Berlin)" in status
    assert (
        f"<t:{unix(MONDAY_18_BERLIN)}:F>" in status and f"<t:{unix(MONDAY_18_BERLIN)}:R>" in status
    )
    assert "None yet" in status

    paused = await answer(world, world.alice, "checkin pause", days=10)
    assert f"<t:{unix(MONDAY_18_BERLIN + timedelta(weeks=2))}:F>" in paused["content"]
    world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=1))
    assert await tick(world) == 0  # inside the pause
    resumed = await answer(world, world.alice, "checkin resume")
    # Resumed on Monday 12 January at 18:00 UTC+1 (already past 18:00? no: it is 18:00 exactly).
    assert "Check-ins are on" in resumed["content"]

    moved = await answer(world, world.alice, "timezone", zone="America/New_York")
    [pending] = [r for r in await checkins(world, world.alice) if r.state == "pending"]
    local = pending.due_at.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
    assert (local.hour, local.weekday()) == (18, 0)
    assert f"<t:{unix(pending.due_at)}:F>" in moved["content"]


async def test_plan_rows_belong_to_the_member_and_forget_removes_them(world: World) -> None:
    await start_berlin(world, world.alice)
    world.clock.set(MONDAY_18_BERLIN)
    await tick(world)
    forget = await world.slash(world.alice, "mydata forget")
    confirm = await forget.message()
    button = next(
        c["custom_id"]
        for row in confirm["components"]
        for c in row["components"]
        if "forget" in c["custom_id"] and c.get("style") == 4
    )
    await (await world.emulator.click(world.alice, confirm, button)).message()
    async with world.database.read() as session:
        assert await session.get(CheckinPlan, world.alice) is None
    assert await checkins(world, world.alice) == []


# --- replies in DMs -------------------------------------------------------------------------------


async def test_a_plain_reply_within_48_hours_is_saved_as_the_checkins_reflection(
    world_any_db: World,
) -> None:
    world = world_any_db
    await start_berlin(world, world.alice)
    world.clock.set(MONDAY_18_BERLIN)
    await tick(world)
    world.clock.set(MONDAY_18_BERLIN + timedelta(hours=47))
    await world.emulator.send_dm(world.alice, "Impact, honestly. And curiosity.")
    await world.emulator.send_dm(world.alice, "Also: I like writing.")
    answers = await bot_dms_after(world, world.alice, count=2)
    assert "Saved as your reflection on **Know why you want it**" in answers[0]["content"]
    assert "Added to your reflection" in answers[1]["content"]
    [row, _] = await checkins(world, world.alice)
    async with world.database.read() as session:
        [mark] = await marks(session, user_id=world.alice)
    assert row.reflection_id == mark.id and mark.point == "purpose"
    journal = await answer(world, world.alice, "journal list")
    assert "Impact, honestly. And curiosity.\n\nAlso: I like writing." in text_of(journal)

    # Past 48 hours, a DM answers no check-in: it is conversation, answered and not saved
    # (the answer offers the points, and a way to keep it).
    world.clock.set(MONDAY_18_BERLIN + timedelta(hours=49))
    await world.emulator.send_dm(world.alice, "A late thought.")
    [late] = await bot_dms_after(world, world.alice, count=1)
    assert "Saved" not in late["content"] and "Added" not in late["content"]
    assert any(
        c["custom_id"].startswith("cr:chat-pick:")
        for r in late["components"]
        for c in r["components"]
    )
    async with world.database.read() as session:
        assert len(await marks(session, user_id=world.alice)) == 1


async def bot_dms_after(world: World, user_id: int, *, count: int) -> list[dict[str, Any]]:
    """The bot's newest `count` DMs once it has answered the member's latest messages."""
    bot_id = str(world.emulator.bot_user_id)
    for _ in range(200):
        messages = world.emulator.dm_messages(user_id)
        mine = [i for i, m in enumerate(messages) if m["author"]["id"] != bot_id]
        answers = [m for m in messages[mine[-count] :] if m["author"]["id"] == bot_id]
        if len(answers) >= count:
            return answers[-count:]
        await asyncio.sleep(0.01)  # the gateway event and the answer are real I/O
    raise AssertionError("the bot did not answer the DM")


# --- closed DMs -----------------------------------------------------------------------------------


async def test_closed_dms_at_start_explain_how_to_allow_them_and_schedule_nothing(
    world: World,
) -> None:
    world.emulator.set_dms_open(world.alice, False)
    reply = await answer(world, world.alice, "checkin start")
    assert "couldn't send you a direct message" in reply["content"]
    assert "Privacy Settings" in reply["content"]
    assert [r for r in await checkins(world, world.alice) if r.state == "pending"] == []
    status = text_of(await answer(world, world.alice, "checkin status"))
    assert "can't send you direct messages" in status and "/checkin resume" in status

    world.emulator.set_dms_open(world.alice, True)
    resumed = await answer(world, world.alice, "checkin resume")
    assert "Check-ins are on" in resumed["content"]
    assert world.emulator.dm_messages(world.alice)[-1]["embeds"][0]["title"] == (
        "Check-ins are back on"
    )


async def test_dms_closed_mid_year_one_attempt_then_none_and_the_member_is_told(
    world_any_db: World,
) -> None:
    world = world_any_db
    await start_berlin(world, world.alice)
    world.emulator.set_dms_open(world.alice, False)
    attempts = world.emulator.dm_send_attempts(world.alice)
    world.clock.set(MONDAY_18_BERLIN)
    assert await tick(world) == 0
    assert world.emulator.dm_send_attempts(world.alice) == attempts + 1
    for weeks in range(1, 4):  # nothing is retried, nothing new is scheduled
        world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=weeks))
        await tick(world)
    assert world.emulator.dm_send_attempts(world.alice) == attempts + 1

    # The next command (any command) is followed by a private word about it, once.
    advice = await world.slash(world.alice, "advice purpose")
    await advice.message()
    notice = await wait_for_followup(advice)
    assert "check-ins" in notice["content"] and "Privacy Settings" in notice["content"]
    assert notice["flags"] & 64  # ephemeral
    again = await world.slash(world.alice, "advice purpose")
    await again.message()
    await asyncio.sleep(0.2)  # give a wrong second notice the time to show up
    assert again.followups == []
    status = text_of(await answer(world, world.alice, "checkin status"))
    assert "None: Discord refused" in status


async def wait_for_followup(interaction: Any) -> dict[str, Any]:
    for _ in range(300):
        if interaction.followups:
            return dict(interaction.followups[0])
        await asyncio.sleep(0.01)
    raise AssertionError("no follow-up arrived")


# --- a restart ------------------------------------------------------------------------------------


async def test_a_restart_mid_year_loses_and_doubles_nothing_and_old_buttons_work(
    tmp_path: Any, clock: Any
) -> None:
    from db import Database
    from db.migrate import upgrade
    from tests.e2e.conftest import start_world, stop_world

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}")
    await upgrade(database)
    world, runner = await start_world(database, clock)
    try:
        await start_berlin(world, world.alice)
        for week in range(3):
            world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=week))
            await tick(world)
        old_dm = world.emulator.dm_messages(world.alice)[-1]
        # The process dies with a check-in claimed but not sent: its lease runs out, and the
        # next process delivers it with the same nonce.
        world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=3))
        cog: Any = world.bot.get_cog("Checkins")
        async with database.transaction() as session:
            from db.jobs import claim_due

            [claimed] = await claim_due(
                session, Checkin, now=world.clock.now(), lease=timedelta(seconds=90), limit=10
            )
        await world.bot.close()
        await runner
        del cog

        from advice.content import load_content
        from cogs.core.bot import CrossroadsBot, SyncPolicy

        bot = CrossroadsBot(
            database=database,
            content=load_content(),
            cipher=world.bot.cipher,
            clock=world.clock,
            sync=SyncPolicy.AUTO,
            tick_seconds=None,
        )
        runner = asyncio.create_task(bot.start("test-token"))
        await world.emulator.wait_until_ready()
        world.bot = bot
        assert await tick(world) == 0  # the dead process's lease still holds
        world.clock.set(world.clock.now() + timedelta(seconds=91))
        assert await tick(world) == 1
        sent = world.emulator.dm_messages(world.alice)[1:]
        assert len(sent) == 4 and len({m["nonce"] for m in sent}) == 4
        assert sent[-1]["nonce"] == f"cr-ci-{claimed.id}"
        # A button from before the restart still works.
        [_, _, third, *_] = [r for r in await checkins(world, world.alice) if r.sent_at]
        press = await world.emulator.click(world.alice, old_dm, f"cr:checkin-reflect:{third.id}")
        assert (await press.modal())["title"] == "Science takes decades"  # the third point
    finally:
        await stop_world(world, runner)
        await database.dispose()
    assert world.emulator.violations == []


# --- what later check-ins carry -------------------------------------------------------------------


async def test_a_revisit_shows_the_members_earlier_words(world: World) -> None:
    await answer(world, world.alice, "timezone", zone="Europe/Berlin")
    opened = await (await world.slash(world.alice, "reflect", point="purpose")).modal()
    await (
        await world.emulator.submit_modal(
            world.alice, opened, {"text": "Because impact compounds.", "comfort": ["2"]}
        )
    ).message()
    await answer(world, world.alice, "checkin start")
    # Week by week until the first point comes back, about three months after it was written.
    for week in range(14):
        world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=week))
        await tick(world)
    titles = [m["embeds"][0]["title"] for m in world.emulator.dm_messages(world.alice)[1:]]
    # The first pass skips the point already written about, then weeks without anything due
    # send nothing, then the point returns as a revisit.
    assert [t.split("· ")[1][:2] for t in titles[:5]] == ["2.", "3.", "4.", "5.", "6."]
    revisit = next(m for m in world.emulator.dm_messages(world.alice) if "Revisit" in text_of(m))
    assert revisit["embeds"][0]["title"].startswith("Revisit · 1.")
    shown = text_of(revisit)
    assert "Because impact compounds." in shown and "2/5" in shown
    assert len(titles) == 6  # nothing between the first pass and the return


async def test_the_year_ends_with_a_summary_that_asks_for_decide(world: World) -> None:
    await answer(world, world.alice, "timezone", zone="Europe/Berlin")
    await answer(world, world.alice, "decide", leaning="undecided")
    await answer(world, world.alice, "checkin start", cadence="monthly")
    world.clock.set(MONDAY_18_BERLIN + timedelta(days=370))  # a year of downtime, then back
    assert await tick(world) == 1
    summary = world.emulator.dm_messages(world.alice)[-1]
    assert summary["embeds"][0]["title"] == "Your year, and where it leaves you"
    assert "/decide" in text_of(summary) and "/checkin start" in text_of(summary)
    assert [a["filename"] for a in summary["attachments"]] == ["progress.png", "your-year.md"]
    assert world.emulator.attachment_bytes(summary, "progress.png").startswith(b"\x89PNG")
    status = text_of(await answer(world, world.alice, "checkin status"))
    assert "year is complete" in status
    # A new year begins with /checkin start.
    again = await answer(world, world.alice, "checkin start")
    assert "Check-ins are on" in again["content"]


async def test_discords_50278_refusal_also_stops_checkins(world: World) -> None:
    await start_berlin(world, world.alice)
    channel = world.emulator.dm_channel_id(world.alice)
    world.emulator.fail_next("POST", f"^/channels/{channel}/messages$", status=403, code=50278)
    world.clock.set(MONDAY_18_BERLIN)
    assert await tick(world) == 0
    status = text_of(await answer(world, world.alice, "checkin status"))
    assert "Discord refused" in status


async def test_the_loop_delivers_by_itself_within_a_minute(tmp_path: Any, clock: Any) -> None:
    from db import Database
    from db.migrate import upgrade
    from tests.e2e.conftest import start_world, stop_world

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'loop.db'}")
    await upgrade(database)
    world, runner = await start_world(database, clock, tick_seconds=0.05)
    try:
        await start_berlin(world, world.alice)
        world.clock.set(MONDAY_18_BERLIN + timedelta(seconds=59))
        for _ in range(250):  # real time: the loop runs on its own interval
            sent = [row for row in await checkins(world, world.alice) if row.sent_at]
            if sent:
                break
            await asyncio.sleep(0.02)
        [row] = sent
        assert row.sent_at is not None and row.sent_at - row.scheduled_at < timedelta(minutes=1)
        assert len(world.emulator.dm_messages(world.alice)) == 2
    finally:
        await stop_world(world, runner)
        await database.dispose()
    assert world.emulator.violations == []


# --- what the review found --------------------------------------------------------------------


async def test_a_checkin_sent_but_not_recorded_is_never_sent_again(
    world: World, monkeypatch: Any
) -> None:
    from db import checkins as store

    await start_berlin(world, world.alice)
    real_delivered = store.record_delivered

    async def broken(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("a bug while recording")

    monkeypatch.setattr(store, "record_delivered", broken)
    world.clock.set(MONDAY_18_BERLIN)
    await tick(world)
    monkeypatch.setattr(store, "record_delivered", real_delivered)
    for minutes in (31, 62, 93):  # past every back-off, past Discord's nonce window
        world.clock.set(MONDAY_18_BERLIN + timedelta(minutes=minutes))
        await tick(world)
    assert dm_posts(world, world.alice) == 2  # the welcome and the one check-in
    [sent, pending] = await checkins(world, world.alice)
    assert sent.state == "done" and sent.message_id is not None
    assert pending.state == "pending" and pending.due_at == MONDAY_18_BERLIN + timedelta(weeks=1)


async def test_a_batch_whose_record_fails_is_recorded_one_by_one_and_never_sent_again(
    world: World, monkeypatch: Any
) -> None:
    from db import checkins as store

    await start_berlin(world, world.alice)
    real_many, real_delivered = store.record_delivered_many, store.record_delivered

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug while recording")

    monkeypatch.setattr(store, "record_delivered_many", broken)
    monkeypatch.setattr(store, "record_delivered", broken)
    world.clock.set(MONDAY_18_BERLIN)
    await tick(world)
    monkeypatch.setattr(store, "record_delivered_many", real_many)
    monkeypatch.setattr(store, "record_delivered", real_delivered)
    for minutes in (31, 62, 93):  # past every back-off, past Discord's nonce window
        world.clock.set(MONDAY_18_BERLIN + timedelta(minutes=minutes))
        await tick(world)
    assert dm_posts(world, world.alice) == 2  # the welcome and the one check-in
    [sent, pending] = await checkins(world, world.alice)
    assert sent.state == "done" and sent.message_id is not None
    assert pending.state == "pending" and pending.due_at == MONDAY_18_BERLIN + timedelta(weeks=1)


async def test_a_snooze_and_downtime_still_give_one_late_checkin(world: World) -> None:
    await start_berlin(world, world.alice)
    world.clock.set(MONDAY_18_BERLIN)
    await tick(world)
    dm = world.emulator.dm_messages(world.alice)[-1]
    [row, _] = await checkins(world, world.alice)
    await (await world.emulator.click(world.alice, dm, f"cr:checkin-snooze:{row.id}")).message()
    world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=2, hours=1))  # both are overdue now
    assert await tick(world) == 1
    assert len(world.emulator.dm_messages(world.alice)) == 3  # welcome, first, one late


async def test_rate_limits_discord_py_gives_up_on_are_retried_not_dropped(world: World) -> None:
    await start_berlin(world, world.alice)
    channel = world.emulator.dm_channel_id(world.alice)
    world.emulator.fail_next(
        "POST", f"^/channels/{channel}/messages$", status=429, times=5, retry_after=0.01
    )
    world.clock.set(MONDAY_18_BERLIN)
    assert await tick(world) == 0
    assert "(429)" in text_of(await answer(world, world.alice, "checkin status"))
    world.clock.set(MONDAY_18_BERLIN + timedelta(minutes=1))
    assert await tick(world) == 1


async def test_a_late_checkin_is_not_followed_by_the_regular_one_minutes_later(
    world: World,
) -> None:
    await start_berlin(world, world.alice)
    world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=1, minutes=-10))  # 17:50 a week on
    assert await tick(world) == 1
    world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=1, minutes=1))
    assert await tick(world) == 0
    [_, pending] = await checkins(world, world.alice)
    assert pending.due_at == MONDAY_18_BERLIN + timedelta(weeks=2)


async def test_a_forged_huge_checkin_id_is_a_stale_button_not_an_error(world: World) -> None:
    await start_berlin(world, world.alice)
    world.clock.set(MONDAY_18_BERLIN)
    await tick(world)
    dm = world.emulator.dm_messages(world.alice)[-1]
    [row, _] = await checkins(world, world.alice)
    huge = "9" * 30
    forged = json.loads(json.dumps(dm).replace(f"checkin-skip:{row.id}", f"checkin-skip:{huge}"))
    press = await world.emulator.click(world.alice, forged, f"cr:checkin-skip:{huge}")
    answer_text = (await press.message())["content"]
    assert "no longer active" in answer_text and "error id" not in answer_text
