"""DM check-ins: members' plans and the check-in rows the dispatcher claims (db.jobs).

Every member has at most one pending check-in: it is created when the plan starts and each
time one is delivered, and moved (never duplicated) by pauses, snoozes and zone changes.
What a check-in carries is decided by advice.checkins when it is delivered, not in advance,
so a reflection written meanwhile is taken into account.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from advice.checkins import REPLY_WINDOW, CheckinKind, Offer, YearHistory, next_due
from advice.errors import InvalidInput, NotFound
from advice.journey import YEAR
from advice.schedule import (
    MIN_GAP,
    Cadence,
    Rule,
    first_occurrence,
    first_slot_from,
    following,
    moved_to,
    snoozed_until,
)
from db.crypto import TextCipher
from db.jobs import JobState, finish, retry_later
from db.journal import Entry, entry_of
from db.locks import lock_existing_member
from db.models import NOTICE_PENDING, Checkin, CheckinPlan, Reflection, User
from db.users import ensure_user

CHECKIN_NOT_FOUND = "That check-in doesn't exist any more, or it isn't yours."


class PlanStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"
    UNREACHABLE = "unreachable"  # Discord refused our DMs; nothing is sent until they resume
    FINISHED = "finished"  # the year ended with its summary


class Response(StrEnum):
    REFLECTED = "reflected"
    SNOOZED = "snoozed"
    SKIPPED = "skipped"
    STOPPED = "stopped"


def rule_of(plan: CheckinPlan, zone_name: str | None) -> Rule:
    return Rule(Cadence(plan.cadence), plan.weekday, plan.hour, zone_name)


async def get_plan(session: AsyncSession, user_id: int) -> CheckinPlan | None:
    return await session.get(CheckinPlan, user_id)


async def pending_checkin(session: AsyncSession, user_id: int) -> Checkin | None:
    return await session.scalar(
        select(Checkin)
        .where(Checkin.user_id == user_id, Checkin.state == JobState.PENDING)
        .order_by(Checkin.due_at)
        .limit(1)
    )


async def last_delivered(session: AsyncSession, user_id: int) -> Checkin | None:
    return await session.scalar(
        select(Checkin)
        .where(Checkin.user_id == user_id, Checkin.sent_at.is_not(None))
        .order_by(Checkin.sent_at.desc(), Checkin.id.desc())
        .limit(1)
    )


async def year_history(session: AsyncSession, user_id: int, since: datetime) -> YearHistory:
    reflections: dict[str, list[datetime]] = {}
    offers: dict[str, list[datetime]] = {}
    rows = await session.execute(
        select(Reflection.point, Reflection.created_at).where(
            Reflection.user_id == user_id, Reflection.created_at >= since
        )
    )
    for point, at in rows:
        reflections.setdefault(point, []).append(at)
    offered = await session.execute(
        select(Checkin.point, Checkin.sent_at).where(
            Checkin.user_id == user_id,
            Checkin.kind == CheckinKind.POINT,
            Checkin.sent_at >= since,
            Checkin.point.is_not(None),
        )
    )
    for offered_point, sent_at in offered:
        if offered_point is not None and sent_at is not None:  # the query's filter; for typing
            offers.setdefault(offered_point, []).append(sent_at)
    return YearHistory(since, reflections, offers)


async def next_slot(
    session: AsyncSession,
    plan: CheckinPlan,
    rule: Rule,
    order: Sequence[str],
    *,
    previous: datetime | None,
    now: datetime,
) -> tuple[datetime, CheckinKind]:
    """The member's next slot that will have something to carry, and whether it ends the year.

    The next one is at least a day after the last delivered: after a delivery (`previous`
    given), so a late check-in is never followed by the regular one the same evening, and
    when the plan starts again (a new hour, a resume) the day one went out.
    """
    history = await year_history(session, plan.user_id, plan.year_started_at)
    if previous is None:
        slot = first_occurrence(rule, now)
        if plan.last_delivered_at is not None and slot < plan.last_delivered_at + MIN_GAP:
            # Started again (a new hour, a resume) the day one went out: not twice in a day.
            slot = first_slot_from(rule, slot, not_before=plan.last_delivered_at + MIN_GAP)
    else:
        slot = following(rule, previous, after=now + MIN_GAP)
    return _carrying(history, order, rule, slot)


def _carrying(
    history: YearHistory, order: Sequence[str], rule: Rule, slot: datetime
) -> tuple[datetime, CheckinKind]:
    """The first slot from `slot` with something to carry, and whether it ends the year."""
    wanted = next_due(history, order, slot)
    if wanted > slot:
        slot = first_slot_from(rule, slot, not_before=wanted)
    return slot, CheckinKind.SUMMARY if slot >= history.ends_at else CheckinKind.POINT


def _pending(user_id: int, kind: CheckinKind, at: datetime, point: str | None = None) -> Checkin:
    """A new check-in, due at `at` and not tried yet."""
    return Checkin(
        user_id=user_id,
        kind=kind,
        point=point,
        scheduled_at=at,
        due_at=at,
        state=JobState.PENDING,
        attempts=0,
        late=False,
    )


async def _schedule(
    session: AsyncSession,
    user_id: int,
    at: datetime,
    kind: CheckinKind,
    *,
    point: str | None = None,
) -> Checkin:
    checkin = _pending(user_id, kind, at, point)
    session.add(checkin)
    await session.flush()
    return checkin


async def _cancel_pending(session: AsyncSession, user_id: int) -> None:
    await session.execute(
        update(Checkin)
        .where(Checkin.user_id == user_id, Checkin.state == JobState.PENDING)
        .values(state=JobState.CANCELLED, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def _year_start(plan: CheckinPlan | None, user: User, now: datetime) -> datetime:
    """The current year goes on while it lasts; a finished or lapsed one makes way for a new one."""
    if (
        plan is not None
        and plan.status != PlanStatus.FINISHED
        and now < plan.year_started_at + YEAR
    ):
        return plan.year_started_at
    if plan is None and user.journey_started_at and now < user.journey_started_at + YEAR:
        return user.journey_started_at  # they began by reflecting; the check-ins join that year
    return now


async def start_plan(
    session: AsyncSession,
    *,
    user_id: int,
    cadence: Cadence,
    weekday: int,
    hour: int,
    order: Sequence[str],
    now: datetime,
) -> tuple[CheckinPlan, Checkin]:
    """Opt in (or change the rule): the plan is active and its next check-in scheduled."""
    user = await ensure_user(session, user_id, now=now)
    if user.journey_started_at is None:
        user.journey_started_at = now
    plan = await get_plan(session, user_id)
    year_started_at = _year_start(plan, user, now)
    if plan is None:
        plan = CheckinPlan(user_id=user_id, created_at=now, notice_pending=False)
        session.add(plan)
    plan.cadence, plan.weekday, plan.hour = cadence, weekday, hour
    plan.year_started_at = year_started_at
    return plan, await _run_from_now(session, plan, user, order, now)


async def _run_from_now(
    session: AsyncSession, plan: CheckinPlan, user: User, order: Sequence[str], now: datetime
) -> Checkin:
    """The plan runs again: no pause, no problem, one pending check-in at its next slot."""
    plan.status = PlanStatus.ACTIVE
    plan.paused_until = None
    plan.problem = None
    plan.notice_pending = False
    plan.updated_at = now
    await _cancel_pending(session, plan.user_id)
    await session.flush()
    slot, kind = await next_slot(
        session, plan, rule_of(plan, user.timezone), order, previous=None, now=now
    )
    return await _schedule(session, plan.user_id, slot, kind)


async def _require_plan(session: AsyncSession, user_id: int) -> tuple[CheckinPlan, User]:
    plan = await get_plan(session, user_id)
    user = await session.get(User, user_id)
    if plan is None or user is None or plan.status in (PlanStatus.STOPPED, PlanStatus.FINISHED):
        raise NotFound("You don't have check-ins on. Start them with `/checkin start`.")
    return plan, user


async def pause_plan(
    session: AsyncSession, *, user_id: int, days: int, order: Sequence[str], now: datetime
) -> tuple[CheckinPlan, Checkin]:
    """Nothing is sent until the pause ends; then the schedule simply carries on."""
    plan, user = await _require_plan(session, user_id)
    if plan.status == PlanStatus.UNREACHABLE:
        raise NotFound(
            "Your check-ins are already stopped because I can't DM you. Allow DMs, "
            "then use `/checkin resume`."
        )
    plan.status = PlanStatus.PAUSED
    plan.paused_until = now + timedelta(days=days)
    plan.updated_at = now
    regular = await session.scalar(
        select(Checkin.scheduled_at)
        .where(Checkin.user_id == user_id, Checkin.state == JobState.PENDING)
        .order_by(Checkin.scheduled_at.desc())
        .limit(1)
    )
    rule = rule_of(plan, user.timezone)
    previous = regular or now
    await _cancel_pending(session, user_id)
    slot = first_slot_from(rule, previous, not_before=plan.paused_until)
    kind = CheckinKind.SUMMARY if slot >= plan.year_started_at + YEAR else CheckinKind.POINT
    return plan, await _schedule(session, user_id, slot, kind)


async def resume_plan(
    session: AsyncSession, *, user_id: int, order: Sequence[str], now: datetime
) -> tuple[CheckinPlan, Checkin]:
    plan, user = await _require_plan(session, user_id)
    return plan, await _run_from_now(session, plan, user, order, now)


async def stop_plan(session: AsyncSession, *, user_id: int, now: datetime) -> bool:
    """False when there was nothing to stop."""
    plan = await get_plan(session, user_id)
    if plan is None or plan.status in (PlanStatus.STOPPED, PlanStatus.FINISHED):
        return False
    plan.status = PlanStatus.STOPPED
    plan.paused_until = None
    plan.updated_at = now
    await _cancel_pending(session, user_id)
    return True


async def set_timezone(
    session: AsyncSession, *, user_id: int, zone_name: str, now: datetime
) -> Checkin | None:
    """Set the member's zone; pending check-ins move to the same local hour there (never into
    a pause). Returns the next one."""
    user = await ensure_user(session, user_id, now=now)
    old_zone, user.timezone = user.timezone, zone_name
    plan = await get_plan(session, user_id)
    if plan is None:
        return None
    rule = rule_of(plan, zone_name)
    pending = await session.scalars(
        select(Checkin).where(Checkin.user_id == user_id, Checkin.state == JobState.PENDING)
    )
    for checkin in pending:
        at = moved_to(rule, checkin.scheduled_at, old_zone, now=now)
        if plan.paused_until and at < plan.paused_until:
            at = first_slot_from(rule, at, not_before=plan.paused_until)
        checkin.scheduled_at = checkin.due_at = at
    return await pending_checkin(session, user_id)


# --- delivery (the dispatcher's side) -----------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """What delivering one check-in needs to know about its member."""

    plan: CheckinPlan | None
    timezone: str | None
    dm_channel_id: int | None
    history: YearHistory | None


async def recipient(session: AsyncSession, checkin: Checkin) -> Recipient:
    plan = await get_plan(session, checkin.user_id)
    user = await session.get(User, checkin.user_id)
    history = await year_history(session, checkin.user_id, plan.year_started_at) if plan else None
    return Recipient(
        plan,
        user.timezone if user else None,
        user.dm_channel_id if user else None,
        history,
    )


async def recipients(session: AsyncSession, checkins: Sequence[Checkin]) -> dict[int, Recipient]:
    """`recipient` for a whole batch, by member, in three statements whatever its size: the
    members with their plans, then their year's reflections and the points offered to them."""
    user_ids = sorted({checkin.user_id for checkin in checkins})
    if not user_ids:
        return {}
    rows = await session.execute(
        select(User.id, User.timezone, User.dm_channel_id, CheckinPlan)
        .outerjoin(CheckinPlan, CheckinPlan.user_id == User.id)
        .where(User.id.in_(user_ids))
    )
    members = {user_id: (zone, channel, plan) for user_id, zone, channel, plan in rows}
    reflections: dict[int, dict[str, list[datetime]]] = {}
    offers: dict[int, dict[str, list[datetime]]] = {}
    for user_id, point, at in await session.execute(
        select(Reflection.user_id, Reflection.point, Reflection.created_at)
        .join(CheckinPlan, CheckinPlan.user_id == Reflection.user_id)
        .where(
            Reflection.user_id.in_(user_ids), Reflection.created_at >= CheckinPlan.year_started_at
        )
    ):
        reflections.setdefault(user_id, {}).setdefault(point, []).append(at)
    for user_id, offered_point, sent_at in await session.execute(
        select(Checkin.user_id, Checkin.point, Checkin.sent_at)
        .join(CheckinPlan, CheckinPlan.user_id == Checkin.user_id)
        .where(
            Checkin.user_id.in_(user_ids),
            Checkin.kind == CheckinKind.POINT,
            Checkin.sent_at >= CheckinPlan.year_started_at,
            Checkin.point.is_not(None),
        )
    ):
        if offered_point is not None and sent_at is not None:
            offers.setdefault(user_id, {}).setdefault(offered_point, []).append(sent_at)
    found: dict[int, Recipient] = {}
    for user_id in user_ids:
        zone, channel, plan = members.get(user_id, (None, None, None))
        history = (
            YearHistory(plan.year_started_at, reflections.get(user_id, {}), offers.get(user_id, {}))
            if plan is not None
            else None
        )
        found[user_id] = Recipient(plan, zone, channel, history)
    return found


