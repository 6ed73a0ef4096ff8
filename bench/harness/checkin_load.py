"""Members with a check-in due now, as bench/checkins.py delivers them (and bench/moderation.py
takes for its baseline): made up, seeded, delivered by real bots, and checked.

They differ as real members do: some 40 time zones (those where it is 08:00-21:59 now, or the
quiet hours would hold the check-in), weekly, fortnightly and monthly cadences, and every stage
of the year: new (first point next), part-way through the first pass (some points reflected
on, some only offered), and months in with a revisit due, where the DM shows what they wrote
then and most recently. About one in ten is overdue by hours (the bot was down), so the DM
says it is late; a few carry a snoozed point. Reflections are encrypted with the bot's key;
one member in 100 writes through ``db.journal.add_reflection``, the rest are bulk-inserted
into the models' tables.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from advice.checkins import CheckinKind, Offer, YearHistory, offer_at
from advice.content import Content
from advice.journey import REVISIT_AFTER, PromptKind, prompt_kind
from advice.schedule import LATE_AFTER, Cadence, local_instant
from db import Database
from db.crypto import TextCipher, parse_key
from db.journal import add_reflection
from db.migrate import upgrade
from db.models import Checkin, CheckinPlan, Reflection, User
from harness.database import analyze, insert_rows
from harness.emulator_process import FIRST_MEMBER_ID, start_emulator
from harness.jobs import Context, Due, Expect, Result, Setup, deliver
from harness.texts import CHECKIN_SENTENCES, ZONES

NONCE_WINDOW = timedelta(minutes=5)  # how long the emulator (like Discord) matches a nonce
DELIVERY_MARGIN = timedelta(minutes=20)  # a check-in is delivered within this of seeding
ADD_REFLECTION_EVERY = 100  # one member in this many writes through db.journal.add_reflection


# --- the members -------------------------------------------------------------------------------


@dataclass
class Written:
    point: str
    at: datetime
    text: str
    comfort: int | None


@dataclass
class Member:
    user_id: int
    zone: str | None
    cadence: Cadence
    weekday: int
    hour: int
    year_started_at: datetime
    scheduled_at: datetime  # the pending check-in's slot (and due time)
    stage: str  # new, first-pass, revisit
    reflections: list[Written] = field(default_factory=list)
    offers: list[tuple[str, datetime]] = field(default_factory=list)  # earlier check-ins sent
    snoozed: str | None = None  # the pending check-in carries this point (a snooze)
    via_add_reflection: bool = False
    offer: Offer | None = None  # what the pending check-in must carry
    late: bool | None = None  # must be marked late (None: it depends on the second it goes)

    def history(self) -> YearHistory:
        reflections: dict[str, list[datetime]] = {}
        offers: dict[str, list[datetime]] = {}
        for written in self.reflections:
            if written.at >= self.year_started_at:
                reflections.setdefault(written.point, []).append(written.at)
        for point, at in self.offers:
            if at >= self.year_started_at:
                offers.setdefault(point, []).append(at)
        return YearHistory(self.year_started_at, reflections, offers)

    def earlier_words(self) -> list[str]:
        """What the revisit DM must show: the first and the latest entry on its point."""
        assert self.offer is not None
        if self.offer.prompt is not PromptKind.REVISIT:
            return []
        mine = sorted(
            (w for w in self.reflections if w.point == self.offer.point), key=lambda w: w.at
        )
        if not mine:
            return []
        return [mine[0].text] if len(mine) == 1 else [mine[0].text, mine[-1].text]


def _slot(zone: str | None, t0: datetime, hours_ago: int) -> datetime | None:
    """The member's local hh:00 `hours_ago` hours before now, if a check-in could be there and
    still be deliverable (out of quiet hours) while this benchmark runs."""
    tz = ZoneInfo(zone) if zone else UTC
    local = (t0 - timedelta(minutes=1) - timedelta(hours=hours_ago)).astimezone(tz)
    if not 8 <= local.hour <= 21:
        return None
    for at in (t0 - timedelta(minutes=1), t0 + DELIVERY_MARGIN):  # now and while this runs
        if not 8 <= at.astimezone(tz).hour < 22:
            return None
    return local_instant(local.date(), local.hour, tz)


def _text(rng: random.Random, index: int, point: str, round_: int) -> str:
    words = " ".join(rng.sample(CHECKIN_SENTENCES, k=rng.randint(1, 4)))
    body = f"[{index}:{point}:{round_}] {words}"
    if rng.random() < 0.05:  # a long one: the DM shows its first 900 characters
        body += " " + " ".join(rng.choices(CHECKIN_SENTENCES, k=20))
    return body


def build_members(count: int, t0: datetime, content: Content, seed: int = 7) -> list[Member]:
    rng = random.Random(seed)
    order = list(content.slugs)
    members: list[Member] = []
    while len(members) < count:
        index = len(members)
        member = _member(rng, index, t0, order)
        if member is None:
            continue
        history = member.history()
        offer = offer_at(history, order, t0)
        if (
            offer is None
            or offer.kind is not CheckinKind.POINT
            or offer_at(history, order, t0 + DELIVERY_MARGIN) != offer
        ):
            continue  # nothing due (the scheduler would have skipped this slot), or unstable
        if member.snoozed is not None:
            reflected = bool(history.reflections.get(member.snoozed))
            offer = Offer(
                CheckinKind.POINT,
                member.snoozed,
                PromptKind.REVISIT if reflected else PromptKind.FIRST,
            )
        member.offer = offer
        overdue = t0 - member.scheduled_at
        if overdue > LATE_AFTER:
            member.late = True
        elif overdue + DELIVERY_MARGIN <= LATE_AFTER:
            member.late = False
        members.append(member)
    return members


def _member(rng: random.Random, index: int, t0: datetime, order: list[str]) -> Member | None:
    zone = rng.choice(ZONES)
    late = rng.random() < 0.20
    scheduled = _slot(zone, t0, rng.randint(2, 10) if late else 0)
    if scheduled is None:
        return None
    tz = ZoneInfo(zone) if zone else UTC
    local = scheduled.astimezone(tz)
    cadence = rng.choices(list(Cadence), weights=(5, 3, 2))[0]
    step = timedelta(weeks=cadence.weeks)
    roll = rng.random()
    stage = "new" if roll < 0.15 else "first-pass" if roll < 0.50 else "revisit"
    user_id = FIRST_MEMBER_ID + index
    if stage == "new":
        year = scheduled - timedelta(days=rng.uniform(0.5, 6.5))
        touched = 0
    elif stage == "first-pass":
        touched = rng.randint(1, 5)
        year = scheduled - touched * step - timedelta(days=rng.uniform(0.5, 3))
    else:
        # Pick the revisit round that falls due now, and place the year around it.
        place, round_ = rng.randrange(len(order)), rng.choice((1, 1, 2))
        first_touch = t0 - rng.uniform(0.0, 0.9) * step - REVISIT_AFTER[round_ - 1]
        year = first_touch - place * step - timedelta(hours=rng.uniform(0, 30))
        touched = len(order)
    if year + timedelta(days=365) <= t0 + DELIVERY_MARGIN:
        return None  # the year would be over: a summary, not a check-in
    member = Member(
        user_id=user_id,
        zone=zone,
        cadence=cadence,
        weekday=local.weekday(),
        hour=local.hour,
        year_started_at=year,
        scheduled_at=scheduled,
        stage=stage,
        via_add_reflection=index % ADD_REFLECTION_EVERY == 0,
    )
    horizon = t0 - timedelta(hours=2)
    for number, point in enumerate(order[:touched]):
        at = year + number * step + timedelta(minutes=rng.uniform(0, 90))
        if at >= horizon:
            break
        _touch(rng, member, index, point, at, 0, horizon)
        if stage != "revisit":
            continue
        for round_, after in enumerate(REVISIT_AFTER, start=1):
            due = at + after
            # Rounds due before the member's last slot were offered then (and often answered);
            # one due since is what the pending check-in is for.
            if due > t0 - step:
                break
            _touch(rng, member, index, point, due, round_, horizon)
    if member.offers and rng.random() < 0.06:
        # Snoozed yesterday: the pending check-in brings that point back.
        snoozed = member.offers[-1][0]
        member.snoozed = snoozed
        member.offers.append((snoozed, scheduled - timedelta(days=1)))
    return member


def _touch(
    rng: random.Random,
    member: Member,
    index: int,
    point: str,
    at: datetime,
    round_: int,
    horizon: datetime,
) -> None:
    """A check-in offered `point` at `at` and/or the member reflected on it soon after."""
    offered = rng.random() < 0.85
    reflected = rng.random() < (0.8 if round_ == 0 else 0.6)
    if not offered and not reflected:
        offered = True
    if offered:
        member.offers.append((point, at))
    if reflected:
        written_at = min(at + timedelta(hours=rng.uniform(0.2, 40)), horizon)
        comfort = rng.choice((1, 2, 3, 3, 4, 4, 5, None))
        member.reflections.append(
            Written(point, written_at, _text(rng, index, point, round_), comfort)
        )


# --- the database ------------------------------------------------------------------------------


def member_rows(m: Member) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A member's user row (without its DM channel), check-in plan, and earlier check-ins."""
    user = {
        "id": m.user_id,
        "timezone": m.zone,
        "created_at": m.year_started_at - timedelta(days=1),
        "journey_started_at": m.year_started_at,
    }
    plan = {
        "user_id": m.user_id,
        "cadence": m.cadence.value,
        "weekday": m.weekday,
        "hour": m.hour,
        "status": "active",
        "year_started_at": m.year_started_at,
        "paused_until": None,
        "problem": None,
        "notice_pending": False,
        "last_delivered_at": max((at for _, at in m.offers), default=None),
        "created_at": m.year_started_at,
        "updated_at": m.year_started_at,
    }
    sent = [
        {
            "user_id": m.user_id,
            "kind": CheckinKind.POINT.value,
            "point": point,
            "prompt": None,
            "scheduled_at": at,
            "due_at": at,
            "sent_at": at,
            "message_id": random.getrandbits(62),
            "state": "done",
            "attempts": 1,
            "late": False,
        }
        for point, at in sorted(m.offers, key=lambda offer: offer[1])
    ]
    return user, plan, sent


