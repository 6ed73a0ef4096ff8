"""The Discord emulator in a process of its own (bench/harness/emulator_server.py, or a
benchmark's own mode of it), started and read from the benchmark's process."""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from harness.paths import BENCH
from harness.processes import Child, Children, base_env

EMULATOR_SERVER = BENCH / "harness" / "emulator_server.py"
FIRST_MEMBER_ID = 800_000_000_000_000_001  # its members' ids from here up (fixed)


@dataclass
class EmulatorProcess:
    child: Child
    root: str
    control: str
    http: aiohttp.ClientSession

    async def get(self, route: str, **params: str) -> Any:
        timeout = aiohttp.ClientTimeout(total=120)
        async with self.http.get(f"{self.control}{route}", params=params, timeout=timeout) as r:
            r.raise_for_status()
            return await r.json()

    async def post(self, route: str, body: Any = None) -> Any:
        timeout = aiohttp.ClientTimeout(total=300)
        async with self.http.post(f"{self.control}{route}", json=body, timeout=timeout) as r:
            r.raise_for_status()
            return await r.json()


async def start_emulator(
    children: Children,
    http: aiohttp.ClientSession,
    members: int,
    rate_limit: float | None,
    *,
    helper: Path = EMULATOR_SERVER,
    label: str = "emulator",
    defer_validation: bool = False,
) -> EmulatorProcess:
    """`helper`: a script whose ``emulator`` mode takes the same arguments and prints the same
    first line (bench/moderation.py's adds a server per member). `defer_validation`: request
    bodies are checked against the spec when ``POST /check`` asks, off the clock."""
    args = [str(helper), "emulator", "--members", str(members), "--first-id", str(FIRST_MEMBER_ID)]
    if rate_limit is not None:
        args += ["--rate-limit", str(rate_limit)]
    if defer_validation:
        args.append("--defer-validation")
    child = children.spawn(label, args, base_env(), stdout=subprocess.PIPE)
    assert child.popen.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(child.popen.stdout.readline), 120)
    if not line:
        raise SystemExit(f"the emulator did not start; see {child.log}")
    address = json.loads(line)
    return EmulatorProcess(child, address["root"], address["control"], http)
