"""The gateway half of the emulator: one bot session over an aiohttp websocket.

discord.py asks for ``compress=zlib-stream`` but handles plain TEXT frames too, so everything is
sent uncompressed (simpler to debug). Dispatches are numbered and kept, so a RESUME after a
dropped connection replays what the bot missed, as Discord does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from ._world import World

log = logging.getLogger(__name__)

JSON = Any
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41250
REPLAY_KEEP = 1000  # dispatches kept for RESUME
AUTHENTICATION_FAILED = 4004


class Session:
    """One identified gateway session; it outlives a websocket when the bot resumes."""

    def __init__(self) -> None:
        self.id = secrets.token_hex(16)
        self.seq = 0
        self.log: list[dict[str, JSON]] = []
        self.ws: web.WebSocketResponse | None = None
        self.resumable = True


class Gateway:
    def __init__(self, world: World, gateway_url: Callable[[], str]) -> None:
        self._world = world
        self._gateway_url = gateway_url
        self.session: Session | None = None
        self.ready = asyncio.Event()  # READY and every GUILD_CREATE went out
        self._sockets: set[web.WebSocketResponse] = set()
        self._send_lock = asyncio.Lock()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await self._send(ws, {"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                op, data = payload.get("op"), payload.get("d")
                if op == HEARTBEAT:
                    await self._send(ws, {"op": HEARTBEAT_ACK})
                elif op == IDENTIFY:
                    await self._identify(ws, data)
                elif op == RESUME:
                    await self._resume(ws, data)
                # presence updates, member requests and the like need no answer here
        finally:
            self._sockets.discard(ws)
            if self.session is not None and self.session.ws is ws:
                # The bot went away (not a disconnect we caused): it is no longer ready.
                self.session.ws = None
                self.ready.clear()
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, JSON]) -> None:
        if data.get("token") in ("invalid-token", "Bot invalid-token"):
            await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        old = self.session
        if old is not None and old.ws is not None and old.ws is not ws:
            await old.ws.close(code=4009, message=b"Session replaced")
        self.ready.clear()
        session = self.session = Session()
        session.ws = ws
        world = self._world
        await self.dispatch(
            "READY",
            {
                "v": 10,
                "user": {**world.bot.payload(), "verified": True, "mfa_enabled": False},
                "guilds": [{"id": str(g), "unavailable": True} for g in world.guilds],
                "session_id": session.id,
                "session_type": "normal",
                "resume_gateway_url": self._gateway_url(),
                "application": {"id": str(world.application_id), "flags": 0},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": [],
                "shard": [0, 1],
                "_trace": ["sandbox"],
            },
        )
        for guild in list(world.guilds.values()):
            await self.dispatch("GUILD_CREATE", world.guild_create_payload(guild))
        self.ready.set()
        log.debug("session %s identified", session.id)

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, JSON]) -> None:
        session = self.session
        if session is None or not session.resumable or data.get("session_id") != session.id:
            await self._send(ws, {"op": INVALID_SESSION, "d": False})
            return
        since = int(data.get("seq") or 0)
        async with self._send_lock:  # replay before any new dispatch goes out on this socket
            session.ws = ws
            for event in session.log:
                if event["s"] > since:
                    await ws.send_str(json.dumps(event))
        await self.dispatch("RESUMED", {"_trace": ["sandbox"]})
        log.debug("session %s resumed from seq %s", session.id, since)

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send a DISPATCH to the bot now, or keep it for replay when it is reconnecting."""
        session = self.session
        if session is None:
            raise RuntimeError("no bot is connected to the emulator's gateway")
        async with self._send_lock:
            session.seq += 1
            payload = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
            session.log.append(payload)
            del session.log[:-REPLAY_KEEP]
            if session.ws is not None and not session.ws.closed:
                try:
                    await session.ws.send_str(json.dumps(payload))
                except ConnectionError:
                    log.debug("gateway send failed; %s kept for RESUME", event)

    async def disconnect(self, *, resumable: bool) -> None:
        session = self.session
        if session is None or session.ws is None:
            return
        session.resumable = resumable
        if not resumable:
            self.ready.clear()  # the bot will IDENTIFY again
        ws, session.ws = session.ws, None
        # 4000 ("unknown error") is a close discord.py reconnects from, trying RESUME first.
        await ws.close(code=4000, message=b"Sandbox disconnect")

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"Emulator stopping")
        self._sockets.clear()

    async def _send(self, ws: web.WebSocketResponse, payload: dict[str, JSON]) -> None:
        payload.setdefault("s", None)
        payload.setdefault("t", None)
        payload.setdefault("d", None)
        async with self._send_lock:
            await ws.send_str(json.dumps(payload))