def pending_row(m: Member) -> dict[str, Any]:
    """The check-in due now."""
    return {
        "user_id": m.user_id,
        "kind": CheckinKind.POINT.value,
        "point": m.snoozed,
        "prompt": None,
        "scheduled_at": m.scheduled_at,
        "due_at": m.scheduled_at,
        "state": "pending",
        "attempts": 0,
        "late": False,
    }


def reflection_rows(m: Member, cipher: TextCipher) -> list[dict[str, Any]]:
    rows = []
    first: dict[str, datetime] = {}
    for w in sorted(m.reflections, key=lambda w: w.at):
        kind = prompt_kind(first.get(w.point), w.at)
        first.setdefault(w.point, w.at)
        rows.append(
            {
                "user_id": m.user_id,
                "point": w.point,
                "kind": kind.value,
                "body": cipher.encrypt(w.text, owner_id=m.user_id),
                "comfort": w.comfort,
                "created_at": w.at,
            }
        )
    return rows


async def seed(
    url: str, cipher: TextCipher, members: Sequence[Member], channels: dict[str, int], t0: datetime
) -> dict[int, int]:
    """Load the members; returns each member's pending check-in id."""
    database = Database(url)
    try:
        await upgrade(database)
        users, plans, sent, pending, reflections = [], [], [], [], []
        for m in members:
            user, plan, earlier = member_rows(m)
            users.append({**user, "dm_channel_id": channels[str(m.user_id)]})
            plans.append(plan)
            sent += earlier
            pending.append(pending_row(m))
            if not m.via_add_reflection:
                reflections += reflection_rows(m, cipher)
        async with database.transaction() as session:
            await insert_rows(session, User, users)
            await insert_rows(session, CheckinPlan, plans)
            await insert_rows(session, Checkin, sent)
            await insert_rows(session, Reflection, reflections)
            await insert_rows(session, Checkin, pending)
        for m in members:  # one member in 100 writes through the project's own function
            if not m.via_add_reflection or not m.reflections:
                continue
            async with database.transaction() as session:
                for w in sorted(m.reflections, key=lambda w: w.at):
                    await add_reflection(
                        session,
                        cipher,
                        user_id=m.user_id,
                        point=w.point,
                        text=w.text,
                        comfort=w.comfort,
                        submission_key=None,
                        now=w.at,
                    )
        await analyze(database)
        async with database.read() as session:
            rows = await session.execute(
                select(Checkin.user_id, Checkin.id).where(Checkin.state == "pending")
            )
            return {user_id: checkin_id for user_id, checkin_id in rows}
    finally:
        await database.dispose()