async def superseded(
    session: AsyncSession, checkins: Sequence[Checkin], *, now: datetime
) -> set[int]:
    """`is_superseded` for a whole batch in one statement: the ids of those superseded.

    The batch's members' pending check-ins are read by member (ix_checkins_user_state) and
    compared here. A correlated EXISTS per check-in let SQLite's planner walk every pending
    check-in due for each of the batch's (ix_checkins_state_due): seconds a batch with
    10,000 due."""
    if not checkins:
        return set()
    pending: dict[int, list[tuple[int, datetime, datetime]]] = {}
    for checkin_id, user_id, due_at, scheduled_at in await session.execute(
        select(Checkin.id, Checkin.user_id, Checkin.due_at, Checkin.scheduled_at).where(
            Checkin.user_id.in_(sorted({checkin.user_id for checkin in checkins})),
            Checkin.state == JobState.PENDING,
        )
    ):
        pending.setdefault(user_id, []).append((checkin_id, due_at, scheduled_at))
    return {
        checkin.id
        for checkin in checkins
        if any(
            other_id != checkin.id and due_at <= now and scheduled_at > checkin.scheduled_at
            for other_id, due_at, scheduled_at in pending.get(checkin.user_id, ())
        )
    }


async def first_and_latest_many(
    session: AsyncSession, cipher: TextCipher, wanted: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], list[Entry]]:
    """db.journal.first_and_latest for many (member, point) pairs in one statement: each pair's
    first and latest entry (one when they wrote once), by window functions."""
    if not wanted:
        return {}
    users = sorted({user_id for user_id, _ in wanted})
    points = sorted({point for _, point in wanted})
    partition = (Reflection.user_id, Reflection.point)
    ranked = (
        select(
            Reflection.id.label("id"),
            func.row_number()
            .over(partition_by=partition, order_by=(Reflection.created_at, Reflection.id))
            .label("first"),
            func.row_number()
            .over(
                partition_by=partition,
                order_by=(Reflection.created_at.desc(), Reflection.id.desc()),
            )
            .label("latest"),
        )
        .where(Reflection.user_id.in_(users), Reflection.point.in_(points))
        .subquery()
    )
    rows = await session.execute(
        select(Reflection, ranked.c.first, ranked.c.latest)
        .join(ranked, ranked.c.id == Reflection.id)
        .where((ranked.c.first == 1) | (ranked.c.latest == 1))
    )
    ends: dict[tuple[int, str], dict[str, Reflection]] = {}
    for row, first, latest in rows:
        key = (row.user_id, row.point)
        if first == 1:
            ends.setdefault(key, {})["first"] = row
        if latest == 1:
            ends.setdefault(key, {})["latest"] = row
    found: dict[tuple[int, str], list[Entry]] = {}
    for key in wanted:
        both = ends.get(key)
        if not both or "first" not in both:
            found[key] = []
            continue
        first_row, latest_row = both["first"], both.get("latest")
        pair = (
            [first_row]
            if latest_row is None or latest_row.id == first_row.id
            else [
                first_row,
                latest_row,
            ]
        )
        found[key] = [entry_of(row, cipher) for row in pair]
    return found


