"""Members' check-in plans and their check-ins (db/checkins.py), on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from advice.checkins import SUMMARY, CheckinKind, Offer, offer_at
from advice.content import load_content
from advice.errors import NotFound
from advice.journey import YEAR, PromptKind
from advice.schedule import Cadence
from db import Database
from db.checkins import (
    PlanStatus,
    Response,
    get_plan,
    hold,
    link_reflection,
    members_with_notices,
    pause_plan,
    pending_checkin,
    record_delivered,
    record_failed_attempt,
    record_nothing_to_send,
    record_unreachable_checkin,
    reply_target,
    resume_plan,
    set_timezone,
    snooze,
    start_plan,
    stop_plan,
    take_notice,
    year_history,
)
from db.crypto import TextCipher, generate_key, parse_key
from db.jobs import JobState, claim_due
from db.journal import add_reflection
from db.models import Checkin, CheckinPlan, User
from db.mydata import forget

ORDER = list(load_content().slugs)
ALICE, BOB = 1001, 2002
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # a Monday morning
LEASE = timedelta(minutes=5)
HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(weeks=1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


async def start(
    database: Database,
    *,
    user_id: int = ALICE,
    cadence: Cadence = Cadence.WEEKLY,
    weekday: int = 0,
    hour: int = 18,
    now: datetime = START,
) -> Checkin:
    async with database.transaction() as session:
        _, checkin = await start_plan(
            session,
            user_id=user_id,
            cadence=cadence,
            weekday=weekday,
            hour=hour,
            order=ORDER,
            now=now,
        )
    return checkin


async def pendings(database: Database, user_id: int = ALICE) -> list[Checkin]:
    async with database.read() as session:
        return list(
            await session.scalars(
                select(Checkin)
                .where(Checkin.user_id == user_id, Checkin.state == JobState.PENDING)
                .order_by(Checkin.due_at)
            )
        )


async def plan_of(database: Database, user_id: int = ALICE) -> CheckinPlan:
    async with database.read() as session:
        plan = await get_plan(session, user_id)
        assert plan is not None
        return plan


async def claim_one(database: Database, now: datetime) -> Checkin:
    async with database.transaction() as session:
        (job,) = await claim_due(session, Checkin, now=now, lease=LEASE, limit=10)
    return job


async def deliver(
    database: Database, now: datetime, offer: Offer | None = None, message_id: int = 1
) -> Checkin:
    """Claim the one due check-in at `now` and record it as sent with what the rules say."""
    job = await claim_one(database, now)
    async with database.transaction() as session:
        if offer is None:
            plan = await get_plan(session, job.user_id)
            assert plan is not None
            history = await year_history(session, job.user_id, plan.year_started_at)
            offer = offer_at(history, ORDER, now)
            assert offer is not None
        assert await record_delivered(
            session, job, offer, message_id=message_id, late=False, order=ORDER, now=now
        )
    return job


async def stored(database: Database, checkin_id: int) -> Checkin:
    async with database.read() as session:
        row = await session.get(Checkin, checkin_id)
        assert row is not None
        return row


# --- the plan -----------------------------------------------------------------------------------


async def test_start_creates_one_pending_checkin_at_the_first_occurrence(
    database: Database,
) -> None:
    checkin = await start(database)
    assert checkin.scheduled_at == checkin.due_at == utc(2026, 1, 5, 18)  # today, UTC
    assert checkin.kind == CheckinKind.POINT and checkin.point is None
    assert [c.id for c in await pendings(database)] == [checkin.id]
    plan = await plan_of(database)
    assert (plan.status, plan.cadence, plan.weekday, plan.hour) == ("active", "weekly", 0, 18)
    assert plan.year_started_at == START
    async with database.read() as session:
        user = await session.get(User, ALICE)
        assert user is not None and user.journey_started_at == START


async def test_start_uses_the_members_zone(database: Database) -> None:
    async with database.transaction() as session:
        assert (
            await set_timezone(session, user_id=ALICE, zone_name="Europe/Berlin", now=START) is None
        )
    checkin = await start(database, weekday=2, hour=8)
    assert checkin.scheduled_at == utc(2026, 1, 7, 7)  # Wednesday 08:00 in Berlin


async def test_starting_again_replaces_the_pending_checkin(database: Database) -> None:
    before = await start(database)
    after = await start(database, weekday=2, hour=9, now=START + HOUR)
    assert after.scheduled_at == utc(2026, 1, 7, 9)
    assert [c.id for c in await pendings(database)] == [after.id]
    assert (await stored(database, before.id)).state == JobState.CANCELLED
    plan = await plan_of(database)
    assert (plan.weekday, plan.hour, plan.year_started_at) == (2, 9, START)  # same year


async def test_starting_again_the_day_one_came_never_sends_two_within_a_day(
    database: Database,
) -> None:
    await start(database, hour=9, now=START - HOUR)  # Monday 09:00 UTC
    await deliver(database, START)
    # The same morning the member moves their hour to 20:00 on Mondays: not tonight as well.
    again = await start(database, weekday=0, hour=20, now=START + 3 * HOUR)
    assert again.scheduled_at == utc(2026, 1, 12, 20)
    # A day later is fine: Tuesdays at 09:00 (tomorrow's is exactly a day after).
    tuesday = await start(database, weekday=1, hour=9, now=START + 4 * HOUR)
    assert tuesday.scheduled_at == utc(2026, 1, 6, 9)
    assert len(await pendings(database)) == 1


async def test_pause_pushes_the_pending_checkin_past_the_pause_on_the_grid(
    database: Database,
) -> None:
    await start(database)  # pending Monday Jan 5, 18:00
    async with database.transaction() as session:
        plan, moved = await pause_plan(session, user_id=ALICE, days=10, order=ORDER, now=START)
    assert plan.status == PlanStatus.PAUSED and plan.paused_until == START + 10 * DAY
    assert moved is not None and moved.scheduled_at == moved.due_at == utc(2026, 1, 19, 18)
    assert [c.id for c in await pendings(database)] == [moved.id]


async def test_pause_on_a_fortnightly_grid_keeps_the_grid(database: Database) -> None:
    await start(database, cadence=Cadence.FORTNIGHTLY)  # Jan 5, 19, Feb 2, ...
    async with database.transaction() as session:
        _, moved = await pause_plan(session, user_id=ALICE, days=15, order=ORDER, now=START)
    assert moved is not None and moved.scheduled_at == utc(2026, 2, 2, 18)


async def test_resume_brings_the_checkin_back_to_the_next_occurrence(database: Database) -> None:
    await start(database)
    async with database.transaction() as session:
        await pause_plan(session, user_id=ALICE, days=30, order=ORDER, now=START)
    async with database.transaction() as session:
        plan, resumed = await resume_plan(session, user_id=ALICE, order=ORDER, now=START + DAY)
    assert plan.status == PlanStatus.ACTIVE and plan.paused_until is None
    assert resumed.scheduled_at == utc(2026, 1, 12, 18)
    assert [c.id for c in await pendings(database)] == [resumed.id]


async def test_stop_cancels_the_pending_checkin(database: Database) -> None:
    checkin = await start(database)
    async with database.transaction() as session:
        assert await stop_plan(session, user_id=ALICE, now=START + HOUR)
    assert await pendings(database) == []
    assert (await stored(database, checkin.id)).state == JobState.CANCELLED
    assert (await plan_of(database)).status == PlanStatus.STOPPED
    async with database.transaction() as session:
        assert not await stop_plan(session, user_id=ALICE, now=START + HOUR)
        assert not await stop_plan(session, user_id=BOB, now=START + HOUR)
    for action in ("pause", "resume"):
        with pytest.raises(NotFound):
            async with database.transaction() as session:
                if action == "pause":
                    await pause_plan(session, user_id=ALICE, days=3, order=ORDER, now=START)
                else:
                    await resume_plan(session, user_id=ALICE, order=ORDER, now=START)


async def test_set_timezone_moves_the_pending_checkin_to_the_same_local_hour(
    database: Database,
) -> None:
    checkin = await start(database)  # 18:00 UTC
    async with database.transaction() as session:
        moved = await set_timezone(session, user_id=ALICE, zone_name="Europe/Berlin", now=START)
    assert moved is not None and moved.id == checkin.id
    assert moved.scheduled_at == moved.due_at == utc(2026, 1, 5, 17)  # 18:00 CET
    async with database.transaction() as session:
        moved = await set_timezone(session, user_id=ALICE, zone_name="America/New_York", now=START)
    assert moved is not None and moved.scheduled_at == utc(2026, 1, 5, 23)  # 18:00 EST
    (only,) = await pendings(database)
    assert (only.id, only.scheduled_at, only.due_at) == (
        checkin.id,
        moved.scheduled_at,
        moved.due_at,
    )
    async with database.read() as session:
        user = await session.get(User, ALICE)
        assert user is not None and user.timezone == "America/New_York"


# --- delivery -----------------------------------------------------------------------------------


async def test_record_delivered_records_the_send_and_schedules_exactly_one_next(
    database: Database,
) -> None:
    await start(database)
    now = utc(2026, 1, 5, 18, 0, 30)
    job = await deliver(database, now, message_id=555)
    sent = await stored(database, job.id)
    assert (sent.state, sent.sent_at, sent.message_id, sent.late, sent.lease_until) == (
        "done",
        now,
        555,
        False,
        None,
    )
    assert (sent.kind, sent.point, sent.prompt) == ("point", ORDER[0], PromptKind.FIRST)
    (nxt,) = await pendings(database)
    assert nxt.scheduled_at == nxt.due_at == utc(2026, 1, 12, 18)
    assert nxt.kind == CheckinKind.POINT
    assert (await plan_of(database)).last_delivered_at == now
    # The same claim delivered again (a retry after a crash) changes nothing.
    async with database.transaction() as session:
        again = await record_delivered(
            session,
            job,
            Offer(CheckinKind.POINT, ORDER[0], PromptKind.FIRST),
            message_id=556,
            late=False,
            order=ORDER,
            now=now,
        )
    assert again is False
    assert [c.id for c in await pendings(database)] == [nxt.id]
    assert (await stored(database, job.id)).message_id == 555


async def test_after_the_first_pass_the_empty_weeks_are_skipped(database: Database) -> None:
    await start(database)
    for week in range(len(ORDER)):
        job = await deliver(database, utc(2026, 1, 5, 18) + week * WEEK)
        assert (await stored(database, job.id)).point == ORDER[week]
    (nxt,) = await pendings(database)
    # Point 1 went out on Jan 5; its 3-month round is due 91 days later, on Monday Apr 6.
    assert nxt.scheduled_at == utc(2026, 4, 6, 18)
    async with database.read() as session:
        history = await year_history(session, ALICE, START)
    assert offer_at(history, ORDER, nxt.scheduled_at) == Offer(
        CheckinKind.POINT, ORDER[0], PromptKind.FIRST
    )


async def test_the_years_last_checkin_is_the_summary_and_ends_the_plan(
    database: Database,
) -> None:
    await start(database)
    for week in range(len(ORDER)):
        await deliver(database, utc(2026, 1, 5, 18) + week * WEEK)
    for _ in range(len(ORDER) * 3):  # the 3, 6 and 12 month rounds that fit in the year
        (nxt,) = await pendings(database)
        if nxt.kind == CheckinKind.SUMMARY:
            break
        await deliver(database, nxt.due_at)
    (last,) = await pendings(database)
    assert last.kind == CheckinKind.SUMMARY
    assert last.scheduled_at >= START + YEAR
    assert last.scheduled_at - (START + YEAR) < WEEK
    await deliver(database, last.due_at, offer=SUMMARY)
    assert await pendings(database) == []
    assert (await plan_of(database)).status == PlanStatus.FINISHED


async def test_nothing_to_send_cancels_and_schedules_the_next_slot(database: Database) -> None:
    await start(database)
    job = await claim_one(database, utc(2026, 1, 5, 18))
    async with database.transaction() as session:
        await record_nothing_to_send(session, job, order=ORDER, now=utc(2026, 1, 5, 18))
    assert (await stored(database, job.id)).state == JobState.CANCELLED
    (nxt,) = await pendings(database)
    assert nxt.scheduled_at == utc(2026, 1, 12, 18)


async def test_hold_makes_a_checkin_claimable_again_later(database: Database) -> None:
    checkin = await start(database)
    job = await claim_one(database, utc(2026, 1, 5, 23))
    morning = utc(2026, 1, 6, 8)
    async with database.transaction() as session:
        await hold(session, job, until=morning)
    row = await stored(database, checkin.id)
    assert (row.state, row.due_at, row.scheduled_at) == ("pending", morning, utc(2026, 1, 5, 18))
    async with database.transaction() as session:
        early = await claim_due(
            session, Checkin, now=morning - timedelta(seconds=1), lease=LEASE, limit=10
        )
    assert early == []
    assert (await claim_one(database, morning)).id == checkin.id


async def test_unreachable_tells_the_member_once(database: Database) -> None:
    checkin = await start(database)
    job = await claim_one(database, utc(2026, 1, 5, 18))
    async with database.transaction() as session:
        await record_unreachable_checkin(
            session, job, problem="I can't DM you.", now=utc(2026, 1, 5, 18)
        )
    assert (await stored(database, checkin.id)).state == JobState.FAILED
    assert await pendings(database) == []
    plan = await plan_of(database)
    assert (plan.status, plan.problem) == (PlanStatus.UNREACHABLE, "I can't DM you.")
    async with database.transaction() as session:
        assert await members_with_notices(session) == {ALICE}
        assert await take_notice(session, ALICE) == "I can't DM you."
    async with database.transaction() as session:
        assert await members_with_notices(session) == set()
        assert await take_notice(session, ALICE) is None
        assert await take_notice(session, BOB) is None
    # They allow DMs again and resume: scheduled again, the problem cleared.
    async with database.transaction() as session:
        plan, resumed = await resume_plan(
            session, user_id=ALICE, order=ORDER, now=utc(2026, 1, 6, 9)
        )
    assert plan.status == PlanStatus.ACTIVE and plan.problem is None
    assert resumed.scheduled_at == utc(2026, 1, 12, 18)


async def test_a_failed_attempt_retries_then_gives_up_and_moves_on(database: Database) -> None:
    checkin = await start(database)
    now = utc(2026, 1, 5, 18)
    job = await claim_one(database, now)
    async with database.transaction() as session:
        await record_failed_attempt(
            session, job, problem="Discord had a server error (503).", retry_at=now + 2 * HOUR,
            order=ORDER, now=now,
        )  # fmt: skip
    row = await stored(database, checkin.id)
    assert (row.state, row.lease_until) == ("pending", now + 2 * HOUR)
    assert (await plan_of(database)).problem == "Discord had a server error (503)."
    job = await claim_one(database, now + 2 * HOUR)
    async with database.transaction() as session:
        await record_failed_attempt(
            session, job, problem="gave up", retry_at=None, order=ORDER, now=now + 2 * HOUR
        )
    assert (await stored(database, checkin.id)).state == JobState.FAILED
    (nxt,) = await pendings(database)
    assert nxt.scheduled_at == utc(2026, 1, 12, 18)


# --- the member's answers -----------------------------------------------------------------------


async def test_snooze_brings_the_point_back_tomorrow_and_keeps_the_grid(
    database: Database,
) -> None:
    await start(database)
    sent = await deliver(database, utc(2026, 1, 5, 18))
    (regular,) = await pendings(database)
    async with database.transaction() as session:
        until = await snooze(session, user_id=ALICE, checkin_id=sent.id, now=utc(2026, 1, 5, 19))
    assert until == utc(2026, 1, 6, 18)
    snoozed, still = await pendings(database)
    assert (snoozed.point, snoozed.scheduled_at, snoozed.due_at) == (ORDER[0], until, until)
    assert (still.id, still.scheduled_at) == (regular.id, utc(2026, 1, 12, 18))
    row = await stored(database, sent.id)
    assert (row.response, row.responded_at) == (Response.SNOOZED, utc(2026, 1, 5, 19))
    # The snoozed point goes out on Tuesday; the Monday grid carries on, without a double.
    again = await deliver(
        database, until, offer=Offer(CheckinKind.POINT, ORDER[0], PromptKind.FIRST)
    )
    assert (await stored(database, again.id)).point == ORDER[0]
    (nxt,) = await pendings(database)
    assert (nxt.id, nxt.scheduled_at) == (regular.id, utc(2026, 1, 12, 18))


async def test_snooze_in_the_members_zone(database: Database) -> None:
    async with database.transaction() as session:
        await set_timezone(session, user_id=ALICE, zone_name="Europe/Berlin", now=START)
    await start(database)
    sent = await deliver(database, utc(2026, 1, 5, 17))
    async with database.transaction() as session:
        # 00:30 on Tuesday in Berlin (still Monday in UTC): tomorrow is Wednesday there.
        until = await snooze(
            session, user_id=ALICE, checkin_id=sent.id, now=utc(2026, 1, 5, 23, 30)
        )
    assert until == utc(2026, 1, 7, 17)


async def test_snooze_on_a_monthly_plan_keeps_the_four_week_grid(database: Database) -> None:
    await start(database, cadence=Cadence.MONTHLY)
    sent = await deliver(database, utc(2026, 1, 5, 18))
    (regular,) = await pendings(database)
    assert regular.scheduled_at == utc(2026, 2, 2, 18)
    async with database.transaction() as session:
        until = await snooze(session, user_id=ALICE, checkin_id=sent.id, now=utc(2026, 1, 5, 19))
    await deliver(database, until, offer=Offer(CheckinKind.POINT, ORDER[0], PromptKind.FIRST))
    (nxt,) = await pendings(database)
    assert nxt.scheduled_at == utc(2026, 2, 2, 18)


async def test_snooze_the_day_before_the_next_slot_does_not_double_it(database: Database) -> None:
    await start(database)
    sent = await deliver(database, utc(2026, 1, 5, 18))
    async with database.transaction() as session:
        # Sunday: tomorrow at 18:00 is exactly the next regular slot.
        until = await snooze(session, user_id=ALICE, checkin_id=sent.id, now=utc(2026, 1, 11, 12))
    assert until == utc(2026, 1, 12, 18)
    assert len(await pendings(database)) == 1


async def test_snooze_works_once_a_pause_has_ended(database: Database) -> None:
    await start(database)
    async with database.transaction() as session:
        _, moved = await pause_plan(session, user_id=ALICE, days=1, order=ORDER, now=START)
    assert moved is not None and moved.scheduled_at == utc(2026, 1, 12, 18)
    sent = await deliver(database, utc(2026, 1, 12, 18))
    async with database.transaction() as session:
        until = await snooze(session, user_id=ALICE, checkin_id=sent.id, now=utc(2026, 1, 12, 19))
    assert until == utc(2026, 1, 13, 18)


async def test_snooze_refuses_someone_elses_or_an_unsent_checkin(database: Database) -> None:
    pending = await start(database)
    await start(database, user_id=BOB)
    async with database.transaction() as session:
        with pytest.raises(NotFound):
            await snooze(session, user_id=ALICE, checkin_id=pending.id, now=START)
        with pytest.raises(NotFound):
            await snooze(session, user_id=BOB, checkin_id=pending.id, now=START)


async def test_link_reflection_refuses_someone_elses_checkin(database: Database) -> None:
    cipher = TextCipher(parse_key(generate_key()))
    await start(database)
    sent = await deliver(database, utc(2026, 1, 5, 18))
    (pending,) = await pendings(database)
    async with database.transaction() as session:
        entry, _ = await add_reflection(
            session, cipher, user_id=BOB, point=ORDER[0], text="bob's", comfort=3,
            submission_key=None, now=utc(2026, 1, 5, 19),
        )  # fmt: skip
        mine, _ = await add_reflection(
            session, cipher, user_id=ALICE, point=ORDER[0], text="mine", comfort=4,
            submission_key=None, now=utc(2026, 1, 5, 19),
        )  # fmt: skip
    async with database.transaction() as session:
        assert not await link_reflection(
            session, user_id=BOB, checkin_id=sent.id, reflection_id=entry.id, now=START
        )
        assert not await link_reflection(  # not sent yet
            session, user_id=ALICE, checkin_id=pending.id, reflection_id=mine.id, now=START
        )
    row = await stored(database, sent.id)
    assert (row.reflection_id, row.response) == (None, None)
    when = utc(2026, 1, 5, 19)
    async with database.transaction() as session:
        assert await link_reflection(
            session, user_id=ALICE, checkin_id=sent.id, reflection_id=mine.id, now=when
        )
    row = await stored(database, sent.id)
    assert (row.reflection_id, row.response, row.responded_at) == (
        mine.id,
        Response.REFLECTED,
        when,
    )


async def test_reply_target_is_a_checkin_from_the_last_48_hours(database: Database) -> None:
    await start(database)
    sent_at = utc(2026, 1, 5, 18)
    sent = await deliver(database, sent_at)
    async with database.read() as session:
        near = await reply_target(session, user_id=ALICE, now=sent_at + timedelta(minutes=5))
        edge = await reply_target(session, user_id=ALICE, now=sent_at + 48 * HOUR)
        old = await reply_target(
            session, user_id=ALICE, now=sent_at + 48 * HOUR + timedelta(seconds=1)
        )
        bobs = await reply_target(session, user_id=BOB, now=sent_at + HOUR)
    assert near is not None and near.id == sent.id
    assert edge is not None and edge.id == sent.id
    assert old is None and bobs is None


async def test_reply_target_is_the_latest_point_checkin(database: Database) -> None:
    await start(database)
    await deliver(database, utc(2026, 1, 5, 18))
    second = await deliver(database, utc(2026, 1, 12, 18))
    async with database.read() as session:
        target = await reply_target(session, user_id=ALICE, now=utc(2026, 1, 12, 20))
    assert target is not None and target.id == second.id


async def test_forget_leaves_no_checkin_or_plan_of_the_member(database: Database) -> None:
    cipher = TextCipher(parse_key(generate_key()))
    await start(database)
    await start(database, user_id=BOB, weekday=1)  # Bob's check-in is not due on Monday
    sent = await deliver(database, utc(2026, 1, 5, 18))
    async with database.transaction() as session:
        entry, _ = await add_reflection(
            session, cipher, user_id=ALICE, point=ORDER[0], text="mine", comfort=4,
            submission_key=None, now=utc(2026, 1, 5, 19),
        )  # fmt: skip
        assert await link_reflection(
            session, user_id=ALICE, checkin_id=sent.id, reflection_id=entry.id, now=START
        )
    async with database.transaction() as session:
        await forget(session, user_id=ALICE)
    async with database.read() as session:
        alice_checkins = await session.scalar(
            select(func.count()).select_from(Checkin).where(Checkin.user_id == ALICE)
        )
        alice_plans = await session.scalar(
            select(func.count()).select_from(CheckinPlan).where(CheckinPlan.user_id == ALICE)
        )
        bob_checkins = await session.scalar(
            select(func.count()).select_from(Checkin).where(Checkin.user_id == BOB)
        )
        assert await pending_checkin(session, BOB) is not None
        assert await get_plan(session, BOB) is not None
    assert (alice_checkins, alice_plans, bob_checkins) == (0, 0, 1)


async def test_a_checkin_sent_while_its_plan_changed_is_still_recorded(database: Database) -> None:
    await start(database)
    job = await claim_one(database, utc(2026, 1, 5, 18))
    async with database.transaction() as session:  # paused while the DM was on its way
        await pause_plan(session, user_id=ALICE, days=3, order=ORDER, now=utc(2026, 1, 5, 18))
    async with database.transaction() as session:
        offer = Offer(CheckinKind.POINT, ORDER[0], PromptKind.FIRST)
        assert await record_delivered(
            session, job, offer, message_id=42, late=False, order=ORDER, now=utc(2026, 1, 5, 18)
        )
    row = await stored(database, job.id)
    assert (row.state, row.message_id, row.point) == ("done", 42, ORDER[0])
    (after_pause,) = await pendings(database)  # the pause's own next check-in stands
    assert after_pause.scheduled_at == utc(2026, 1, 12, 18)