async def check_database(
    url: str, members: Sequence[Member], ids: dict[int, int]
) -> tuple[list[str], dict[int, datetime | None]]:
    """Every seeded check-in done, with its message, and the member's next one scheduled.
    Also returns the check-ins not done, each with when it may be claimed again."""
    problems: list[str] = []
    undone: dict[int, datetime | None] = {}
    database = Database(url)
    try:
        async with database.read() as session:
            rows = (
                await session.execute(
                    select(
                        Checkin.id,
                        Checkin.user_id,
                        Checkin.state,
                        Checkin.message_id,
                        Checkin.late,
                        Checkin.point,
                        Checkin.prompt,
                        Checkin.lease_until,
                    ).where(Checkin.id.in_(list(ids.values())))
                )
            ).all()
            following = Counter(
                (
                    await session.scalars(
                        select(Checkin.user_id).where(
                            Checkin.state == "pending", Checkin.due_at > datetime.now(UTC)
                        )
                    )
                ).all()
            )
    finally:
        await database.dispose()
    by_user = {m.user_id: m for m in members}
    not_done = wrong = 0
    for checkin_id, user_id, state, message_id, _late, point, prompt, lease in rows:
        offer = by_user[user_id].offer
        assert offer is not None
        if state != "done" or message_id is None:
            not_done += 1
            undone[checkin_id] = lease
        elif point != offer.point or prompt != (offer.prompt and offer.prompt.value):
            wrong += 1
    if len(rows) != len(ids):
        problems.append(f"{len(ids) - len(rows)} seeded check-ins missing from the database")
    if not_done:
        problems.append(f"{not_done} check-ins not recorded as done with a message id")
    if wrong:
        problems.append(f"{wrong} check-ins recorded with another point or prompt")
    no_next = sum(1 for m in members if following[m.user_id] != 1)
    if no_next:
        problems.append(f"{no_next} members without exactly one future check-in scheduled")
    return problems, undone