async def remember_dm_channel(
    session: AsyncSession, *, user_id: int, channel_id: int | None
) -> None:
    await session.execute(update(User).where(User.id == user_id).values(dm_channel_id=channel_id))


async def forget_dm_channels(session: AsyncSession) -> None:
    """Every member's DM channel is to be opened afresh (the sandbox: its emulator is new each
    session, so the channels kept from the last one are gone)."""
    await session.execute(
        update(User).where(User.dm_channel_id.is_not(None)).values(dm_channel_id=None)
    )


async def record_delivered(
    session: AsyncSession,
    checkin: Checkin,
    offer: Offer,
    *,
    message_id: int,
    late: bool,
    order: Sequence[str],
    now: datetime,
) -> bool:
    """Record a delivery and schedule the next one; False if another process took it over."""
    await lock_existing_member(session, checkin.user_id)  # db.locks: the member first
    sent = _sent(offer, message_id=message_id, late=late, now=now)
    if not await finish(session, Checkin, checkin, JobState.DONE, **sent):
        # Stopped, paused or restarted while on its way: it went out all the same, so its
        # buttons and a reply to it must work; the plan's own next check-in stands.
        return await _sent_after_cancel(session, checkin, sent)
    plan = await get_plan(session, checkin.user_id)
    user = await session.get(User, checkin.user_id)
    if plan is None or user is None:
        return True
    plan.last_delivered_at = now
    plan.problem = None
    plan.updated_at = now
    if current_status(plan, now) != plan.status:
        plan.status, plan.paused_until = PlanStatus.ACTIVE, None
    if offer.kind is CheckinKind.SUMMARY:
        plan.status = PlanStatus.FINISHED
        return True
    await _schedule_after(session, plan, user, checkin, order, now)
    return True


