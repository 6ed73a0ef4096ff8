"""The delivery of every timed job (DM check-ins, weekly posts), batch by batch:
claim with a lease (db.jobs), prepare, pace under Discord's limit (jobs.pace), send, record.

A job kind fills in the steps. Everything is read and rendered before the batch's share of
the pace starts, and recorded after it: a send that waited on the database would lose its turn,
and late sends would bunch up into a burst past another process's share.
"""

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Generic, TypeVar

from advice.clock import Clock
from cogs.core.jobs.pace import Pacer, job_pace, shared_pacer
from cogs.core.metrics import Metrics
from db import Database, StorageUnavailable
from db.jobs import claim_due, retry_later
from db.models import LeasedJob

log = logging.getLogger(__name__)

Job = TypeVar("Job", bound=LeasedJob)
Ready = TypeVar("Ready")  # a prepared job: what to send, rendered
Result = TypeVar("Result")  # what its requests did, judged when recording

# A job failing this often is given up on, so a bug that repeats never stalls its owner.
MAX_ATTEMPTS = 8
BATCH_SECONDS = 2
_UNSENT = object()  # a job whose request was never made (the pace could not be reserved)


@dataclass(frozen=True)
class JobSettings:
    """What delivering timed jobs needs of the bot: where they are kept, what time it is,
    how long a claim holds, and Discord's global request limit (shared by every process)."""

    database: Database
    clock: Clock
    lease: timedelta
    requests_per_second: float
    metrics: Metrics | None = None


class Outcome(StrEnum):
    """What became of a job whose requests were sent (what the metrics count)."""

    DELIVERED = "delivered"
    LATE = "late"  # delivered, marked late (the bot was down when it fell due)
    FAILED = "failed"  # refused or not reached: tried again later, or given up on
    UNREACHABLE = "unreachable"  # the recipient cannot be reached (closed DMs, channel gone)


DELIVERED = (Outcome.DELIVERED, Outcome.LATE)


