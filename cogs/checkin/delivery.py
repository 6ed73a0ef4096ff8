"""Delivering due check-ins: the shared dispatcher's steps (cogs.core.jobs.dispatcher) for DMs.

Each check-in is claimed with a lease (db.jobs) and sent with a nonce derived from its id,
with enforce_nonce: if a process dies after Discord accepted the message but before it was
recorded, whoever takes the claim over sends the same nonce, and Discord hands back the first
message instead of a second. Sending happens outside any transaction.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import discord

from advice.checkins import SUMMARY, CheckinKind, Offer, YearHistory, offer_at
from advice.journey import PromptKind
from advice.schedule import first_slot_from, is_late, latest_slot, out_of_quiet_hours, quiet
from cogs.checkin import render
from cogs.checkin.dm import (
    UNREACHABLE_PROBLEM,
    dm_channel,
    open_dm,
    refused,
)
from cogs.checkin.notices import Notices
from cogs.core.bot import CrossroadsBot
from cogs.core.jobs.cog import BotDispatcher
from cogs.core.jobs.dispatcher import MAX_ATTEMPTS, Outcome
from cogs.core.jobs.pace import Pacer, backoff
from cogs.core.ratelimits import release_channel_bucket
from db import StorageUnavailable
from db import checkins as store
from db.checkins import PlanStatus
from db.jobs import JobState, finish
from db.journal import Entry
from db.models import Checkin
from db.progress import progress_data

log = logging.getLogger(__name__)

RETRY_AFTER_BUG = timedelta(minutes=30)
RENDER_BETWEEN_YIELDS = 16  # check-ins rendered between two turns of the event loop
_LATER = object()


def nonce_for(checkin_id: int) -> str:
    """Deterministic per check-in and within Discord's 25 characters."""
    return f"cr-ci-{checkin_id}"


@dataclass
class Outgoing:
    """A check-in ready to send: everything read and rendered before its turn comes."""

    job: Checkin
    offer: Offer
    message: dict[str, Any]
    channel_id: int | None  # None: the member's DM channel must be opened first
    late: bool


@dataclass
class Sent:
    """What the requests for one check-in did."""

    message_id: int | None = None
    opened_channel: int | None = None  # a DM channel opened on the way, to remember
    error: Exception | None = None


@dataclass
class _Send:
    """A check-in that goes out now, once rendered."""

    job: Checkin
    offer: Offer
    late_since: datetime | None
    channel_id: int | None
    late: bool


@dataclass
class _Settle:
    """A check-in that is not sent now: cancelled, held until `until`, or nothing to send."""

    job: Checkin
    how: str  # "cancel", "hold" or "nothing"
    until: datetime | None = None


_Plan = _Send | _Settle