@dataclass(frozen=True)
class Delivered:
    """One check-in Discord accepted, to record with the rest of its batch."""

    checkin: Checkin
    offer: Offer
    message_id: int
    late: bool
    opened_channel: int | None = None  # a DM channel opened on the way, to remember


async def record_delivered_many(
    session: AsyncSession, delivered: Sequence[Delivered], *, order: Sequence[str], now: datetime
) -> set[int]:
    """`record_delivered` (and `remember_dm_channel`) for a whole batch, in one transaction
    and a constant number of statements; the ids recorded (the others were taken over by
    another process meanwhile). One check-in per member: the caller records any second one
    of a member's on its own.

    The lock order (db.locks) holds: the members' rows first, sorted by id, then their plans,
    then the check-ins. The check-ins are fenced by their attempt, as `finish` does.
    """
    if not delivered:
        return set()
    by_user = {each.checkin.user_id: each for each in delivered}
    if len(by_user) != len(delivered):
        raise ValueError("one check-in per member in a batch")
    user_ids = sorted(by_user)
    users = {
        user.id: user
        for user in await session.scalars(
            select(User).where(User.id.in_(user_ids)).order_by(User.id).with_for_update()
        )
    }
    plans = {
        plan.user_id: plan
        for plan in await session.scalars(
            select(CheckinPlan)
            .where(CheckinPlan.user_id.in_(user_ids))
            .order_by(CheckinPlan.user_id)
            .with_for_update()
        )
    }
    wanted = {each.checkin.id: each for each in delivered}
    states = {
        checkin_id: (state, attempts)
        for checkin_id, state, attempts in await session.execute(
            select(Checkin.id, Checkin.state, Checkin.attempts)
            .where(Checkin.id.in_(sorted(wanted)))
            .order_by(Checkin.id)
            .with_for_update()
        )
    }
    held: list[Delivered] = []  # still ours: recorded as delivered, the next one scheduled
    recorded: set[int] = set()
    for checkin_id, each in wanted.items():
        state, attempts = states.get(checkin_id, (None, None))
        if attempts != each.checkin.attempts:
            continue  # another process took it over, and records it
        if state == JobState.PENDING:
            held.append(each)
        elif state != JobState.CANCELLED:
            continue
        # Cancelled (stopped, paused, restarted) while on its way: it went out all the same,
        # so its buttons and a reply to it must work; the plan's own next one stands.
        recorded.add(checkin_id)
    table = Checkin.__table__
    assert isinstance(table, Table)
    if recorded:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"), table.c.attempts == bindparam("b_attempts"))
            .values(
                state=JobState.DONE,
                lease_until=None,
                sent_at=now,
                message_id=bindparam("b_message_id"),
                late=bindparam("b_late"),
                kind=bindparam("b_kind"),
                point=bindparam("b_point"),
                prompt=bindparam("b_prompt"),
            ),
            [
                {
                    "b_id": each.checkin.id,
                    "b_attempts": each.checkin.attempts,
                    "b_message_id": each.message_id,
                    "b_late": each.late,
                    "b_kind": each.offer.kind,
                    "b_point": each.offer.point,
                    "b_prompt": each.offer.prompt,
                }
                for each in (wanted[checkin_id] for checkin_id in sorted(recorded))
            ],
        )
    opened = [(each.checkin.user_id, each.opened_channel) for each in delivered]
    if any(channel is not None for _, channel in opened):
        users_table = User.__table__
        assert isinstance(users_table, Table)
        await session.execute(
            update(users_table)
            .where(users_table.c.id == bindparam("b_id"))
            .values(dm_channel_id=bindparam("b_channel")),
            [{"b_id": user_id, "b_channel": channel} for user_id, channel in opened if channel],
        )
    following_up: list[tuple[CheckinPlan, User, Checkin]] = []
    for each in held:
        plan, user = plans.get(each.checkin.user_id), users.get(each.checkin.user_id)
        if plan is None or user is None:
            continue
        plan.last_delivered_at = now
        plan.problem = None
        plan.updated_at = now
        if current_status(plan, now) != plan.status:
            plan.status, plan.paused_until = PlanStatus.ACTIVE, None
        if each.offer.kind is CheckinKind.SUMMARY:
            plan.status = PlanStatus.FINISHED
        elif plan.status in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
            following_up.append((plan, user, each.checkin))
    await session.flush()
    await _schedule_after_many(session, following_up, order, now)
    return recorded


