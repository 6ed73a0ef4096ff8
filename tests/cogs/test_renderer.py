"""Charts render in a worker process, and the bot's own process never loads matplotlib."""

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def test_renders_a_png_in_another_process() -> None:
    # Imported here, not at collection: unloading the cog in other tests drops these modules,
    # and pickling to the worker needs the very objects sys.modules holds now.
    from cogs.progress._renderer import ChartRenderer
    from cogs.progress._samples import ComfortSample, LeaningSample

    renderer = ChartRenderer()
    try:
        at = datetime(2026, 3, 1, tzinfo=UTC)
        png = await renderer.render(
            [ComfortSample("purpose", at, 4)],
            [LeaningSample(at, 1)],
            labels={"purpose": "Why you want it"},
            tz=UTC,
        )
        worker = await asyncio.get_running_loop().run_in_executor(renderer.executor, os.getpid)
    finally:
        await renderer.close()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert worker != os.getpid()


def test_loading_the_progress_cog_does_not_import_matplotlib() -> None:
    probe = "import sys, cogs.progress; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


async def test_a_dead_worker_is_replaced_and_a_closed_renderer_stays_closed() -> None:
    import signal

    import pytest

    from cogs.progress._renderer import ChartRenderer, ChartUnavailable
    from cogs.progress._samples import ComfortSample

    renderer = ChartRenderer()
    at = datetime(2026, 3, 1, tzinfo=UTC)
    sample = [ComfortSample("purpose", at, 4)]
    loop = asyncio.get_running_loop()
    try:
        first = await loop.run_in_executor(renderer.executor, os.getpid)
        os.kill(first, signal.SIGKILL)  # the worker dies (OOM killer, an operator's kill)
        png = await renderer.render(sample, [], labels={}, tz=UTC)
        assert png.startswith(b"\x89PNG")
        assert await loop.run_in_executor(renderer.executor, os.getpid) != first
    finally:
        await renderer.close()
    with pytest.raises(ChartUnavailable):
        await renderer.render(sample, [], labels={}, tz=UTC)
