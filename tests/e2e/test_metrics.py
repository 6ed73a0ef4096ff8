"""Metrics and health, scraped over HTTP while the real bot serves members through the emulator.

In one process: the bot of the e2e world with its metrics endpoint on a free port, scraped as
Prometheus would after members used it (answered, refused, failed on our side, storage away),
check-ins went out (delivered, unreachable), Discord answered 429 and a chart worker started.
As an operator runs it: `python bot.py` with METRICS_PORT set, scraped while it serves; and
each bad metrics setting stops it with one line naming the setting.
"""

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cogs.core.prometheus import MetricsServer, serve_metrics
from db import Database
from db.jobs import count_due
from db.models import Checkin
from sandbox import Emulator
from tests.e2e.conftest import World, answer
from tests.e2e.test_checkins import MONDAY_18_BERLIN, start_berlin, tick
from tests.e2e.test_reflect import open_reflect
from tests.test_cli import ROOT, TOKEN, cli_env, run_cli

GONE = "postgresql+asyncpg://nobody@127.0.0.1:9/unreachable"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def scrape(server: MetricsServer | str) -> Samples:
    """Every sample of a scrape, by name and labels (Prometheus' own parser reads it)."""
    base = server if isinstance(server, str) else f"http://127.0.0.1:{server.port}"
    status, body = await get(f"{base}/metrics")
    assert status == 200, body
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def value(samples: Samples, metric: str, /, **labels: str) -> float:
    return samples.get((metric, frozenset(labels.items())), 0.0)


@pytest.fixture
async def metrics(world: World) -> AsyncIterator[MetricsServer]:
    async with serve_metrics(world.bot, port=0) as server:
        yield server


