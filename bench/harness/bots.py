"""Bots measured, each in a process of its own: Crossroads as an operator runs it (``python
bot.py``, pointed at an emulator by ``DISCORD_EMULATOR_URL``) and the bare discord.py
baseline (``python bench/bare_bot.py``), against an emulator in the benchmark's process
(``BotProcess``) or in a process of its own (``spawn_bot``, ``wait_child_ready``)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.paths import BENCH, REPO
from harness.processes import Child, Children, alive, base_env, command_line, descendants, rss_bytes

if TYPE_CHECKING:
    from harness.emulator_process import EmulatorProcess
    from sandbox.emulator import Emulator

CROSSROADS = "crossroads"
BARE = "bare"
CROSSROADS_SCRIPT = REPO / "bot.py"
BOT_TOKEN = "bench-token"  # the emulator accepts any token but "invalid-token"
# Logged once discord.py fired on_ready: by Crossroads (cogs/_bot.py) and by bench/bare_bot.py.
READY_LINES = {CROSSROADS: "connected as", BARE: "bare bot ready"}


def bot_env(emulator_root: str, database_url: str, data_key: str) -> dict[str, str]:
    """Crossroads' whole environment: the emulator, its database and key, INFO logs."""
    return {
        **base_env(),
        "DISCORD_TOKEN": BOT_TOKEN,
        "DISCORD_EMULATOR_URL": emulator_root,
        "DATABASE_URL": database_url,
        "DATA_KEY": data_key,
        "LOG_LEVEL": "INFO",
    }


def profiled(args: list[str], profile: Path | None) -> list[str]:
    """``args`` of a Python script, run under cProfile with its statistics written to
    ``profile`` on exit (None: as they are)."""
    return args if profile is None else ["-m", "cProfile", "-o", str(profile), *args]


def traced(args: list[str], snapshots: Path | None) -> tuple[list[str], dict[str, str]]:
    """``args`` of a Python script run with tracemalloc, a snapshot written to ``snapshots``
    at each SIGUSR1 (harness/traced_bot.py), and the environment that says where."""
    if snapshots is None:
        return args, {}
    return [str(BENCH / "harness" / "traced_bot.py"), *args], {"TRACEMALLOC_DIR": str(snapshots)}


def bot_command(
    kind: str,
    emulator_root: str,
    *,
    database_url: str | None = None,
    data_key: str | None = None,
    options: tuple[str, ...] = (),
) -> tuple[list[str], dict[str, str]]:
    """The script's arguments and whole environment of ``kind`` against an emulator:
    Crossroads as ``bot.py run`` on its database, or the bare bot (with ``options``)."""
    if kind == CROSSROADS:
        assert database_url is not None and data_key is not None
        return [str(CROSSROADS_SCRIPT), "run"], bot_env(emulator_root, database_url, data_key)
    env = {**base_env(), "DISCORD_TOKEN": BOT_TOKEN, "DISCORD_EMULATOR_URL": emulator_root}
    return [str(BENCH / "bare_bot.py"), *options], env


def spawn_bot(
    children: Children,
    kind: str,
    emulator: EmulatorProcess,
    *,
    label: str,
    database_url: str | None = None,
    data_key: str | None = None,
    options: tuple[str, ...] = (),
) -> Child:
    """``kind`` in a process of its own against an emulator in another (see bot_command)."""
    args, env = bot_command(
        kind, emulator.root, database_url=database_url, data_key=data_key, options=options
    )
    return children.spawn(label, args, env)


async def wait_child_ready(
    child: Child,
    kind: str,
    emulator: EmulatorProcess,
    *,
    timeout: float = 120,  # noqa: ASYNC109
) -> None:
    """Until discord.py fired on_ready (the bot's log says so; it waits for its guilds first)
    and its session is live on its emulator (``GET /ready``). Raises SystemExit with the
    log's tail if the bot dies or never gets there."""
    deadline = time.monotonic() + timeout
    while not child.log_lines(READY_LINES[kind]):
        if not alive(child.popen.pid) or time.monotonic() > deadline:
            tail = "\n".join(child.log_lines("")[-25:])
            raise SystemExit(f"the {kind} bot ({child.label}) never got ready:\n{tail}")
        await asyncio.sleep(0.05)  # a log file to poll: nothing to wait on
    await emulator.get("/ready", sessions="1", timeout="10")  # at once, once on_ready fired


