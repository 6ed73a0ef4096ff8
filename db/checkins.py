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

from sqlalchemy import func, select, update
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
from db.jobs import JobState, finish, retry_later
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
    wanted = next_due(history, order, slot)
    if wanted > slot:
        slot = first_slot_from(rule, slot, not_before=wanted)
    return slot, CheckinKind.SUMMARY if slot >= history.ends_at else CheckinKind.POINT


async def _schedule(
    session: AsyncSession,
    user_id: int,
    at: datetime,
    kind: CheckinKind,
    *,
    point: str | None = None,
) -> Checkin:
    checkin = Checkin(
        user_id=user_id,
        kind=kind,
        point=point,
        scheduled_at=at,
        due_at=at,
        state=JobState.PENDING,
        attempts=0,
        late=False,
    )
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
