"""Charts render in a pool of small worker processes; the bot's own process never loads the
drawing library (Pillow), and a worker loads nothing of the bot's but the chart."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cogs.core.charts.pool import (
    RENDER_TIMEOUT_S,
    WORKER_COMMAND,
    ChartFailed,
    ChartRenderer,
    ChartUnavailable,
    pool_size,
)
from cogs.core.charts.samples import Journey, LeaningSample, Mark
from cogs.core.charts.worker import FRAME, PNG, READY, TAKEN, encode_request

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AT = datetime(2026, 3, 1, tzinfo=UTC)
POINTS = [("purpose", "Know why you want it"), ("money", "Less money, longer horizon")]
# What a worker must never load: the bot, Discord, the database, the cogs beyond the chart.
HEAVY = ("bot", "discord", "sqlalchemy", "aiosqlite", "asyncpg", "alembic", "db", "advice")
CHART_MODULES = {
    "cogs",
    "cogs.core",
    "cogs.core.charts",
    "cogs.core.charts.samples",
    "cogs.core.charts.drawing",
}
# What the drawing library is: loaded in workers, never in the bot.
DRAWING = ("PIL", "matplotlib", "numpy")


def chart(rating: int | None = 4, *, leaning: int | None = None, zone: str = "UTC") -> Journey:
    leanings = [] if leaning is None else [LeaningSample(AT, leaning)]
    return Journey(
        POINTS, [Mark("purpose", AT, rating)], leanings, AT, AT + timedelta(days=30), zone
    )


async def until(condition: Callable[[], bool]) -> None:
    """Real processes take real time: poll briefly, give up after 30 s."""
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
async def renderer() -> AsyncIterator[ChartRenderer]:
    charts = ChartRenderer(size=1)
    yield charts
    await charts.close()


def test_the_pool_has_a_worker_per_usable_cpu() -> None:
    assert 1 <= pool_size() <= min(len(os.sched_getaffinity(0)), 4)
    assert ChartRenderer(size=3).size == 3


async def test_renders_a_png_in_another_process(renderer: ChartRenderer) -> None:
    png = await renderer.render(chart(leaning=1, zone="Asia/Kolkata"))
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1000
    assert renderer.drawn == 1
    [worker] = renderer.worker_pids()
    assert worker != os.getpid()
    # Drawing yields to the bot when CPUs are short.
    assert os.getpriority(os.PRIO_PROCESS, worker) > os.getpriority(os.PRIO_PROCESS, 0)


def test_the_worker_imports_only_what_it_draws_with(tmp_path: Path) -> None:
    """The real entry module, one chart, and -X importtime listing every module it loaded."""
    request = encode_request(chart(None, leaning=-1, zone="Europe/Paris"))
    result = subprocess.run(
        [WORKER_COMMAND[0], "-X", "importtime", *WORKER_COMMAND[1:]],
        cwd=ROOT,
        input=FRAME.pack(len(request)) + request,
        capture_output=True,
        check=True,
        timeout=120,
    )
    replies, out = [], result.stdout
    while out:
        (length,) = FRAME.unpack(out[: FRAME.size])
        replies.append(out[FRAME.size : FRAME.size + length])
        out = out[FRAME.size + length :]
    assert [reply[:1] for reply in replies] == [READY, TAKEN, PNG], result.stderr.decode()[-2000:]
    assert replies[2][1:].startswith(PNG_SIGNATURE)
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.decode().splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "PIL.ImageDraw" in imported  # the listing does see what it drew with
    assert not {name for name in imported if name.split(".")[0] in ("matplotlib", "numpy")}
    heavy = {name for name in imported if name.split(".")[0] in HEAVY}
    assert heavy == set()
    ours = {name for name in imported if name.split(".")[0] == "cogs"}
    assert ours <= CHART_MODULES


def test_the_bot_never_imports_the_drawing_library() -> None:
    """The bot with every feature loaded, and a chart's words described: no Pillow."""
    probe = (
        "import sys, importlib, bot, cogs.core.charts.service as s; "
        "from cogs import EXTENSIONS; "
        "[importlib.import_module(name) for name in EXTENSIONS]; "
        "from advice.content import load_content; from db.progress import ProgressData; "
        "from datetime import datetime, UTC; "
        "data = ProgressData(None, None, [], {}, []); "
        "s.describe_journey(s.journey_of(data, load_content(), now=datetime.now(UTC))); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {DRAWING!r}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


async def test_two_renders_run_at_once_on_two_workers() -> None:
    charts = ChartRenderer(size=2)
    try:
        await charts.render(chart())  # starts both workers
        await until(lambda: len(charts.worker_pids()) == 2)
        pids = charts.worker_pids()
        for pid in pids:  # frozen: no chart can finish until both are handed out
            os.kill(pid, signal.SIGSTOP)
        first = asyncio.create_task(charts.render(chart(1)))
        second = asyncio.create_task(charts.render(chart(5)))
        await until(lambda: charts.busy == 2)  # both in flight, each on its own worker
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        one, other = await asyncio.gather(first, second)
        assert one.startswith(PNG_SIGNATURE) and other.startswith(PNG_SIGNATURE)
        assert one != other
        assert charts.worker_pids() == pids and charts.drawn == 3
    finally:
        await charts.close()


async def test_a_killed_worker_is_replaced(renderer: ChartRenderer) -> None:
    await renderer.render(chart())
    [first] = renderer.worker_pids()
    os.kill(first, signal.SIGKILL)  # the worker dies (OOM killer, an operator's kill)
    png = await renderer.render(chart(2))
    assert png.startswith(PNG_SIGNATURE)
    [second] = renderer.worker_pids()
    assert second != first


async def test_killing_every_idle_worker_never_fails_the_next_chart() -> None:
    charts = ChartRenderer(size=2)
    try:
        await charts.render(chart())  # starts both workers
        await until(lambda: len(charts.worker_pids()) == 2)
        dead = charts.worker_pids()
        for pid in dead:  # all at once, while idle, as the OOM killer might
            os.kill(pid, signal.SIGKILL)
        await until(lambda: not any(alive(pid) for pid in dead))
        # Both are found dead as they are checked out and replaced before drawing: neither
        # costs the member's one retry.
        png = await charts.render(chart(2))
        assert png.startswith(PNG_SIGNATURE)
        assert set(charts.worker_pids()).isdisjoint(dead)
    finally:
        await charts.close()


async def test_a_chart_right_after_every_worker_is_killed_is_still_drawn() -> None:
    """Killed an instant before the chart, a worker may still look alive when checked out;
    it never took the request, so its death is no reason to give up on the chart either."""
    charts = ChartRenderer(size=2)
    try:
        for rating in (1, 2, 3):
            await charts.render(chart(rating))
            await until(lambda: len(charts.worker_pids()) == 2)
            for pid in charts.worker_pids():
                os.kill(pid, signal.SIGKILL)
            png = await charts.render(chart(rating + 1))
            assert png.startswith(PNG_SIGNATURE)
    finally:
        await charts.close()


async def test_a_hung_worker_is_killed_and_replaced(renderer: ChartRenderer) -> None:
    await renderer.render(chart())
    [hung] = renderer.worker_pids()
    os.kill(hung, signal.SIGSTOP)  # it never answers again
    renderer.render_timeout_s = 0.5  # not a second of this test's time more than needed
    drawing = asyncio.create_task(renderer.render(chart(3)))
    await until(lambda: not alive(hung))  # given up on, and killed
    # Its replacement starts first: time enough to give its chart the usual time,
    # so a slow machine cannot fail this test.
    renderer.render_timeout_s = RENDER_TIMEOUT_S
    assert (await drawing).startswith(PNG_SIGNATURE)
    [fresh] = renderer.worker_pids()
    assert fresh != hung


async def test_ctrl_c_is_the_bots_not_the_workers(renderer: ChartRenderer) -> None:
    await renderer.render(chart())
    [worker] = renderer.worker_pids()
    os.kill(worker, signal.SIGINT)
    assert (await renderer.render(chart(1))).startswith(PNG_SIGNATURE)
    assert renderer.worker_pids() == [worker]


async def test_a_failing_chart_is_reported_and_its_worker_kept(renderer: ChartRenderer) -> None:
    await renderer.render(chart())
    [worker] = renderer.worker_pids()
    with pytest.raises(ChartFailed, match="ZoneInfoNotFoundError"):
        await renderer._draw(encode_request(chart(zone="Nowhere/Atlantis")))
    assert (await renderer.render(chart(1))).startswith(PNG_SIGNATURE)
    assert renderer.worker_pids() == [worker]


async def test_close_stops_the_workers_for_good() -> None:
    charts = ChartRenderer(size=2)
    await charts.render(chart())
    await until(lambda: len(charts.worker_pids()) == 2)
    pids = charts.worker_pids()
    in_flight = asyncio.create_task(charts.render(chart(2)))
    # Closed while it is drawn, when the poll catches it; a chart drawn between two polls is
    # done already (the assertions below hold either way).
    await until(lambda: charts.busy == 1 or in_flight.done())
    await charts.close()
    # The chart being drawn is either sent or politely refused, never left hanging.
    [outcome] = await asyncio.gather(in_flight, return_exceptions=True)
    assert isinstance(outcome, ChartUnavailable) or outcome.startswith(PNG_SIGNATURE)
    assert not any(alive(pid) for pid in pids)
    with pytest.raises(ChartUnavailable):
        await charts.render(chart(), member=1)
    assert charts.worker_pids() == []  # nothing started again