async def _schedule_after_many(
    session: AsyncSession,
    delivered: Sequence[tuple[CheckinPlan, User, Checkin]],
    order: Sequence[str],
    now: datetime,
) -> None:
    """`_schedule_after` for a batch: each member's next check-in, unless one is pending
    already (the regular one waits behind a snooze)."""
    if not delivered:
        return
    user_ids = sorted(plan.user_id for plan, _, _ in delivered)
    waiting = set(
        await session.scalars(
            select(Checkin.user_id).where(
                Checkin.user_id.in_(user_ids), Checkin.state == JobState.PENDING
            )
        )
    )
    histories = await _histories(session, [plan for plan, _, _ in delivered])
    made = []
    for plan, user, checkin in delivered:
        if plan.user_id in waiting:
            continue
        rule = rule_of(plan, user.timezone)
        following_slot = following(rule, checkin.scheduled_at, after=now + MIN_GAP)
        slot, kind = _carrying(histories[plan.user_id], order, rule, following_slot)
        made.append(_pending(plan.user_id, kind, slot))
    session.add_all(made)
    await session.flush()


async def _histories(session: AsyncSession, plans: Sequence[CheckinPlan]) -> dict[int, YearHistory]:
    """`year_history` of many members, each since their plan's year began: two statements."""
    since = {plan.user_id: plan.year_started_at for plan in plans}
    reflections: dict[int, dict[str, list[datetime]]] = {}
    offers: dict[int, dict[str, list[datetime]]] = {}
    for user_id, point, at in await session.execute(
        select(Reflection.user_id, Reflection.point, Reflection.created_at).where(
            Reflection.user_id.in_(sorted(since)), Reflection.created_at >= min(since.values())
        )
    ):
        if at >= since[user_id]:
            reflections.setdefault(user_id, {}).setdefault(point, []).append(at)
    for user_id, offered_point, sent_at in await session.execute(
        select(Checkin.user_id, Checkin.point, Checkin.sent_at).where(
            Checkin.user_id.in_(sorted(since)),
            Checkin.kind == CheckinKind.POINT,
            Checkin.sent_at >= min(since.values()),
            Checkin.point.is_not(None),
        )
    ):
        if offered_point is not None and sent_at is not None and sent_at >= since[user_id]:
            offers.setdefault(user_id, {}).setdefault(offered_point, []).append(sent_at)
    return {
        user_id: YearHistory(at, reflections.get(user_id, {}), offers.get(user_id, {}))
        for user_id, at in since.items()
    }