class Dispatcher(ABC, Generic[Job, Ready, Result]):
    model: type[Job]

    def __init__(self, settings: JobSettings) -> None:
        self.database = settings.database
        self.clock = settings.clock
        self.lease = lease = settings.lease
        self.metrics = settings.metrics
        self.kind: str = getattr(self.model, "__tablename__", self.model.__name__)
        self.pace = job_pace(settings.requests_per_second)
        # A batch is about two seconds of sending: the next is claimed and prepared while it
        # goes out, and SQLite runs a batch's statements on the event loop, so a larger batch
        # stalls the sends longer (eight seconds' worth: gaps up to 150-250 ms at 50/s, two
        # seconds' 80-110). At most a quarter of the lease, so a live process never loses its
        # claim to another while it still works through it.
        seconds = min(BATCH_SECONDS, lease.total_seconds() / 4)
        self.batch = max(1, min(500, int(self.pace * seconds)))
        # A tick's first batch is smaller, so its first sends go out without waiting for
        # hundreds of jobs to be prepared.
        self.first_batch = max(1, self.batch // 4)
        # SQLite has one writer: a batch recording all at once would queue past the busy
        # timeout and fail ("database is locked"). One at a time costs a few ms each there.
        self._writes = asyncio.Semaphore(1 if self.database.is_sqlite else 8)
        # When the database drops out mid-batch: what was sent and is still to be recorded,
        # and what was claimed but never sent. Both are settled first thing when it returns,
        # so nothing sent goes out again (after its lease, with only Discord's nonce check
        # between the member and a copy) and nothing claimed waits out its lease.
        self._unrecorded: list[tuple[Job, Ready, Result]] = []
        self._unsent: list[Job] = []

    async def tick(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Deliver what is due, batch by batch; no new batch once `stopping()` says so.

        While a batch is sent, the next one is claimed and prepared and the one before is
        recorded, each in a constant number of statements (prepare_batch, record_batch), and
        the pace is reserved a second at a time as the requests go out (jobs.pace), so the
        sends never wait on the database and another process's share is never taken.

        StorageUnavailable ends the tick (the loop tries again soon); what the outage left
        halfway is kept here and settled by the first tick the database answers.
        """
        delivered = await self._settle_outage()
        pacer = shared_pacer(self.database, per_second=self.pace)
        recording: asyncio.Task[int] | None = None
        upcoming: asyncio.Task[list[tuple[Job, Ready]] | None] | None = None
        try:
            upcoming = asyncio.create_task(self._claim_and_prepare(pacer, first=True))
            while upcoming is not None:
                ready = await upcoming
                upcoming = None
                if ready is None:  # nothing left to claim
                    break
                if not stopping():  # claimed and prepared while this batch goes out
                    upcoming = asyncio.create_task(self._claim_and_prepare(pacer, first=False))
                elif not ready:
                    break
                results = await asyncio.gather(
                    *(self._send(job, each, pacer) for job, each in ready)
                )
                sent = [
                    (job, each, result)
                    for (job, each), result in zip(ready, results, strict=True)
                    if result is not _UNSENT
                ]
                self._unsent.extend(
                    job
                    for (job, _), result in zip(ready, results, strict=True)
                    if result is _UNSENT
                )
                if recording is not None:
                    delivered += await recording
                recording = asyncio.create_task(self._record_batch(sent))  # type: ignore[arg-type]
                if self._unsent:  # the pace could not be reserved: the database is away
                    raise StorageUnavailable()
                if upcoming is not None and stopping():
                    left = await upcoming
                    upcoming = None
                    self._unsent.extend(job for job, _ in left or [])
        finally:
            if upcoming is not None:  # claimed but never to be sent in this tick
                try:
                    left = await upcoming
                except Exception:  # its claims run out with their lease
                    left = None
                self._unsent.extend(job for job, _ in left or [])
            await pacer.close()
            if recording is not None:  # even when a claim failed: what was sent is recorded
                delivered += await recording
        if self._unsent:
            await self._hand_back()
        return delivered

    async def _claim_and_prepare(
        self, pacer: Pacer, *, first: bool
    ) -> list[tuple[Job, Ready]] | None:
        """The next batch, claimed and prepared: what is to be sent; None when nothing was due.

        Its requests are announced to the pacer at once, while the batch before it still goes
        out, so their slots are reserved ahead, not by its first send: that reservation would
        wait for the last batch's record (SQLite's one writer) and leave the pace idle."""
        jobs = await self._claim(first=first)
        if not jobs:
            return None
        prepared = await self._prepare_batch(jobs)
        ready = [(job, each) for job, each in zip(jobs, prepared, strict=True) if each is not None]
        pacer.expect(sum(self.requests(each) for _, each in ready))
        return ready

    async def _send(self, job: Job, ready: Ready, pacer: Pacer) -> Result | object:
        try:
            return await self.send(ready, pacer)
        except StorageUnavailable:  # its share of the pace could not be reserved: not sent
            return _UNSENT

    async def _settle_outage(self) -> int:
        """Record what was sent while the database was away, and hand back the claims it left
        unsent; how many of those were delivered. Raises StorageUnavailable while it is away."""
        delivered = recorded = 0
        while self._unrecorded:
            job, ready, result = self._unrecorded[0]
            outcome = await self._record(job, ready, result)
            self._unrecorded.pop(0)
            recorded += 1
            if outcome in DELIVERED:
                delivered += 1
        if recorded:
            log.info("%s: recorded %d sent while storage was unavailable", self.kind, recorded)
        if self._unsent:
            await self._hand_back()
        return delivered

    async def _hand_back(self) -> None:
        """Claims that were never sent are claimable again at once (unless another process
        took them over). Raises StorageUnavailable while the database is away."""
        now = self.clock.now()
        async with self.database.transaction() as session:
            for job in self._unsent:
                await retry_later(session, self.model, job, at=now)
        log.info("%s: %d claimed but never sent are due again", self.kind, len(self._unsent))
        self._unsent = []

    async def _record_batch(self, sent: list[tuple[Job, Ready, Result]]) -> int:
        """Record what a batch's requests did; how many jobs were delivered.

        record_batch takes what it can in one transaction; the rest (and all of them, should
        it fail with a bug) are recorded one by one."""
        outcomes: dict[int, Outcome | None] = {}
        if sent:
            try:
                outcomes = await self.record_batch([(each, result) for _, each, result in sent])
            except StorageUnavailable:
                self._unrecorded.extend(sent)
                log.warning(
                    "%s: %d sent but not recorded (storage unavailable); kept to record when it "
                    "returns",
                    self.kind,
                    len(self._unrecorded),
                )
                return 0
            except Exception:
                log.exception("%s: recording a batch failed; recording it job by job", self.kind)
                outcomes = {}
        if self.metrics is not None:
            for outcome in outcomes.values():
                if outcome is not None:
                    self.metrics.timed_job(self.kind, outcome)
        rest = [each for index, each in enumerate(sent) if index not in outcomes]
        recorded = await asyncio.gather(
            *(self._record_or_keep(job, each, result) for job, each, result in rest)
        )
        kept = sum(1 for each in recorded if each is None)
        if kept and self._unrecorded:
            log.warning(
                "%s: %d sent but not recorded (storage unavailable); kept to record when it "
                "returns",
                self.kind,
                len(self._unrecorded),
            )
        return sum(1 for each in [*outcomes.values(), *recorded] if each in DELIVERED)

    async def _record_or_keep(self, job: Job, ready: Ready, result: Result) -> Outcome | None:
        try:
            return await self._record(job, ready, result)
        except StorageUnavailable:
            self._unrecorded.append((job, ready, result))
            return None

    async def _claim(self, *, first: bool) -> list[Job]:
        limit = self.first_batch if first else self.batch
        async with self.database.transaction() as session:
            return await claim_due(
                session, self.model, now=self.clock.now(), lease=self.lease, limit=limit
            )

    async def _prepare_batch(self, jobs: list[Job]) -> list[Ready | None]:
        try:
            prepared = await self.prepare_batch(jobs)
        except StorageUnavailable:
            self._unsent.extend(jobs)
            return [None] * len(jobs)
        except Exception:
            log.exception("%s: preparing a batch failed; preparing it job by job", self.kind)
            prepared = await asyncio.gather(*(self._prepare(job) for job in jobs))
        ready: list[Ready | None] = []
        for job, each in zip(jobs, prepared, strict=True):
            if isinstance(each, StorageUnavailable):
                self._unsent.append(job)
                each = None
            elif isinstance(each, Exception):
                await self._failed_unexpectedly(job, each)
                each = None
            ready.append(each)
        return ready

    async def _prepare(self, job: Job) -> Ready | Exception | None:
        try:
            return await self.prepare(job)
        except Exception as error:
            return error

    async def _record(self, job: Job, ready: Ready, result: Result) -> Outcome | None:
        """Record one job's result (StorageUnavailable passes through); a bug in it must not
        cost the rest of the batch theirs, nor lose this one."""
        try:
            async with self._writes:
                outcome = await self.record(ready, result)
        except StorageUnavailable:
            raise
        except Exception:
            await self._failed_unexpectedly(job)
            return None
        if outcome is not None and self.metrics is not None:
            self.metrics.timed_job(self.kind, outcome)
        return outcome

    async def _failed_unexpectedly(self, job: Job, error: Exception | None = None) -> None:
        log.error(
            "%s %s: failed unexpectedly",
            type(job).__name__,
            job.id,
            exc_info=error if error is not None else True,
        )
        try:
            await self.failed_unexpectedly(job)
        except StorageUnavailable:  # its lease runs out, and it is tried again then
            log.warning("%s %s: could not be handed back (storage unavailable)", self.kind, job.id)

    @abstractmethod
    async def prepare(self, job: Job) -> Ready | None:
        """What to send now, or None when the job was settled without sending."""

    async def prepare_batch(self, jobs: list[Job]) -> list[Ready | Exception | None]:
        """`prepare` for a whole batch, in order: what to send, None, or the exception that
        job met (it is handed back: StorageUnavailable for another try soon, a bug through
        failed_unexpectedly). A job kind overrides it to read the batch in a few statements."""
        return list(await asyncio.gather(*(self._prepare(job) for job in jobs)))

    async def record_batch(self, results: list[tuple[Ready, Result]]) -> dict[int, Outcome | None]:
        """Record what it can of a batch at once (by index into `results`, the outcome as
        `record` gives it); the rest are recorded one by one with `record`. In one transaction:
        StorageUnavailable keeps them all to record when the database is back."""
        return {}

    def requests(self, ready: Ready) -> int:
        """How many requests sending it takes (its share of the pace)."""
        return 1

    @abstractmethod
    async def send(self, ready: Ready, pacer: Pacer) -> Result:
        """Only the requests, each after `pacer.wait()`; errors are caught into the result."""

    @abstractmethod
    async def record(self, ready: Ready, result: Result) -> Outcome | None:
        """Write what happened: its outcome, or None when there is nothing to count (another
        process took the job over meanwhile). Run again if StorageUnavailable interrupts it."""

    @abstractmethod
    async def failed_unexpectedly(self, job: Job) -> None:
        """Hand the job back for a later try (or give up on it) after a bug."""