async def test_a_scrape_counts_what_members_and_timed_jobs_met(
    world: World, metrics: MetricsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Members: answered, refused (their own mistake), a bug, storage away.
    await answer(world, world.alice, "advice purpose")
    await answer(world, world.alice, "checkin pause", days=5)  # no check-ins to pause
    await world.emulator.autocomplete(world.alice, "timezone", focused="zone", value="berl")
    form = await open_reflect(world, world.alice, "money")
    await (await world.emulator.submit_modal(world.alice, form, {"text": "mine"})).message()
    page = await answer(world, world.alice, "advice purpose")
    forged = json.loads(json.dumps(page).replace("cr:reflect:purpose", "cr:no-such-route:1"))
    await (await world.emulator.click(world.alice, forged, "cr:no-such-route:1")).message()

    def broken(*_: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(sys.modules["cogs.help"], "help_embed", broken)
    await answer(world, world.bob, "help")
    healthy, world.bot.database = world.bot.database, Database(GONE)
    try:
        await answer(world, world.bob, "journal list")
        status, body = await get(f"http://127.0.0.1:{metrics.port}/healthz")
        assert status == 503 and body.startswith("database: no answer within 1 s"), body
    finally:
        await world.bot.database.dispose()
        world.bot.database = healthy

    # Timed jobs: one delivered, one to a member whose DMs are closed, one due and waiting.
    await start_berlin(world, world.alice)
    await start_berlin(world, world.bob)
    world.emulator.set_dms_open(world.bob, False)
    channel = world.emulator.dm_channel_id(world.alice)
    world.emulator.fail_next(
        "POST", f"^/channels/{channel}/messages$", status=429, retry_after=0.01
    )
    world.clock.set(MONDAY_18_BERLIN)
    assert await tick(world) == 1
    await start_berlin(world, world.moderator)
    world.clock.set(MONDAY_18_BERLIN + timedelta(weeks=1, hours=1))  # the moderator's is due
    world.bot.charts.start()
    await asyncio.sleep(0.6)  # the workers start, and the event loop's lag is sampled

    samples = await scrape(metrics)
    count = "crossroads_interactions_total"
    assert value(samples, count, kind="command", name="advice purpose", outcome="answered") == 2
    assert value(samples, count, kind="command", name="checkin pause", outcome="user_error") == 1
    assert value(samples, count, kind="autocomplete", name="timezone", outcome="answered") == 1
    assert value(samples, count, kind="form", name="reflect", outcome="answered") == 1
    assert value(samples, count, kind="button", name="unknown", outcome="user_error") == 1
    assert value(samples, count, kind="command", name="help", outcome="our_error") == 1
    assert (
        value(samples, count, kind="command", name="journal list", outcome="storage_unavailable")
        == 1
    )
    assert value(samples, "crossroads_interaction_answer_seconds_count", kind="command") >= 6
    assert value(samples, "crossroads_timed_jobs_total", kind="checkins", outcome="delivered") == 1
    assert (
        value(samples, "crossroads_timed_jobs_total", kind="checkins", outcome="unreachable") == 1
    )
    zero = (
        "crossroads_timed_jobs_total",
        frozenset({("kind", "weekly_posts"), ("outcome", "late")}),
    )
    assert samples[zero] == 0  # every outcome is there from the start, so rate() works
    async with world.database.read() as session:
        due = await count_due(session, Checkin, now=world.clock.now())
    assert due >= 1 and value(samples, "crossroads_timed_jobs_due", kind="checkins") == due
    assert value(samples, "crossroads_discord_rate_limited_total", scope="user") == 1
    assert value(samples, "crossroads_database_up") == 1
    assert value(samples, "crossroads_database_pool_size") >= 1
    assert ("crossroads_database_connections_in_use", frozenset()) in samples
    workers = [v for (name, _), v in samples.items() if name.startswith("crossroads_chart_worker")]
    assert workers and all(rss > 1_000_000 for rss in workers), workers
    assert value(samples, "crossroads_gateway_connected", shard="0") == 1
    assert value(samples, "crossroads_event_loop_lag_seconds_count") >= 1
    assert value(samples, "crossroads_timed_job_last_success_timestamp_seconds", kind="checkins")
    assert value(samples, "process_resident_memory_bytes") > 0
    assert await get(f"http://127.0.0.1:{metrics.port}/healthz") == (200, "ok\n")


async def test_health_says_why_the_gateway_is_not_connected(world: World) -> None:
    async with serve_metrics(world.bot, port=0) as server:
        await world.bot.close()
        status, body = await get(f"http://127.0.0.1:{server.port}/healthz")
    assert status == 503 and body == "gateway: the bot is shutting down\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_python_bot_py_serves_metrics_and_health_while_it_runs(tmp_path: Path) -> None:
    """The real entry point with METRICS_PORT: healthy once connected, counting as it serves."""
    emulator = Emulator()
    await emulator.start()
    guild = emulator.add_guild()
    channel = emulator.add_text_channel(guild)
    member = emulator.add_user("operator")
    emulator.add_member(guild, member)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "bot.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bot.py"),
        cwd=tmp_path,
        env=cli_env(
            tmp_path,
            DISCORD_TOKEN=TOKEN,
            DISCORD_EMULATOR_URL=emulator.api_base.removesuffix("/api/v10"),
            METRICS_PORT=str(port),
        ),
        stdout=log,
        stderr=log,
    )
    try:
        await emulator.wait_until_ready(timeout=30)
        health: tuple[int, Any] = (0, "")
        for _ in range(100):  # real time: the process becomes ready on its own
            try:
                health = await get(f"{base}/healthz")
            except aiohttp.ClientError:
                health = (0, "not listening yet")
            if health[0] == 200:
                break
            await asyncio.sleep(0.1)
        assert health == (200, "ok\n")
        ix = await emulator.slash(member, "advice purpose", guild_id=guild, channel_id=channel)
        await ix.message()
        await asyncio.sleep(0.1)  # the count follows the answer
        samples = await scrape(base)
        assert (
            value(
                samples,
                "crossroads_interactions_total",
                kind="command",
                name="advice purpose",
                outcome="answered",
            )
            == 1
        )
        assert value(samples, "crossroads_gateway_connected", shard="0") == 1
        assert value(samples, "crossroads_database_up") == 1
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 10)
        await emulator.stop()
    logs = (tmp_path / "bot.log").read_text()
    assert process.returncode == 0 and "Traceback" not in logs, logs[-3000:]
    assert f"metrics on http://127.0.0.1:{port}/metrics" in logs


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"METRICS_PORT": "nine"}, "METRICS_PORT is invalid"),
        ({"METRICS_PORT": "70000"}, "METRICS_PORT is invalid"),
        ({"METRICS_PORT": "taken"}, "METRICS_PORT: cannot serve metrics on 127.0.0.1:"),
        ({"METRICS_HOST": "192.0.2.1"}, "METRICS_HOST: cannot serve metrics on 192.0.2.1:"),
    ],
)
async def test_bad_metrics_settings_are_one_line_naming_the_setting(
    tmp_path: Path, settings: dict[str, str], names: str
) -> None:
    """Checked before the bot logs in (no Discord, no emulator needed)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        settings = {"METRICS_PORT": port, **settings}
        if settings["METRICS_PORT"] == "taken":
            settings["METRICS_PORT"] = port
        elif "METRICS_HOST" in settings:
            settings["METRICS_PORT"] = str(free_port())
        code, _, err = await run_cli(tmp_path, "run", DISCORD_TOKEN=TOKEN, **settings)
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and last.startswith(f"crossroads: {names}"), err