def _sent(offer: Offer, *, message_id: int, late: bool, now: datetime) -> dict[str, object]:
    return {
        "sent_at": now,
        "message_id": message_id,
        "late": late,
        "kind": offer.kind,
        "point": offer.point,
        "prompt": offer.prompt,
    }


async def _sent_after_cancel(
    session: AsyncSession, checkin: Checkin, sent: dict[str, object]
) -> bool:
    recorded = await session.scalar(
        update(Checkin)
        .where(
            Checkin.id == checkin.id,
            Checkin.attempts == checkin.attempts,
            Checkin.state == JobState.CANCELLED,
        )
        .values(state=JobState.DONE, lease_until=None, **sent)
        .returning(Checkin.id)
        .execution_options(synchronize_session=False)
    )
    return recorded is not None


async def record_sent_only(
    session: AsyncSession, checkin: Checkin, offer: Offer, message_id: int, *, now: datetime
) -> None:
    """The fallback when recording a delivery failed: it was sent, so it must never be sent
    again; the next one goes on the plain grid, without the rules that may have failed."""
    await lock_existing_member(session, checkin.user_id)
    sent = _sent(offer, message_id=message_id, late=False, now=now)
    if not await finish(session, Checkin, checkin, JobState.DONE, **sent):
        await _sent_after_cancel(session, checkin, sent)
        return
    plan = await get_plan(session, checkin.user_id)
    user = await session.get(User, checkin.user_id)
    if plan is None or user is None or await pending_checkin(session, checkin.user_id):
        return
    if plan.status in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
        at = following(rule_of(plan, user.timezone), checkin.scheduled_at, after=now + MIN_GAP)
        await _schedule(session, checkin.user_id, at, CheckinKind.POINT)


async def is_superseded(session: AsyncSession, checkin: Checkin, *, now: datetime) -> bool:
    """Another of the member's check-ins is due too and stands for a later slot: after downtime
    only the most recent one goes out (a snooze can leave two due at once)."""
    later = await session.scalar(
        select(Checkin.id)
        .where(
            Checkin.user_id == checkin.user_id,
            Checkin.state == JobState.PENDING,
            Checkin.id != checkin.id,
            Checkin.due_at <= now,
            Checkin.scheduled_at > checkin.scheduled_at,
        )
        .limit(1)
    )
    return later is not None


async def _schedule_after(
    session: AsyncSession,
    plan: CheckinPlan,
    user: User,
    checkin: Checkin,
    order: Sequence[str],
    now: datetime,
) -> None:
    if plan.status not in (PlanStatus.ACTIVE, PlanStatus.PAUSED):
        return
    if (
        await pending_checkin(session, plan.user_id) is not None
    ):  # the regular one waits behind a snooze
        return
    await session.flush()
    slot, kind = await next_slot(
        session, plan, rule_of(plan, user.timezone), order, previous=checkin.scheduled_at, now=now
    )
    await _schedule(session, plan.user_id, slot, kind)


