"""Prometheus' `/metrics` and a `/healthz` for operators, on the bot's own loop.

``PrometheusMetrics`` is the bot's ``metrics`` when METRICS_PORT is set (bot.py): one
registry that owns every metric the framework counts (cogs.core.metrics), and what describes
the present (the due backlog, the pool, the chart workers' memory, the gateway), read when
Prometheus scrapes. Imported only then: a bot nobody scrapes never loads it.

The endpoint binds 127.0.0.1 unless METRICS_HOST says otherwise; `/healthz` is 200 when the
gateway is connected and the database answers within a second, else 503 with the reasons in
the body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from cogs.core.jobs.loop import TimedLoop
from cogs.core.metrics import DEFAULT_HOST, UNKNOWN, InteractionOutcome, Metrics
from db import StorageUnavailable
from db.jobs import count_due
from db.models import LeasedJob

if TYPE_CHECKING:
    from cogs.core.bot import CrossroadsBot

log = logging.getLogger(__name__)

# A `_created` series beside every counter and histogram would double the scrape, for a start
# time Prometheus' text format has no use for (the process's own start time is exported).
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream

HEALTH_DATABASE_SECONDS = 1.0  # /healthz: the database must answer within this
LAG_EVERY_SECONDS = 0.5  # how often the event loop's lag is sampled
# Prometheus' text format; every Prometheus understands it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Discord allows three seconds for the first answer; a full answer past that is worth seeing.
ANSWER_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
RATE_LIMIT_SCOPES = frozenset({"user", "global", "shared"})


@dataclass
class _TimedJobs:
    model: type[LeasedJob]
    loop: TimedLoop


class PrometheusMetrics(Metrics):
    """Every metric of one bot, in its own registry."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.interactions = Counter(
            "crossroads_interactions",
            "Interactions handled, by kind (command, autocomplete, button, form), command or "
            "route, and outcome (answered, user_error, our_error, storage_unavailable)",
            ["kind", "name", "outcome"],
            registry=registry,
        )
        self.answer_seconds = Histogram(
            "crossroads_interaction_answer_seconds",
            "From receiving an interaction to the member's whole answer, errors included (the "
            "first response, which Discord wants within 3 s, comes at or before it)",
            ["kind"],
            buckets=ANSWER_BUCKETS,
            registry=registry,
        )
        self.timed_jobs = Counter(
            "crossroads_timed_jobs",
            "Timed jobs sent (checkins, weekly_posts), by outcome: delivered, late "
            "(delivered, marked late after downtime), failed (tried again later, or given "
            "up on), unreachable (closed DMs; a channel gone or permission lost)",
            ["kind", "outcome"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "crossroads_discord_rate_limited",
            "429 answers from Discord, by scope (user, global, shared; cloudflare when "
            "Discord's own headers are missing)",
            ["scope"],
            registry=registry,
        )
        self.loop_lag = Histogram(
            "crossroads_event_loop_lag_seconds",
            "How late the event loop ran a timer (sampled twice a second while served)",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        # Read at each scrape.
        self.jobs_due = Gauge(
            "crossroads_timed_jobs_due",
            "Timed jobs due now that nobody has claimed: the backlog (not those on their "
            "way, nor those held back by a retry's back-off, quiet hours or a pause)",
            ["kind"],
            registry=registry,
        )
        self.database_up = Gauge(
            "crossroads_database_up",
            "1 when the database answered this scrape within a second, else 0",
            registry=registry,
        )
        self.pool_in_use = Gauge(
            "crossroads_database_connections_in_use",
            "Database connections checked out of the pool",
            registry=registry,
        )
        self.pool_size = Gauge(
            "crossroads_database_pool_size",
            "Connections the pool keeps open (up to as many again may overflow)",
            registry=registry,
        )
        self.chart_memory = Gauge(
            "crossroads_chart_worker_resident_memory_bytes",
            "Resident memory of each chart worker process (from /proc)",
            ["worker"],
            registry=registry,
        )
        self.gateway = Gauge(
            "crossroads_gateway_connected",
            "1 while the shard's gateway connection is open",
            ["shard"],
            registry=registry,
        )
        self._timed: dict[str, _TimedJobs] = {}
        registry.register(_LoopCollector(self._timed))
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

    # --- counted as it happens -----------------------------------------------------------

    def interaction(
        self, kind: str, name: str, outcome: InteractionOutcome, seconds: float
    ) -> None:
        self.interactions.labels(kind, name, outcome.value).inc()
        self.answer_seconds.labels(kind).observe(seconds)

    def timed_job(self, kind: str, outcome: str) -> None:
        self.timed_jobs.labels(kind, outcome).inc()

    def watch_timed_jobs(self, kind: str, model: type[LeasedJob], loop: TimedLoop) -> None:
        self._timed[kind] = _TimedJobs(model, loop)
        for outcome in ("delivered", "late", "failed", "unreachable"):
            self.timed_jobs.labels(kind, outcome)  # zero from the start, so rate() works

    def unwatch_timed_jobs(self, kind: str) -> None:
        self._timed.pop(kind, None)

    def http_trace(self) -> aiohttp.TraceConfig:
        """discord.py's public hook on its HTTP session (REST and interaction answers): every
        429, whether discord.py waits it out or gives up."""
        trace = aiohttp.TraceConfig()

        async def on_request_end(
            _session: aiohttp.ClientSession,
            _context: Any,
            params: aiohttp.TraceRequestEndParams,
        ) -> None:
            if params.response.status == 429:
                self.rate_limited.labels(rate_limit_scope(params.response.headers)).inc()

        trace.on_request_end.append(on_request_end)
        return trace

    # --- read at each scrape -------------------------------------------------------------

    async def refresh(self, bot: CrossroadsBot) -> None:
        """Read what describes the present into the gauges."""
        now = bot.clock.now()
        try:
            async with bot.database.read(within=HEALTH_DATABASE_SECONDS) as session:
                due = {
                    kind: await count_due(session, timed.model, now=now)
                    for kind, timed in self._timed.items()
                }
        except StorageUnavailable:
            self.database_up.set(0)
            self.jobs_due.clear()  # unknown, not zero
        else:
            self.database_up.set(1)
            for kind, count in due.items():
                self.jobs_due.labels(kind).set(count)
        pool = bot.database.pool_use()
        if pool is not None:
            self.pool_in_use.set(pool.in_use)
            self.pool_size.set(pool.size)
        self.chart_memory.clear()
        for index, pid in enumerate(bot.charts.worker_pids()):
            rss = resident_memory(pid)
            if rss is not None:
                self.chart_memory.labels(str(index)).set(rss)
        self.gateway.clear()
        for shard_id, shard in bot.shards.items():
            self.gateway.labels(str(shard_id)).set(0 if shard.is_closed() else 1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _LoopCollector(Collector):
    """Each timed-job loop's failed ticks and last good one, read from the loop itself."""

    def __init__(self, timed: Mapping[str, _TimedJobs]) -> None:
        self._timed = timed

    def collect(self) -> Iterable[Metric]:
        failed = CounterMetricFamily(
            "crossroads_timed_job_ticks_failed",
            "Ticks of a timed-job loop that failed (storage unavailable, or a bug); the loop "
            "carries on",
            labels=["kind", "reason"],
        )
        last = GaugeMetricFamily(
            "crossroads_timed_job_last_success_timestamp_seconds",
            "When a timed-job loop last finished a tick (Unix time)",
            labels=["kind"],
        )
        for kind, timed in self._timed.items():
            loop = timed.loop
            failed.add_metric([kind, "storage"], loop.storage_failures)
            failed.add_metric([kind, "bug"], loop.failures - loop.storage_failures)
            if loop.last_success is not None:
                last.add_metric([kind], loop.last_success)
        yield failed
        yield last

    def describe(self) -> Iterable[Metric]:
        return []


def rate_limit_scope(headers: Mapping[str, str]) -> str:
    scope = headers.get("X-RateLimit-Scope", "")
    if scope in RATE_LIMIT_SCOPES:
        return scope
    if headers.get("X-RateLimit-Global"):
        return "global"
    return "cloudflare" if "Via" not in headers else UNKNOWN


PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_memory(pid: int) -> int | None:
    """A process's resident memory in bytes, from /proc (None when it is gone, or no Linux)."""
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


async def health(bot: CrossroadsBot) -> list[str]:
    """What keeps the bot from serving members now; empty when nothing does."""
    problems = []
    if bot.is_closed():
        problems.append("gateway: the bot is shutting down")
    elif not bot.shards:
        problems.append("gateway: not connected yet")
    else:
        closed = sorted(shard_id for shard_id, shard in bot.shards.items() if shard.is_closed())
        if closed:
            problems.append(f"gateway: shard {', '.join(map(str, closed))} not connected")
    try:
        await bot.database.ping(within=HEALTH_DATABASE_SECONDS)
    except StorageUnavailable as exc:
        cause = exc.__cause__
        why = (str(cause).strip().splitlines() or [""])[0] if cause else ""
        problems.append(
            f"database: no answer within {HEALTH_DATABASE_SECONDS:g} s"
            + (f" ({type(cause).__name__}: {why})" if cause else "")
        )
    return problems


class MetricsServer:
    """`/metrics` and `/healthz` over HTTP on the bot's own event loop."""

    def __init__(self, bot: CrossroadsBot, *, host: str = DEFAULT_HOST, port: int) -> None:
        if not isinstance(bot.metrics, PrometheusMetrics):
            raise TypeError("the bot counts nothing to serve: build it with PrometheusMetrics()")
        self.bot = bot
        self.metrics = bot.metrics
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._lag: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Listen; OSError when the address cannot be had (port taken, host not ours)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._health)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0:  # the tests ask for any free port
            self.port = int(runner.addresses[0][1])
        self._lag = asyncio.create_task(self._measure_lag(), name="metrics:event-loop-lag")
        log.info("metrics on http://%s:%d/metrics and /healthz", self.host, self.port)

    async def stop(self) -> None:
        if self._lag is not None:
            self._lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag
            self._lag = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _request: web.Request) -> web.Response:
        await self.metrics.refresh(self.bot)
        return web.Response(body=self.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})

    async def _health(self, _request: web.Request) -> web.Response:
        problems = await health(self.bot)
        if problems:
            return web.Response(status=503, text="\n".join(problems) + "\n")
        return web.Response(text="ok\n")

    async def _measure_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(LAG_EVERY_SECONDS)
            self.metrics.loop_lag.observe(max(0.0, loop.time() - started - LAG_EVERY_SECONDS))


@asynccontextmanager
async def serve_metrics(
    bot: CrossroadsBot, *, host: str = DEFAULT_HOST, port: int
) -> AsyncIterator[MetricsServer]:
    server = MetricsServer(bot, host=host, port=port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
