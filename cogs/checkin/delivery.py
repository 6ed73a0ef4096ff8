"""Delivering due check-ins: the shared dispatcher's steps (cogs.core.jobs.dispatcher) for DMs.

Each check-in is claimed with a lease (db.jobs) and sent with a nonce derived from its id,
with enforce_nonce: if a process dies after Discord accepted the message but before it was
recorded, whoever takes the claim over sends the same nonce, and Discord hands back the first
message instead of a second. Sending happens outside any transaction.
"""

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
from cogs.checkin.dm import UNREACHABLE_PROBLEM, dm_channel, open_dm, refused
from cogs.checkin.notices import Notices
from cogs.core.bot import CrossroadsBot
from cogs.core.jobs.cog import BotDispatcher
from cogs.core.jobs.dispatcher import MAX_ATTEMPTS
from cogs.core.jobs.pace import Pacer, backoff
from db import checkins as store
from db.checkins import PlanStatus
from db.jobs import JobState, finish
from db.journal import first_and_latest
from db.models import Checkin
from db.progress import progress_data

log = logging.getLogger(__name__)

RETRY_AFTER_BUG = timedelta(minutes=30)


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
        """What to send, or None when nothing goes out now (stopped, paused, quiet hours,
        superseded, nothing due)."""
        now = self.bot.clock.now()
        async with self.bot.database.read() as session:
            member = await store.recipient(session, job)
            superseded = await store.is_superseded(session, job, now=now)
        plan = member.plan
        running = (PlanStatus.ACTIVE, PlanStatus.PAUSED)
        if plan is None or member.history is None or plan.status not in running or superseded:
            async with self.bot.database.transaction() as session:
                await finish(session, Checkin, job, JobState.CANCELLED)
            return None
        rule = store.rule_of(plan, member.timezone)
        if plan.paused_until is not None and now < plan.paused_until:
            # Only a zone change can bring one forward into a pause; it waits it out.
            after_pause = first_slot_from(rule, job.scheduled_at, not_before=plan.paused_until)
            async with self.bot.database.transaction() as session:
                await store.hold(session, job, until=after_pause)
            return None
        if quiet(rule.tz, now):  # only an overdue check-in can get here: it waits for 08:00
            async with self.bot.database.transaction() as session:
                await store.hold(session, job, until=out_of_quiet_hours(rule.tz, now))
            return None
        offer = self._offer(job, member.history, now)
        if offer is None:
            async with self.bot.database.transaction() as session:
                await store.record_nothing_to_send(session, job, order=self.order, now=now)
            return None
        # After downtime it stands for the most recent slot missed, not the first.
        stands_for = latest_slot(rule, job.scheduled_at, until=now)
        late = is_late(stands_for, now)
        message = await self._message(job, offer, late_since=stands_for if late else None, now=now)
        return Outgoing(job, offer, message, member.dm_channel_id, late)

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
        except Exception as error:  # judged in _record, where the database is at hand
            sent.error = error
        return sent

    async def record(self, outgoing: Outgoing, sent: Sent) -> bool:
        job = outgoing.job
        if sent.opened_channel is not None:
            async with self.bot.database.transaction() as session:
                await store.remember_dm_channel(
                    session, user_id=job.user_id, channel_id=sent.opened_channel
                )
        if sent.message_id is not None:
            return await self._delivered(outgoing, sent.message_id)
        if isinstance(sent.error, discord.RateLimited):
            await self._retry(job, "Discord asked us to slow down.")
        elif isinstance(sent.error, discord.HTTPException):
            await self._failed(job, sent.error, stale_channel=outgoing.channel_id is not None)
        elif isinstance(sent.error, aiohttp.ClientError | OSError | TimeoutError):
            await self._retry(job, f"Discord could not be reached ({type(sent.error).__name__}).")
        elif sent.error is not None:
            raise sent.error  # a bug: failed_unexpectedly hands it back for later
        return False

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

    async def _message(
        self, job: Checkin, offer: Offer, *, late_since: datetime | None, now: datetime
    ) -> dict[str, Any]:
        content = self.bot.content
        if offer == SUMMARY:
            return await self._summary(job.user_id, now)
        if offer.point is None or offer.prompt is None:  # advice.checkins never makes one
            raise ValueError(f"a check-in offer that is neither a point nor the summary: {offer}")
        point = content.point(offer.point)
        earlier = []
        if offer.prompt is PromptKind.REVISIT:
            async with self.bot.database.read() as session:
                earlier = await first_and_latest(
                    session, self.bot.cipher, user_id=job.user_id, point=point.slug
                )
        embed = render.checkin_embed(
            content,
            point,
            offer.prompt,
            earlier=earlier,
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
        except Exception:
            log.exception("check-in %s was sent but not fully recorded", outgoing.job.id)
            async with self.bot.database.transaction() as session:
                await store.record_sent_only(
                    session, outgoing.job, outgoing.offer, message_id, now=now
                )
            return True

    async def _failed(
        self, job: Checkin, error: discord.HTTPException, *, stale_channel: bool
    ) -> None:
        now = self.bot.clock.now()
        if refused(error):
            log.info("check-in %s: member %s does not accept DMs", job.id, job.user_id)
            async with self.bot.database.transaction() as session:
                await store.record_unreachable_checkin(
                    session, job, problem=UNREACHABLE_PROBLEM, now=now
                )
            self.notices.add(job.user_id)
            return
        if isinstance(error, discord.NotFound) and stale_channel:
            # The kept DM channel is gone: forget it and open a fresh one on the next try.
            async with self.bot.database.transaction() as session:
                await store.remember_dm_channel(session, user_id=job.user_id, channel_id=None)
            await self._retry(job, "Discord lost our DM channel; it was reopened.")
            return
        if error.status >= 500 or error.status in (408, 429):
            # A 429 reaches here only when discord.py gave up waiting (or Cloudflare said so).
            await self._retry(job, f"Discord could not take it just now ({error.status}).")
            return
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