async def record_nothing_to_send(
    session: AsyncSession, checkin: Checkin, *, order: Sequence[str], now: datetime
) -> None:
    """The slot came but nothing is due (the member got ahead): no DM, just the next slot."""
    await lock_existing_member(session, checkin.user_id)
    if not await finish(session, Checkin, checkin, JobState.CANCELLED):
        return
    plan = await get_plan(session, checkin.user_id)
    user = await session.get(User, checkin.user_id)
    if plan is not None and user is not None:
        await _schedule_after(session, plan, user, checkin, order, now)


async def hold(session: AsyncSession, checkin: Checkin, *, until: datetime) -> None:
    """Not now (quiet hours, or the plan is paused): claimable again from `until`."""
    await retry_later(session, Checkin, checkin, at=until, due_at=until)


async def record_unreachable_checkin(
    session: AsyncSession, checkin: Checkin, *, problem: str, now: datetime
) -> None:
    """Discord refused the DM: no retry, and the member hears why at their next command."""
    await lock_existing_member(session, checkin.user_id)
    await finish(session, Checkin, checkin, JobState.FAILED)
    await record_unreachable_member(session, user_id=checkin.user_id, problem=problem, now=now)


async def record_unreachable_member(
    session: AsyncSession, *, user_id: int, problem: str, now: datetime
) -> None:
    plan = await get_plan(session, user_id)
    if plan is not None:
        plan.status = PlanStatus.UNREACHABLE
        plan.problem = problem
        plan.notice_pending = True
        plan.updated_at = now
    await _cancel_pending(session, user_id)


async def record_failed_attempt(
    session: AsyncSession,
    checkin: Checkin,
    *,
    problem: str,
    retry_at: datetime | None,
    order: Sequence[str],
    now: datetime,
) -> None:
    """Discord or the network failed: retry at `retry_at`, or give up on this one (None)."""
    await lock_existing_member(session, checkin.user_id)
    plan = await get_plan(session, checkin.user_id)
    if plan is not None:
        plan.problem = problem
    if retry_at is not None:
        await retry_later(session, Checkin, checkin, at=retry_at)
        return
    if not await finish(session, Checkin, checkin, JobState.FAILED):
        return
    user = await session.get(User, checkin.user_id)
    if plan is not None and user is not None:
        await _schedule_after(session, plan, user, checkin, order, now)


async def take_notice(session: AsyncSession, user_id: int) -> str | None:
    """The delivery problem the member has not been told about yet (told once)."""
    return await session.scalar(
        update(CheckinPlan)
        .where(CheckinPlan.user_id == user_id, CheckinPlan.notice_pending.is_(True))
        .values(notice_pending=False)
        .returning(CheckinPlan.problem)
        .execution_options(synchronize_session=False)
    )


async def members_with_notices(session: AsyncSession) -> set[int]:
    """Every member with a delivery problem they have not been told about yet (an index
    holds just these)."""
    return set(await session.scalars(select(CheckinPlan.user_id).where(NOTICE_PENDING)))


# --- the member's answers -----------------------------------------------------------------------


async def owned_checkin(session: AsyncSession, *, user_id: int, checkin_id: int) -> Checkin:
    checkin = await session.scalar(
        select(Checkin).where(Checkin.id == checkin_id, Checkin.user_id == user_id)
    )
    if checkin is None or checkin.sent_at is None:
        raise NotFound(CHECKIN_NOT_FOUND)
    return checkin


class AlreadyAnswered(InvalidInput):
    """A second press (at the same moment or later) on a check-in already answered."""

    def __init__(self, response: str) -> None:
        super().__init__(f"You already answered this check-in ({response}). Nothing changed.")


async def answerable_checkin(session: AsyncSession, *, user_id: int, checkin_id: int) -> Checkin:
    """The member's check-in, if a press may still answer it: not answered yet, and not passed
    (a newer one replaced it). Read inside the write, after the member's lock (db.locks), so
    two presses at once act once: the second finds the first's answer."""
    checkin = await owned_checkin(session, user_id=user_id, checkin_id=checkin_id)
    if checkin.response is not None:
        raise AlreadyAnswered(checkin.response)
    latest = await last_delivered(session, user_id)
    if latest is None or latest.id != checkin.id:
        raise InvalidInput("This check-in has passed; a newer one replaced it. Nothing changed.")
    return checkin