class Delivery(BotDispatcher[Checkin, Outgoing, Sent]):
    """Every due check-in, in paced batches (cogs.core.jobs.dispatcher), until none is left."""

    model = Checkin

    def __init__(self, bot: CrossroadsBot, notices: Notices) -> None:
        super().__init__(bot)
        self.notices = notices

    @property
    def order(self) -> list[str]:
        return list(self.bot.content.slugs)

    def requests(self, ready: Outgoing) -> int:
        return 1 if ready.channel_id is not None else 2  # the DM channel is opened first

    async def failed_unexpectedly(self, job: Checkin) -> None:
        now = self.bot.clock.now()
        give_up = job.attempts >= MAX_ATTEMPTS
        async with self.bot.database.transaction() as session:
            await store.record_failed_attempt(
                session,
                job,
                problem="Something went wrong on our side while sending a check-in; "
                + ("the next one is scheduled as usual." if give_up else "it will be retried."),
                retry_at=None if give_up else now + RETRY_AFTER_BUG,
                order=self.order,
                now=now,
            )

    async def prepare(self, job: Checkin) -> Outgoing | None:
        [prepared] = await self.prepare_batch([job])
        if isinstance(prepared, Exception):
            raise prepared
        return prepared

    async def prepare_batch(self, jobs: list[Checkin]) -> list[Outgoing | Exception | None]:
        """What to send for each, or None when nothing goes out now (stopped, paused, quiet
        hours, superseded, nothing due). The whole batch is read in a constant number of
        statements: its members, plans, year histories and DM channels, which of its check-ins
        are superseded, then the earlier words its revisits show."""
        now = self.bot.clock.now()
        async with self.bot.database.read() as session:
            members = await store.recipients(session, jobs)
            superseded = await store.superseded(session, jobs, now=now)
        plans: list[_Plan | Exception] = []
        for job in jobs:
            try:
                plans.append(self._plan(job, members[job.user_id], job.id in superseded, now))
            except Exception as error:  # a bug costs this job alone
                plans.append(error)
        wanted = sorted(
            {
                (each.job.user_id, each.offer.point)
                for each in plans
                if isinstance(each, _Send)
                and each.offer != SUMMARY
                and each.offer.point is not None
                and each.offer.prompt is PromptKind.REVISIT
            }
        )
        earlier: dict[tuple[int, str], list[Entry]] = {}
        if wanted:
            async with self.bot.database.read() as session:
                earlier = await store.first_and_latest_many(session, self.bot.cipher, wanted)
        # Rendered one by one, giving the event loop back every few: the batch before this one
        # is being sent meanwhile, and its requests must not wait for a whole batch's render.
        done: list[Outgoing | Exception | None] = []
        for index, each in enumerate(plans):
            if index % RENDER_BETWEEN_YIELDS == 0:
                await asyncio.sleep(0)
            done.append(self._render(each, earlier))
        later = [
            (index, plan)
            for index, (plan, rendered) in enumerate(zip(plans, done, strict=True))
            if rendered is _LATER and not isinstance(plan, Exception)
        ]
        settled = await asyncio.gather(*(self._carry_out(plan, now) for _, plan in later))
        for (index, _), outcome in zip(later, settled, strict=True):
            done[index] = outcome
        return done

    def _render(
        self, plan: "_Plan | Exception", earlier: dict[tuple[int, str], list[Entry]]
    ) -> Any:
        """The message of a check-in that goes out now; _LATER for what takes the database
        (a year's summary, a check-in settled without sending)."""
        if isinstance(plan, Exception):
            return plan
        if not isinstance(plan, _Send) or plan.offer == SUMMARY:
            return _LATER
        try:
            job, offer = plan.job, plan.offer
            words = earlier.get((job.user_id, offer.point or ""), [])
            message = self._message(job, offer, earlier=words, late_since=plan.late_since)
        except Exception as error:
            return error
        return Outgoing(job, offer, message, plan.channel_id, plan.late)

    def _plan(
        self, job: Checkin, member: store.Recipient, superseded: bool, now: datetime
    ) -> "_Plan":
        plan = member.plan
        running = (PlanStatus.ACTIVE, PlanStatus.PAUSED)
        if plan is None or member.history is None or plan.status not in running or superseded:
            return _Settle(job, "cancel")
        rule = store.rule_of(plan, member.timezone)
        if plan.paused_until is not None and now < plan.paused_until:
            # Only a zone change can bring one forward into a pause; it waits it out.
            after_pause = first_slot_from(rule, job.scheduled_at, not_before=plan.paused_until)
            return _Settle(job, "hold", after_pause)
        if quiet(rule.tz, now):  # only an overdue check-in can get here: it waits for 08:00
            return _Settle(job, "hold", out_of_quiet_hours(rule.tz, now))
        offer = self._offer(job, member.history, now)
        if offer is None:
            return _Settle(job, "nothing")
        # After downtime it stands for the most recent slot missed, not the first.
        stands_for = latest_slot(rule, job.scheduled_at, until=now)
        late = is_late(stands_for, now)
        return _Send(job, offer, stands_for if late else None, member.dm_channel_id, late)

    async def _carry_out(self, plan: "_Plan", now: datetime) -> Outgoing | Exception | None:
        try:
            if isinstance(plan, _Send):  # a year's summary
                message = await self._summary(plan.job.user_id, now)
                return Outgoing(plan.job, plan.offer, message, plan.channel_id, plan.late)
            await self._settle(plan, now)
        except Exception as error:
            return error
        return None

    async def _settle(self, plan: "_Settle", now: datetime) -> None:
        job = plan.job
        async with self.bot.database.transaction() as session:
            if plan.how == "cancel":
                await finish(session, Checkin, job, JobState.CANCELLED)
            elif plan.how == "hold" and plan.until is not None:
                await store.hold(session, job, until=plan.until)
            else:
                await store.record_nothing_to_send(session, job, order=self.order, now=now)

    async def send(self, outgoing: Outgoing, pacer: Pacer) -> Sent:
        """Only the requests, at their paced times; what happened is recorded afterwards."""
        sent = Sent()
        try:
            channel_id = outgoing.channel_id
            if channel_id is None:
                await pacer.wait()
                channel_id = sent.opened_channel = await open_dm(self.bot, outgoing.job.user_id)
            await pacer.wait()
            message = await dm_channel(self.bot, channel_id).send(
                nonce=nonce_for(outgoing.job.id), **outgoing.message
            )
            sent.message_id = message.id
            # Its next message is a week away: discord.py need not keep its bucket.
            release_channel_bucket(self.bot.http, channel_id)
        except StorageUnavailable:
            raise  # the pace could not be reserved: not sent, handed back
        except Exception as error:  # judged in _record, where the database is at hand
            sent.error = error
        return sent

    async def record_batch(self, results: list[tuple[Outgoing, Sent]]) -> dict[int, Outcome | None]:
        """The batch's deliveries in one transaction (db.checkins.record_delivered_many); the
        rest (failures, a member's second check-in) are recorded one by one."""
        now = self.bot.clock.now()
        chosen: dict[int, int] = {}  # member -> index
        for index, (outgoing, sent) in enumerate(results):
            if sent.message_id is not None and sent.error is None:
                chosen.setdefault(outgoing.job.user_id, index)
        if not chosen:
            return {}
        delivered = [
            store.Delivered(
                results[index][0].job,
                results[index][0].offer,
                results[index][1].message_id or 0,
                results[index][0].late,
                results[index][1].opened_channel,
            )
            for index in chosen.values()
        ]
        async with self.bot.database.transaction() as session:
            recorded = await store.record_delivered_many(
                session, delivered, order=self.order, now=now
            )
        outcomes: dict[int, Outcome | None] = {}
        for index in chosen.values():
            outgoing = results[index][0]
            if outgoing.job.id not in recorded:
                outcomes[index] = None  # another process took it over meanwhile, and counts it
            else:
                outcomes[index] = Outcome.LATE if outgoing.late else Outcome.DELIVERED
        return outcomes

    async def record(self, outgoing: Outgoing, sent: Sent) -> Outcome | None:
        job = outgoing.job
        if sent.opened_channel is not None:
            async with self.bot.database.transaction() as session:
                await store.remember_dm_channel(
                    session, user_id=job.user_id, channel_id=sent.opened_channel
                )
        if sent.message_id is not None:
            if not await self._delivered(outgoing, sent.message_id):
                return None  # another process took it over meanwhile, and counts it
            return Outcome.LATE if outgoing.late else Outcome.DELIVERED
        if isinstance(sent.error, discord.RateLimited):
            await self._retry(job, "Discord asked us to slow down.")
        elif isinstance(sent.error, discord.HTTPException):
            return await self._failed(
                job, sent.error, stale_channel=outgoing.channel_id is not None
            )
        elif isinstance(sent.error, aiohttp.ClientError | OSError | TimeoutError):
            await self._retry(job, f"Discord could not be reached ({type(sent.error).__name__}).")
        elif sent.error is not None:
            raise sent.error  # a bug: failed_unexpectedly hands it back for later
        return Outcome.FAILED

    def _offer(self, job: Checkin, history: YearHistory, now: datetime) -> Offer | None:
        if job.point is not None and job.kind == CheckinKind.POINT:  # a snoozed point returns
            reflected = bool(history.reflections.get(job.point))
            if job.point in self.order:
                return Offer(
                    CheckinKind.POINT,
                    job.point,
                    PromptKind.REVISIT if reflected else PromptKind.FIRST,
                )
        return offer_at(history, self.order, now)

    def _message(
        self, job: Checkin, offer: Offer, *, earlier: list[Entry], late_since: datetime | None
    ) -> dict[str, Any]:
        content = self.bot.content
        if offer.point is None or offer.prompt is None:  # advice.checkins never makes one
            raise ValueError(f"a check-in offer that is neither a point nor the summary: {offer}")
        point = content.point(offer.point)
        embed = render.checkin_embed(
            content,
            point,
            offer.prompt,
            earlier=earlier if offer.prompt is PromptKind.REVISIT else [],
            late_since=late_since,
        )
        return {"embed": embed, "view": render.checkin_view(job.id)}

    async def _summary(self, user_id: int, now: datetime) -> dict[str, Any]:
        """The year's summary: embeds within Discord's limits, the chart, and the texts in
        full as a Markdown file."""
        async with self.bot.database.read() as session:
            data = await progress_data(
                session, self.bot.cipher, user_id=user_id, every_point=True, reasons=True
            )
        content = self.bot.content
        chart = await self.bot.charts.chart(data, content, member=user_id)
        embeds = render.summary_embeds(content, data, now=now, chart=chart)
        files = [*([chart.file()] if chart else []), render.year_file(content, data, now=now)]
        return {"embeds": embeds, "files": files}

    async def _delivered(self, outgoing: Outgoing, message_id: int) -> bool:
        """Record a check-in Discord accepted. If that fails, record only that it was sent:
        a check-in left pending would be sent again after its lease, past the nonce window."""
        now = self.bot.clock.now()
        try:
            async with self.bot.database.transaction() as session:
                return await store.record_delivered(
                    session,
                    outgoing.job,
                    outgoing.offer,
                    message_id=message_id,
                    late=outgoing.late,
                    order=self.order,
                    now=now,
                )
        except StorageUnavailable:
            raise  # the dispatcher records it again once the database is back
        except Exception:
            log.exception("check-in %s was sent but not fully recorded", outgoing.job.id)
            async with self.bot.database.transaction() as session:
                await store.record_sent_only(
                    session, outgoing.job, outgoing.offer, message_id, now=now
                )
            return True

    async def _failed(
        self, job: Checkin, error: discord.HTTPException, *, stale_channel: bool
    ) -> Outcome:
        now = self.bot.clock.now()
        if refused(error):
            log.info("check-in %s: member %s does not accept DMs", job.id, job.user_id)
            async with self.bot.database.transaction() as session:
                await store.record_unreachable_checkin(
                    session, job, problem=UNREACHABLE_PROBLEM, now=now
                )
            self.notices.add(job.user_id)
            return Outcome.UNREACHABLE
        if isinstance(error, discord.NotFound) and stale_channel:
            # The kept DM channel is gone: forget it and open a fresh one on the next try.
            async with self.bot.database.transaction() as session:
                await store.remember_dm_channel(session, user_id=job.user_id, channel_id=None)
            await self._retry(job, "Discord lost our DM channel; it was reopened.")
            return Outcome.FAILED
        if error.status >= 500 or error.status in (408, 429):
            # A 429 reaches here only when discord.py gave up waiting (or Cloudflare said so).
            await self._retry(job, f"Discord could not take it just now ({error.status}).")
            return Outcome.FAILED
        # Anything else is a request Discord will refuse every time: a bug, so no retry storm.
        log.error("check-in %s: Discord refused it: %s %s", job.id, error.status, error.text)
        async with self.bot.database.transaction() as session:
            await store.record_failed_attempt(
                session,
                job,
                problem="A check-in could not be sent (Discord refused it); the next one is "
                "scheduled as usual.",
                retry_at=None,
                order=self.order,
                now=now,
            )
        return Outcome.FAILED

    async def _retry(self, job: Checkin, problem: str) -> None:
        now = self.bot.clock.now()
        give_up = job.attempts >= MAX_ATTEMPTS
        log.warning(
            "check-in %s: attempt %d failed (%s)%s",
            job.id,
            job.attempts,
            problem,
            "; giving up on it" if give_up else "",
        )
        async with self.bot.database.transaction() as session:
            await store.record_failed_attempt(
                session,
                job,
                problem=problem,
                retry_at=None if give_up else now + backoff(job.attempts),
                order=self.order,
                now=now,
            )
