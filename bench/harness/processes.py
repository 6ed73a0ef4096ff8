"""Processes: what /proc says about them, and the children a benchmark starts, samples and
always stops."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_EVERY_S = 0.05  # how often Children samples its children's CPU


# --- /proc ------------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int | None:
    """VmRSS of a live process; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def proc_cpu(pid: int, task: int | None = None) -> float | None:
    """User + system CPU seconds of one process (or one of its threads) so far, its children
    not included; None once it is gone."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    try:
        with open(path, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """proc_cpu, 0 once the process is gone."""
    return proc_cpu(pid) or 0.0


def main_thread_share(pid: int) -> float | None:
    """The share of a live process's CPU so far spent in its main (event-loop) thread."""
    total, main = proc_cpu(pid), proc_cpu(pid, pid)
    return None if not total or main is None else main / total


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (the chart workers and their resource tracker)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdecimal():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as raw:
            return raw.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def alive(pid: int) -> bool:
    """Still running (a zombie is not), without reaping it: wait4 must get its rusage."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


# --- files --------------------------------------------------------------------------------------


def base_env() -> dict[str, str]:
    """A child's whole environment, before what it is told: nothing of this shell's."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1"}


def slug(label: str) -> str:
    """A file name for a run's or a process's label."""
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")


def keep_logs(workdir: Path, keep: Path, suffixes: tuple[str, ...] = (".log",)) -> None:
    """Copy the bots' logs (and other files ending in ``suffixes``) out of a run's temporary
    directory."""
    keep.mkdir(parents=True, exist_ok=True)
    for path in sorted(workdir.iterdir()):
        if path.name.endswith(suffixes):
            shutil.copy(path, keep / path.name)


# --- children sampled and reaped --------------------------------------------------------------


@dataclass
class Child:
    label: str
    popen: subprocess.Popen[bytes]
    log: Path
    samples: list[tuple[float, float]] = field(default_factory=list)  # (wall time, CPU s)
    rusage_cpu: float | None = None  # whole life, from wait4 after it exited
    main_thread: float | None = None  # share of its CPU in the event-loop thread, at the end
    exit_code: int | None = None
    _log_offset: int = 0

    def logged_error(self) -> bool:
        """Whether an ERROR line appeared in its log since the last call."""
        try:
            with open(self.log, "rb") as log:
                log.seek(self._log_offset)
                chunk = log.read()
        except OSError:
            return False
        # Only whole lines: a line still being written is read next time.
        end = chunk.rfind(b"\n") + 1
        self._log_offset += end
        return b" ERROR " in chunk[:end]

    def cpu_at(self, when: float) -> float:
        """CPU seconds used by `when` (wall time), interpolated between samples."""
        if not self.samples:
            return 0.0
        index = bisect.bisect_left(self.samples, (when, -1.0))
        if index == 0:
            return self.samples[0][1]
        if index == len(self.samples):
            return self.samples[-1][1]
        (t0, c0), (t1, c1) = self.samples[index - 1], self.samples[index]
        return c0 + (c1 - c0) * (when - t0) / max(1e-9, t1 - t0)

    def cpu_between(self, start: float, end: float) -> float:
        return self.cpu_at(end) - self.cpu_at(start)

    def log_lines(self, *needles: str) -> list[str]:
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        return [line for line in lines if any(needle in line for needle in needles)]


class Children:
    """Every subprocess a benchmark started (Python scripts, each logging to a file in
    ``workdir``); their CPU sampled every SAMPLE_EVERY_S; all stopped at the end, whatever
    happens."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.children: list[Child] = []
        self._sampler: asyncio.Task[None] | None = None

    def spawn(
        self, label: str, args: list[str], env: dict[str, str], *, stdout: int | None = None
    ) -> Child:
        log = self.workdir / f"{slug(label)}.log"
        with open(log, "wb") as errors:
            popen = subprocess.Popen(
                [sys.executable, *args],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else errors,
                stderr=errors,
            )
        child = Child(label, popen, log)
        self.children.append(child)
        return child

    def start_sampling(self) -> None:
        async def sample() -> None:
            while True:
                now = time.time()
                for child in self.children:
                    if child.exit_code is None:
                        cpu = proc_cpu(child.popen.pid)
                        if cpu is not None:
                            child.samples.append((now, cpu))
                await asyncio.sleep(SAMPLE_EVERY_S)

        self._sampler = asyncio.create_task(sample())

    async def stop(self, child: Child, *, grace: float = 15.0, signal_first: bool = True) -> None:
        """SIGTERM (unless it is ending by itself), SIGKILL after `grace`; reaped with wait4,
        which also says how much CPU it used in its whole life."""
        if child.exit_code is not None:
            return
        if signal_first:
            child.main_thread = main_thread_share(child.popen.pid)
        waiter = asyncio.create_task(asyncio.to_thread(os.wait4, child.popen.pid, 0))
        if signal_first:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.popen.pid, signal.SIGTERM)
        done, _ = await asyncio.wait({waiter}, timeout=grace)
        if not done:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.popen.pid, signal.SIGKILL)
        _, status, usage = await waiter
        child.exit_code = os.waitstatus_to_exitcode(status)
        child.popen.returncode = child.exit_code  # reaped here, not by Popen
        child.rusage_cpu = usage.ru_utime + usage.ru_stime
        if child.popen.stdout is not None:
            child.popen.stdout.close()

    async def stop_all(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
            self._sampler = None
        await asyncio.gather(*(self.stop(c) for c in self.children), return_exceptions=True)
        for child in self.children:  # whatever happened above: nothing outlives the benchmark
            if child.exit_code is None and alive(child.popen.pid):
                child.popen.kill()
                child.popen.wait()