async def snooze(
    session: AsyncSession, *, user_id: int, checkin_id: int, now: datetime
) -> datetime:
    """Bring this check-in's point back tomorrow at the member's hour; returns when.

    The regular next check-in keeps its slot, so a fortnightly or monthly grid stays put;
    only when it would come within a day of the snoozed one does it carry the point instead.
    """
    checkin = await answerable_checkin(session, user_id=user_id, checkin_id=checkin_id)
    plan, user = await _require_plan(session, user_id)
    if current_status(plan, now) != PlanStatus.ACTIVE:
        raise NotFound("Your check-ins aren't running right now; see `/checkin status`.")
    at = snoozed_until(rule_of(plan, user.timezone), now)
    pending = await pending_checkin(session, user_id)
    if pending is not None and pending.due_at <= at + timedelta(days=1):
        if pending.kind == CheckinKind.POINT:
            pending.point = checkin.point
        at = pending.due_at
    else:
        await _schedule(session, user_id, at, CheckinKind.POINT, point=checkin.point)
    checkin.response, checkin.responded_at = Response.SNOOZED, now
    return at


async def skip(
    session: AsyncSession, *, user_id: int, checkin_id: int, now: datetime
) -> Checkin | None:
    """Let this check-in's point pass (it returns with its next round); the next check-in."""
    checkin = await answerable_checkin(session, user_id=user_id, checkin_id=checkin_id)
    checkin.response, checkin.responded_at = Response.SKIPPED, now
    return await pending_checkin(session, user_id)


async def stop_from_checkin(
    session: AsyncSession, *, user_id: int, checkin_id: int, now: datetime
) -> bool:
    """Stop pressed on a check-in: the check-ins stop whatever this one's answer was, and it
    is marked stopped if it had none. False when they were already stopped."""
    checkin = await owned_checkin(session, user_id=user_id, checkin_id=checkin_id)
    stopped = await stop_plan(session, user_id=user_id, now=now)
    if checkin.response is None:
        checkin.response, checkin.responded_at = Response.STOPPED, now
    return stopped


def current_status(plan: CheckinPlan, now: datetime) -> PlanStatus:
    """A pause that has run out is over, whether or not anything was delivered since."""
    if plan.status == PlanStatus.PAUSED and plan.paused_until and plan.paused_until <= now:
        return PlanStatus.ACTIVE
    return PlanStatus(plan.status)


async def link_reflection(
    session: AsyncSession, *, user_id: int, checkin_id: int, reflection_id: int, now: datetime
) -> bool:
    """Record a reflection as this check-in's answer; False for someone else's check-in."""
    linked = await session.scalar(
        update(Checkin)
        .where(Checkin.id == checkin_id, Checkin.user_id == user_id, Checkin.sent_at.is_not(None))
        .values(reflection_id=reflection_id, response=Response.REFLECTED, responded_at=now)
        .returning(Checkin.id)
        .execution_options(synchronize_session=False)
    )
    return linked is not None


async def reply_target(session: AsyncSession, *, user_id: int, now: datetime) -> Checkin | None:
    """The check-in a plain DM reply answers: the latest one delivered in the last 48 hours,
    unless the member closed its replies."""
    latest = await session.scalar(
        select(Checkin)
        .where(
            Checkin.user_id == user_id,
            Checkin.kind == CheckinKind.POINT,
            Checkin.sent_at >= now - REPLY_WINDOW,
        )
        .order_by(Checkin.sent_at.desc(), Checkin.id.desc())
        .limit(1)
    )
    return None if latest is None or latest.replies_closed_at is not None else latest


async def close_replies(
    session: AsyncSession, *, user_id: int, checkin_id: int, now: datetime
) -> bool:
    """The member said a DM was not an answer: it is no longer this check-in's reflection, and
    their later DMs are conversation. (The check-in's own Reflect button still answers it.)
    False for a check-in that is not theirs."""
    closed = await session.scalar(
        update(Checkin)
        .where(Checkin.id == checkin_id, Checkin.user_id == user_id)
        .values(replies_closed_at=now, reflection_id=None, response=None, responded_at=None)
        .returning(Checkin.id)
        .execution_options(synchronize_session=False)
    )
    return closed is not None


# --- the sandbox's clock ------------------------------------------------------------------------


async def next_due_at(session: AsyncSession, *, until: datetime) -> datetime | None:
    """When the earliest pending check-in can next be claimed, if not after `until`: its due
    time, or a retry's lease when later. The sandbox moves its clock from one to the next, so
    each arrives on time, as it would for a bot that kept running."""
    pending = Checkin.state == JobState.PENDING
    due = await session.scalar(
        select(func.min(Checkin.due_at)).where(
            pending,
            Checkin.due_at <= until,
            (Checkin.lease_until.is_(None)) | (Checkin.lease_until <= Checkin.due_at),
        )
    )
    retry = await session.scalar(
        select(func.min(Checkin.lease_until)).where(
            pending, Checkin.lease_until > Checkin.due_at, Checkin.lease_until <= until
        )
    )
    return min((at for at in (due, retry) if at is not None), default=None)