def describe_member(m: Member) -> str:
    assert m.offer is not None and m.offer.prompt is not None
    overdue = (datetime.now(UTC) - m.scheduled_at).total_seconds() / 3600
    return (
        f"{m.stage} {m.offer.prompt.value} {m.offer.point}"
        f"{' snoozed' if m.snoozed else ''}, {m.zone or 'UTC'}, due {overdue:.1f} h ago"
    )


def expectations(
    members: Sequence[Member], ids: dict[int, int], content: Content
) -> dict[int, Expect]:
    expected: dict[int, Expect] = {}
    for m in members:
        offer = m.offer
        assert offer is not None and offer.point is not None
        heading = content.point(offer.point).heading
        title = ("Check-in" if offer.prompt is PromptKind.FIRST else "Revisit") + f" · {heading}"
        expected[m.user_id] = Expect(
            nonce=f"cr-ci-{ids[m.user_id]}",
            title=title[:256],
            late=m.late,
            words=m.earlier_words(),
            buttons=4,
        )
    return expected


async def run_checkins(context: Context, setup: Setup, members: Sequence[Member]) -> Result:
    """Every member's check-in delivered in one run, and checked."""
    count = len(members)
    # At a lifted limit the emulator's spec check (about 2.7 ms of its CPU per check-in DM:
    # jsonschema on embeds and buttons) would be what bounds the run on two cores; every body is
    # still checked, after the run and before its report (harness.jobs), each bad one a
    # violation that fails it. At Discord's pace it checks as the requests come.
    emulator = await start_emulator(
        context.children,
        context.http,
        count,
        setup.emulator_limit,
        defer_validation=not setup.paced,
    )
    channels = await emulator.get("/channels")
    seeded = time.perf_counter()
    ids = await seed(setup.url, TextCipher(parse_key(setup.key)), members, channels, context.t0)
    print(f"  {setup.name}: seeded {count:,} members in {time.perf_counter() - seeded:.1f} s")
    undone: dict[int, datetime | None] = {}

    async def check() -> list[str]:
        problems, found = await check_database(setup.url, members, ids)
        undone.clear()
        undone.update(found)
        return problems

    def after(result: Result, report: dict[str, Any]) -> list[str]:
        return sent_not_recorded(result, report, undone) if undone else []

    by_id = {m.user_id: m for m in members}
    expected = expectations(members, ids, context.content)
    due = Due(Checkin, ids, expected, check, lambda user_id: describe_member(by_id[user_id]), after)
    return await deliver(context, emulator, setup, count, due)


def sent_not_recorded(
    result: Result, report: dict[str, Any], undone: dict[int, datetime | None]
) -> list[str]:
    """Check-ins sent (the emulator has the nonce) but not recorded: whoever claims one again
    sends it again, and after Discord's nonce window (minutes) that is a second DM."""
    sent_nonces = {message.get("nonce") for mine in report["messages"].values() for message in mine}
    orphans = [cid for cid in undone if f"cr-ci-{cid}" in sent_nonces]
    result.errors["sent but not recorded"] = len(orphans)
    if not orphans:
        return []
    now = datetime.now(UTC)
    leases = [undone[cid] for cid in orphans]
    later = [lease for lease in leases if lease is not None and lease - now > NONCE_WINDOW]
    return [
        f"{len(orphans)} check-ins were sent but still pending when the run ended: "
        f"claimed again, they are sent again with the same nonce; {len(later)} of them "
        f"only after {NONCE_WINDOW.seconds // 60} min, when Discord no longer matches "
        "the nonce (a second DM)"
    ]
