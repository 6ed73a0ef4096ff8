"""Subprocesses of bench/checkins.py, so nothing measured shares a process with the load.

Two modes, each its own process:

``emulator``: the Discord emulator (``sandbox.Emulator``, spec validation on) with ``--members``
users of fixed ids (``--first-id`` upwards) and their DM channels, plus a small control app on
another port for the benchmark to read. The first line on stdout is one JSON object
``{"root": ..., "control": ...}``; then it serves until SIGTERM. Control routes:

* ``GET /channels``: ``{"<user id>": <DM channel id>}`` for every member;
* ``GET /counters``: cheap live counters (requests, non-2xx answers, 429s, violations,
  enforced-nonce duplicates, DM messages created, first/last DM wall time, live sessions and
  when each number of them was first reached, CPU);
* ``GET /ready?sessions=N``: returns once N gateway sessions are live;
* ``GET /report``: everything, once the run is over: requests by route and status, the
  busiest one-second window, and every bot message in every member's DM (nonce, title,
  whether marked late, the start of each embed field).

``bare-sender``: the baseline: a bare ``discord.Client`` (no intents, imports nothing of
Crossroads) that logs in, connects, and sends one short plain-text DM with a nonce to each
channel the emulator reported, ``--concurrency`` at a time, as fast as it can; then prints
``{"sent": n, "errors": n}`` and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import signal
import sys
import time
from collections import Counter, deque
from pathlib import Path
from typing import Any

from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
CREATE_DM_MESSAGE = re.compile(r"^POST /channels/\d+/messages$")
NUMBER = re.compile(r"/\d+")
FIELD_CHARS = 200  # enough of each embed field to recognise the member's words


def route_key(method: str, path: str) -> str:
    return method + " " + NUMBER.sub("/{id}", path)


class Recorder:
    """Every REST request the emulator answered: when, which route, which status."""

    def __init__(self) -> None:
        self.log: list[tuple[float, str, int]] = []  # (wall time, route key, status)
        self.statuses: Counter[int] = Counter()
        self.dm_created = 0  # 2xx answers to POST /channels/{id}/messages
        self.first_dm: float | None = None
        self.last_dm: float | None = None

    def wrap(self, handle: Any) -> Any:
        async def recorded(request: web.Request) -> web.StreamResponse:
            response: web.StreamResponse = await handle(request)
            now = time.time()
            path = "/" + request.match_info["tail"]
            self.log.append((now, route_key(request.method, path), response.status))
            self.statuses[response.status] += 1
            if response.status < 300 and CREATE_DM_MESSAGE.match(f"{request.method} {path}"):
                self.dm_created += 1
                self.first_dm = self.first_dm or now
                self.last_dm = now
            return response

        return recorded

    def busiest_second(self) -> int:
        """Most requests admitted (answered other than 429) in any sliding one-second window."""
        window: deque[float] = deque()
        best = 0
        for at, _, status in self.log:
            if status == 429:
                continue
            window.append(at)
            while at - window[0] >= 1.0:
                window.popleft()
            best = max(best, len(window))
        return best


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_emulator(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    from sandbox import Emulator

    emulator = Emulator(global_rate_limit=args.rate_limit, record_requests=False)
    recorder = Recorder()
    # The REST handler is registered when the emulator starts: wrap it before.
    emulator._rest.handle = recorder.wrap(emulator._rest.handle)  # type: ignore[method-assign]
    members = [args.first_id + index for index in range(args.members)]
    for index, user_id in enumerate(members):
        emulator.add_user(f"member{index}", id=user_id)
    channels = {str(user_id): emulator.dm_channel_id(user_id) for user_id in members}
    await emulator.start()
    live_at: dict[int, float] = {}  # live gateway sessions -> when that many first were

    async def watch_sessions() -> None:
        while True:
            live = emulator.session_count
            for count in range(1, live + 1):
                live_at.setdefault(count, time.time())
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch_sessions())

    async def get_channels(_: web.Request) -> web.Response:
        return web.json_response(channels)

    def counters() -> dict[str, Any]:
        return {
            "requests": len(recorder.log),
            "statuses": {str(k): v for k, v in sorted(recorder.statuses.items())},
            "non_2xx": sum(v for k, v in recorder.statuses.items() if not 200 <= k < 300),
            "rate_limited": emulator.rate_limited_count,
            "nonce_duplicates": emulator.nonce_duplicates,
            "violations": len(emulator.violations),
            "dm_created": recorder.dm_created,
            "first_dm": recorder.first_dm,
            "last_dm": recorder.last_dm,
            "sessions": emulator.session_count,
            "live_at": {str(k): v for k, v in live_at.items()},
            "validating": emulator.validating,
            "cpu": cpu_seconds(),
        }

    async def get_counters(_: web.Request) -> web.Response:
        return web.json_response(counters())

    async def get_ready(request: web.Request) -> web.Response:
        sessions = int(request.query.get("sessions", "1"))
        timeout = float(request.query.get("timeout", "60"))
        await emulator.wait_until_ready(timeout, sessions=sessions)
        return web.json_response({"sessions": emulator.session_count})

    async def get_report(_: web.Request) -> web.Response:
        routes: Counter[str] = Counter()
        for _, key, status in recorder.log:
            routes[f"{key} -> {status}"] += 1
        messages: dict[str, list[dict[str, Any]]] = {}
        for user_id in members:
            mine = []
            for message in emulator.dm_messages(user_id):
                if int(message["author"]["id"]) != emulator.bot_user_id:
                    continue
                embeds = message.get("embeds") or [{}]
                embed = embeds[0]
                mine.append(
                    {
                        "id": message["id"],
                        "nonce": message.get("nonce"),
                        "content": message.get("content", "")[:FIELD_CHARS],
                        "title": embed.get("title"),
                        "late": str(embed.get("description", "")).startswith("*Late"),
                        "fields": [f["value"][:FIELD_CHARS] for f in embed.get("fields", [])],
                        "buttons": sum(
                            len(row.get("components", [])) for row in message.get("components", [])
                        ),
                    }
                )
            messages[str(user_id)] = mine
        dm_times = [at for at, key, status in recorder.log if status < 300 and "messages" in key]
        report = {
            **counters(),
            "routes": dict(routes.most_common()),
            "busiest_second": recorder.busiest_second(),
            "dm_times": dm_times,
            "violation_samples": [
                f"{v.method} {v.path}: {v.rule}: {v.detail}"[:300] for v in emulator.violations[:5]
            ],
            "messages": messages,
        }
        return web.json_response(report)

    control = web.Application()
    control.router.add_get("/channels", get_channels)
    control.router.add_get("/counters", get_counters)
    control.router.add_get("/ready", get_ready)
    control.router.add_get("/report", get_report)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    control_port = runner.addresses[0][1]
    root = emulator.api_base.removesuffix("/api/v10")
    print(json.dumps({"root": root, "control": f"http://127.0.0.1:{control_port}"}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    watcher.cancel()
    await runner.cleanup()
    await emulator.stop()


async def run_bare_sender(args: argparse.Namespace) -> None:
    """The least a discord.py bot can do: log in, connect, send plain DMs with nonces."""
    import aiohttp
    import discord
    import yarl

    async with aiohttp.ClientSession() as http, http.get(f"{args.control}/channels") as response:
        channels: dict[str, int] = await response.json()
    discord.http.Route.BASE = f"{args.root}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
        args.root.replace("http", "ws", 1) + "/gateway"
    )
    client = discord.Client(intents=discord.Intents.none())
    sent = errors = 0
    finished = asyncio.Event()

    async def send_all() -> None:
        nonlocal sent, errors
        gate = asyncio.Semaphore(args.concurrency)

        async def one(index: int, channel_id: int) -> None:
            nonlocal sent, errors
            async with gate:
                channel = client.get_partial_messageable(
                    channel_id, type=discord.ChannelType.private
                )
                try:
                    await channel.send(f"Check-in {index}: how is it going?", nonce=f"bare-{index}")
                    sent += 1
                except discord.HTTPException:
                    errors += 1

        await asyncio.gather(*(one(i, c) for i, c in enumerate(channels.values())))
        finished.set()

    started = False

    @client.event
    async def on_connect() -> None:
        nonlocal started
        if not started:  # the same moment the Crossroads loop first ticks
            started = True
            asyncio.get_running_loop().create_task(send_all())

    async with client:
        runner = asyncio.create_task(client.start("bench"))
        waiter = asyncio.create_task(finished.wait())
        await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
        await client.close()
        await asyncio.gather(runner, return_exceptions=True)
    print(json.dumps({"sent": sent, "errors": errors}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    emulator = modes.add_parser("emulator")
    emulator.add_argument("--members", type=int, required=True)
    emulator.add_argument("--first-id", type=int, required=True)
    emulator.add_argument("--rate-limit", type=float, default=None)
    bare = modes.add_parser("bare-sender")
    bare.add_argument("--root", required=True)
    bare.add_argument("--control", required=True)
    bare.add_argument("--concurrency", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(run_emulator(args) if args.mode == "emulator" else run_bare_sender(args))


if __name__ == "__main__":
    main()