class BotProcess:
    """One bot in its own process, pointed at an emulator in this one; its output goes to a
    log file."""

    def __init__(
        self,
        kind: str,
        process: asyncio.subprocess.Process,
        log: Path,
        snapshots: Path | None = None,
    ) -> None:
        self.kind = kind
        self.process = process
        self.log = log
        self.snapshots = snapshots

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    async def start(
        cls,
        kind: str,
        emulator: Emulator,
        workdir: Path,
        *,
        database_url: str | None = None,
        data_key: str | None = None,
        label: str | None = None,
        profile: Path | None = None,
        snapshots: Path | None = None,
    ) -> BotProcess:
        """``profile``: run the bot under cProfile, its statistics written there on exit;
        ``snapshots``: with tracemalloc, a snapshot written there at each ``snapshot()``."""
        root = emulator.api_base.removesuffix("/api/v10")
        args, env = bot_command(kind, root, database_url=database_url, data_key=data_key)
        args, tracing = traced(args, snapshots)
        env.update(tracing)
        log = workdir / f"{label or kind}.log"
        with open(log, "wb") as output:  # noqa: ASYNC230 (a new file: nothing to wait for)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                *profiled(args, profile),
                cwd=workdir,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
            )
        return cls(kind, process, log, snapshots)

    def log_text(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def _died(self) -> SystemExit:
        tail = "\n".join(self.log_text().splitlines()[-25:])
        return SystemExit(f"the {self.kind} bot exited ({self.process.returncode}):\n{tail}")

    async def wait_ready(self, emulator: Emulator, *, timeout: float = 120) -> None:  # noqa: ASYNC109
        """Until its gateway session is live on the emulator (READY and every GUILD_CREATE
        sent) and discord.py fired on_ready (it waits for the guilds first): the bot's log
        says so. Raises with the log's tail if the bot dies on the way."""
        deadline = time.monotonic() + timeout
        exited = asyncio.create_task(self.process.wait())
        live = asyncio.create_task(emulator.wait_until_ready(timeout))
        try:
            await asyncio.wait({exited, live}, return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                raise self._died()
            live.result()
            while READY_LINES[self.kind] not in self.log_text():
                if exited.done():
                    raise self._died()
                if time.monotonic() > deadline:
                    raise SystemExit(f"the {self.kind} bot never logged its on_ready")
                await asyncio.sleep(0.05)  # a log file to poll: nothing to wait on
        finally:
            for task in (exited, live):
                task.cancel()

    def snapshot(self) -> None:
        """A tracemalloc snapshot, when the bot was started with ``snapshots``."""
        if self.snapshots is not None:
            self.process.send_signal(signal.SIGUSR1)

    def rss(self) -> int:
        size = rss_bytes(self.pid)
        if size is None:
            raise self._died()
        return size

    def helpers(self) -> list[tuple[int, str, int]]:
        """(pid, command line, VmRSS) of every process the bot started (chart workers)."""
        found = []
        for pid in descendants(self.pid):
            size = rss_bytes(pid)
            if size is not None:
                found.append((pid, command_line(pid), size))
        return found

    def problems(self) -> list[str]:
        """Log lines that mean something went wrong inside the bot."""
        return [
            line
            for line in self.log_text().splitlines()
            if "Traceback" in line or " ERROR " in line or "CRITICAL" in line
        ]

    async def stop(self, *, grace: float = 15) -> int:
        """SIGTERM, then SIGKILL after ``grace``; returns the exit code."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), grace)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        assert self.process.returncode is not None
        return self.process.returncode
