"""The Discord emulator in a process of its own, so nothing measured shares a process with
the load (bench/checkins.py, bench/moderation.py).

``python bench/harness/emulator_server.py emulator --members N --first-id ID [--rate-limit R]``:
the emulator (``sandbox.Emulator``, spec validation on) with ``--members`` users of fixed ids
(``--first-id`` upwards) and their DM channels, plus a small control app on another port for
the benchmark to read. The first line on stdout is one JSON object ``{"root": ...,
"control": ...}``; then it serves until SIGTERM. Control routes:

* ``GET /channels``: ``{"<user id>": <DM channel id>}`` for every member;
* ``GET /counters``: cheap live counters (requests, non-2xx answers, 429s, violations,
  enforced-nonce duplicates, DM messages created, first/last DM wall time, live sessions and
  when each number of them was first reached, CPU);
* ``GET /ready?sessions=N``: returns once N gateway sessions are live;
* ``GET /report``: everything, once the run is over: requests by route and status, the
  busiest one-second window, and every bot message in every member's DM (nonce, title,
  whether marked late, the start of each embed field);
* ``POST /dm`` (``{"user_id": id, "text": ...}``): the member writes to the bot in their DM
  (``send_dm``); answers ``{"id": <the message's id>}``;
* ``GET /dm-log?after=N``: the messages posted in members' DMs, the members' and the bot's, in
  the order the emulator stored them, from the N-th on: each with when it was stored
  (``time.perf_counter`` of this process, taken as the emulator stores it: a member's just
  before MESSAGE_CREATE goes to the bot, the bot's as its request is answered), and for the
  bot's what it carried (nonce, content, embed titles, buttons, selects, size);
* ``POST /check``: with ``--defer-validation``, the request bodies kept since the last call
  checked against the spec now (each bad one a violation): the check costs the emulator
  5-25 ms a body, which would otherwise be timed with the bot's answers.

A benchmark whose emulator does more (bench/moderation.py's: a server per member) runs
``serve(ItsEmulator)`` from a mode of its own.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # bench/, for harness

from harness.emulator import DeferrableValidator
from sandbox import JSON, RestApi
from sandbox.emulator import Emulator

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

    def record(self, method: str, path: str, status: int) -> None:
        now = time.time()
        self.log.append((now, route_key(method, path), status))
        self.statuses[status] += 1
        if status < 300 and CREATE_DM_MESSAGE.match(f"{method} {path}"):
            self.dm_created += 1
            self.first_dm = self.first_dm or now
            self.last_dm = now

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


class RecordedRest(RestApi):
    """The emulator's REST side, each answer recorded once it is made."""

    def __init__(self, emulator: Emulator, recorder: Recorder) -> None:
        super().__init__(emulator)
        self.recorder = recorder

    async def handle(self, request: web.Request) -> web.Response:
        response = await super().handle(request)
        self.recorder.record(request.method, "/" + request.match_info["tail"], response.status)
        return response


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class DmLog:
    """Every message stored in a member's DM, the member's and the bot's, in order, each with
    when it was stored (``time.perf_counter``, taken first). A member's is stored just before
    MESSAGE_CREATE goes to the bot, the bot's as the emulator answers its request."""

    def __init__(self, emulator: Emulator, channels: set[int]) -> None:
        self.emulator = emulator
        self.channels = channels
        self.entries: list[tuple[float, int, int, bool]] = []  # (at, channel, message, by bot)
        self.answers = 0  # the bot's messages among them
        world = emulator._world
        stored = world.on_message

        def on_message(message: dict[str, JSON]) -> None:
            at = time.perf_counter()
            if stored is not None:
                stored(message)
            channel = int(str(message["channel_id"]))
            if channel in self.channels:
                author = message["author"]
                assert isinstance(author, dict)
                by_bot = int(str(author["id"])) == emulator.bot_user_id
                self.entries.append((at, channel, int(str(message["id"])), by_bot))
                self.answers += by_bot

        world.on_message = on_message

    def since(self, first: int) -> list[dict[str, Any]]:
        """The entries from the ``first``-th on, the bot's with what they carried."""
        messages = self.emulator._world.messages
        out: list[dict[str, Any]] = []
        for at, channel, message_id, by_bot in self.entries[first:]:
            entry: dict[str, Any] = {"at": at, "channel": channel, "id": message_id}
            if by_bot:
                message = messages[message_id]
                embeds = message.get("embeds") or []
                components = message.get("components") or []
                assert isinstance(embeds, list) and isinstance(components, list)
                kinds = [
                    part.get("type")
                    for row in components
                    if isinstance(row, dict)
                    for part in row.get("components") or []
                    if isinstance(part, dict)
                ]
                sent = {key: message.get(key) for key in ("content", "embeds", "components")}
                entry["answer"] = {
                    "nonce": message.get("nonce"),
                    "content": message.get("content", ""),
                    "titles": [e.get("title") for e in embeds if isinstance(e, dict)],
                    "buttons": kinds.count(2),
                    "selects": kinds.count(3),
                    "bytes": len(json.dumps(sent).encode()),
                }
            out.append(entry)
        return out


class Control:
    """What the control app answers about the emulator and its members."""

    def __init__(
        self,
        emulator: Emulator,
        recorder: Recorder,
        members: list[int],
        checks: DeferrableValidator | None = None,
    ) -> None:
        self.emulator = emulator
        self.recorder = recorder
        self.members = members
        self.channels = {str(user_id): emulator.dm_channel_id(user_id) for user_id in members}
        self.dm_log = DmLog(emulator, set(self.channels.values()))
        self.checks = checks  # with --defer-validation: the bodies to check when asked
        self.live_at: dict[int, float] = {}  # live gateway sessions -> when that many first were

    async def watch_sessions(self) -> None:
        while True:
            live = self.emulator.session_count
            for count in range(1, live + 1):
                self.live_at.setdefault(count, time.time())
            await asyncio.sleep(0.005)

    def counters(self) -> dict[str, Any]:
        emulator, recorder = self.emulator, self.recorder
        return {
            "requests": len(recorder.log),
            "statuses": {str(k): v for k, v in sorted(recorder.statuses.items())},
            "non_2xx": sum(v for k, v in recorder.statuses.items() if not 200 <= k < 300),
            "rate_limited": emulator.rate_limited_count,
            "nonce_duplicates": emulator.nonce_duplicates,
            "message_create_requests": emulator.message_create_requests,
            "violations": len(emulator.violations),
            "unchecked_bodies": len(self.checks.unchecked) if self.checks else 0,
            "dm_log": len(self.dm_log.entries),
            "dm_answers": self.dm_log.answers,
            "dm_created": recorder.dm_created,
            "first_dm": recorder.first_dm,
            "last_dm": recorder.last_dm,
            "sessions": emulator.session_count,
            "live_at": {str(k): v for k, v in self.live_at.items()},
            "validating": emulator.validating,
            "cpu": cpu_seconds(),
        }

    def bot_messages(self, user_id: int) -> list[dict[str, Any]]:
        """The bot's messages in a member's DM, as the report shows them."""
        mine = []
        for message in self.emulator.dm_messages(user_id):
            if int(message["author"]["id"]) != self.emulator.bot_user_id:
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
        return mine

    def report(self) -> dict[str, Any]:
        recorder = self.recorder
        routes: Counter[str] = Counter()
        for _, key, status in recorder.log:
            routes[f"{key} -> {status}"] += 1
        dm_times = [at for at, key, status in recorder.log if status < 300 and "messages" in key]
        return {
            **self.counters(),
            "routes": dict(routes.most_common()),
            "busiest_second": recorder.busiest_second(),
            "dm_times": dm_times,
            "violation_samples": [
                f"{v.method} {v.path}: {v.rule}: {v.detail}"[:300]
                for v in self.emulator.violations[:5]
            ],
            "messages": {str(user_id): self.bot_messages(user_id) for user_id in self.members},
        }

    def app(self) -> web.Application:
        async def get_channels(_: web.Request) -> web.Response:
            return web.json_response(self.channels)

        async def get_counters(_: web.Request) -> web.Response:
            return web.json_response(self.counters())

        async def get_ready(request: web.Request) -> web.Response:
            sessions = int(request.query.get("sessions", "1"))
            timeout = float(request.query.get("timeout", "60"))
            await self.emulator.wait_until_ready(timeout, sessions=sessions)
            return web.json_response({"sessions": self.emulator.session_count})

        async def get_report(_: web.Request) -> web.Response:
            return web.json_response(self.report())

        async def post_dm(request: web.Request) -> web.Response:
            body = await request.json()
            message = await self.emulator.send_dm(int(body["user_id"]), str(body["text"]))
            return web.json_response({"id": int(str(message["id"]))})

        async def get_dm_log(request: web.Request) -> web.Response:
            return web.json_response(self.dm_log.since(int(request.query.get("after", "0"))))

        async def post_check(_: web.Request) -> web.Response:
            checked = self.checks.check_deferred() if self.checks else 0
            return web.json_response(
                {"checked": checked, "violations": len(self.emulator.violations)}
            )

        control = web.Application()
        control.router.add_get("/channels", get_channels)
        control.router.add_get("/counters", get_counters)
        control.router.add_get("/ready", get_ready)
        control.router.add_get("/report", get_report)
        control.router.add_post("/dm", post_dm)
        control.router.add_get("/dm-log", get_dm_log)
        control.router.add_post("/check", post_check)
        return control


async def run_emulator(args: argparse.Namespace, emulator_class: type[Emulator]) -> None:
    emulator = emulator_class(global_rate_limit=args.rate_limit, record_requests=False)
    recorder = Recorder()
    # Its REST side is untouched so far (it is routed to when the emulator starts).
    emulator._rest = RecordedRest(emulator, recorder)
    members = [args.first_id + index for index in range(args.members)]
    for index, user_id in enumerate(members):
        emulator.add_user(f"member{index}", id=user_id)
    await emulator.start()
    checks = DeferrableValidator.install(emulator, defer=True) if args.defer_validation else None
    control = Control(emulator, recorder, members, checks)
    watcher = asyncio.create_task(control.watch_sessions())
    runner = web.AppRunner(control.app(), access_log=None)
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


def serve(emulator_class: type[Emulator] = Emulator) -> None:
    """The process's life, from its command line (``emulator --members ...``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    modes = parser.add_subparsers(dest="mode", required=True)
    emulator = modes.add_parser("emulator")
    emulator.add_argument("--members", type=int, required=True)
    emulator.add_argument("--first-id", type=int, required=True)
    emulator.add_argument("--rate-limit", type=float, default=None)
    emulator.add_argument(
        "--defer-validation",
        action="store_true",
        help="check request bodies against the spec when asked (POST /check), not as they come",
    )
    asyncio.run(run_emulator(parser.parse_args(), emulator_class))


if __name__ == "__main__":
    serve()
