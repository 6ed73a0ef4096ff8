"""The gateway half of the emulator: bot sessions over aiohttp websockets.

discord.py asks for ``compress=zlib-stream`` but handles plain TEXT frames too, so everything is
sent uncompressed (simpler to debug). Every IDENTIFY opens a session of its own, as on Discord,
so two bot processes (or shards) can share one emulator. A session belongs to the shard its
IDENTIFY named and hears only about the guilds that shard owns; DMs go to shard 0. Each session
numbers and keeps its dispatches, so a RESUME after a dropped connection replays what it missed.

IDENTIFY is refused as Discord refuses it: a ``shard`` that is no ``[shard_id, shard_count]``
with ``0 <= shard_id < shard_count`` closes with 4010 (Invalid shard), and a shard that would
hold more than 2,500 guilds with 4011 (Sharding required). Sessions of different shard counts
may be live at once (Discord checks each IDENTIFY alone; that is how a bot re-shards).

GUILD_CREATE carries no member list beyond the bot itself, whatever the intents: a bot without
GUILD_PRESENCES gets only its own member and those in voice channels (and the emulator models
neither presences nor voice). ``member_count`` is the real count, so a bot can know a server's
size without holding its members.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import WSMsgType, web

from ._world import Guild, World

log = logging.getLogger(__name__)

JSON = Any
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41250
REPLAY_KEEP = 1000  # dispatches kept for RESUME
AUTHENTICATION_FAILED = 4004
INVALID_SHARD = 4010
SHARDING_REQUIRED = 4011
MAX_GUILDS_PER_SHARD = 2500  # more on one shard: Discord closes with 4011
# A client closing with these ends its session for good (Discord then refuses a RESUME).
# discord.py's own close() goes out as 4000 (its socket's default), so its session lingers.
SESSION_ENDING_CLOSES = (1000, 1001)
RESUME_TIMEOUT = 120  # seconds a dropped session waits for its RESUME before it is forgotten
GUILD_MESSAGES = 1 << 9  # the intent that delivers MESSAGE_CREATE of servers' channels
DIRECT_MESSAGES = 1 << 12  # the intent that delivers MESSAGE_CREATE of DMs
MESSAGE_CONTENT = 1 << 15  # privileged: the content of messages that do not mention the bot


class Session:
    """One identified gateway session; it outlives a websocket when the bot resumes."""

    def __init__(self, shard_id: int, shard_count: int, intents: int) -> None:
        self.id = secrets.token_hex(16)
        self.shard_id = shard_id
        self.shard_count = shard_count
        self.intents = intents
        self.seq = 0
        self.log: list[dict[str, JSON]] = []
        self.ws: web.WebSocketResponse | None = None
        self.detached_at: float | None = None  # monotonic time its socket went away
        self.identified = False  # READY and every GUILD_CREATE went out
        self.guild_ids: set[int] = set()  # guilds announced to it, so none is announced twice
        # Dispatches leave in seq order, and a RESUME's replay before anything newer.
        self.lock = asyncio.Lock()

    def owns(self, guild_id: int) -> bool:
        """Discord's shard formula: which shard hears about a guild."""
        return (guild_id >> 22) % self.shard_count == self.shard_id

    @property
    def receives_dms(self) -> bool:
        return self.shard_id == 0

    @property
    def live(self) -> bool:
        return self.identified and self.ws is not None and not self.ws.closed


class Gateway:
    def __init__(self, world: World, gateway_url: Callable[[], str]) -> None:
        self._world = world
        self._gateway_url = gateway_url
        self.sessions: dict[str, Session] = {}  # in IDENTIFY order: the newest is last
        self._sockets: set[web.WebSocketResponse] = set()
        # Set (and replaced) whenever a session becomes live or stops being live.
        self._change = asyncio.Event()

    # --- sessions ------------------------------------------------------------------------

    @property
    def live_count(self) -> int:
        return sum(1 for s in self.sessions.values() if s.live)

    async def wait_for_live(self, count: int) -> None:
        """Until at least ``count`` sessions are identified, announced their guilds, and are
        connected."""
        while self.live_count < count:
            await self._change.wait()

    def _forget_expired(self) -> None:
        """Drop sessions whose bot never came back (else every event would be kept for them)."""
        now = time.monotonic()
        for session in list(self.sessions.values()):
            if session.detached_at is not None and now - session.detached_at > RESUME_TIMEOUT:
                del self.sessions[session.id]

    def _changed(self) -> None:
        self._change.set()
        self._change = asyncio.Event()

    def sessions_for(self, guild_id: int | None, *, intents: int = 0) -> list[Session]:
        """The sessions an event about ``guild_id`` goes to (None: a DM, which shard 0 hears),
        among those whose IDENTIFY asked for every intent in ``intents``."""
        self._forget_expired()
        return [
            s
            for s in self.sessions.values()
            if (s.receives_dms if guild_id is None else s.owns(guild_id))
            and s.intents & intents == intents
        ]

    # --- the websocket -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await _send(ws, {"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                op, data = payload.get("op"), payload.get("d")
                if op == HEARTBEAT:
                    await _send(ws, {"op": HEARTBEAT_ACK})
                elif op == IDENTIFY:
                    await self._identify(ws, data)
                elif op == RESUME:
                    await self._resume(ws, data)
                # presence updates, member requests and the like need no answer here
        finally:
            self._sockets.discard(ws)
            self._detach(ws)
        return ws

    def _detach(self, ws: web.WebSocketResponse) -> None:
        """The bot went away (not a disconnect we caused): its session waits for a RESUME,
        unless the bot closed it for good."""
        for session in list(self.sessions.values()):
            if session.ws is ws:
                session.ws = None
                session.detached_at = time.monotonic()
                if ws.close_code in SESSION_ENDING_CLOSES:
                    del self.sessions[session.id]
                self._changed()

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, JSON]) -> None:
        if data.get("token") in ("invalid-token", "Bot invalid-token"):
            await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
            return
        shard = _shard(data.get("shard"))
        if shard is None:
            await ws.close(code=INVALID_SHARD, message=b"Invalid shard.")
            return
        session = Session(*shard, int(data.get("intents") or 0))
        world = self._world
        guilds = [
            g for g in world.guilds.values() if session.owns(g.id) and world.bot.id in g.members
        ]
        if len(guilds) > MAX_GUILDS_PER_SHARD:
            await ws.close(code=SHARDING_REQUIRED, message=b"Sharding required.")
            return
        session.ws = ws
        self._forget_expired()
        self.sessions[session.id] = session
        session.guild_ids = {g.id for g in guilds}
        await self.dispatch([session], "READY", self._ready_payload(session, guilds))
        for guild in guilds:
            await self.dispatch([session], "GUILD_CREATE", world.guild_create_payload(guild))
        session.identified = True
        self._changed()
        log.debug("session %s identified as shard %s/%s", session.id, *shard)

    def _ready_payload(self, session: Session, guilds: list[Guild]) -> dict[str, JSON]:
        world = self._world
        return {
            "v": 10,
            "user": {**world.bot.payload(), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self._gateway_url(),
            "application": {"id": str(world.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "shard": [session.shard_id, session.shard_count],
            "_trace": ["sandbox"],
        }

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, JSON]) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None:
            await _send(ws, {"op": INVALID_SESSION, "d": False})
            return
        since = int(data.get("seq") or 0)
        async with session.lock:  # replay before any new dispatch goes out on this socket
            session.ws = ws
            session.detached_at = None
            for event in session.log:
                if event["s"] > since:
                    await ws.send_str(json.dumps(event))
        await self.dispatch([session], "RESUMED", {"_trace": ["sandbox"]})
        self._changed()
        log.debug("session %s resumed from seq %s", session.id, since)

    # --- sending -------------------------------------------------------------------------

    async def dispatch(self, sessions: Iterable[Session], event: str, data: JSON) -> None:
        """Send a DISPATCH to each session now, or keep it for replay while it reconnects."""
        for session in sessions:
            async with session.lock:
                session.seq += 1
                payload = {"op": DISPATCH, "t": event, "s": session.seq, "d": data}
                session.log.append(payload)
                del session.log[:-REPLAY_KEEP]
                ws = session.ws
                if ws is not None and not ws.closed:
                    try:
                        await ws.send_str(json.dumps(payload))
                    except ConnectionError:
                        log.debug("gateway send failed; %s kept for RESUME", event)

    async def announce_guild(self, guild: Guild) -> None:
        """GUILD_CREATE for a guild the bot joined after its sessions identified."""
        payload = self._world.guild_create_payload(guild)
        # A join carries no "unavailable": false, which would mean "an outage ended" (discord.py
        # fires guild_available for that, guild_join for this).
        del payload["unavailable"]
        for session in self.sessions_for(guild.id):
            if guild.id not in session.guild_ids:
                session.guild_ids.add(guild.id)
                await self.dispatch([session], "GUILD_CREATE", payload)

    async def leave_guild(self, guild_id: int) -> None:
        """GUILD_DELETE without ``unavailable``: the bot was removed (discord.py fires
        guild_remove for that; with ``unavailable`` it would be an outage)."""
        for session in self.sessions_for(guild_id):
            if guild_id in session.guild_ids:
                session.guild_ids.discard(guild_id)
                await self.dispatch([session], "GUILD_DELETE", {"id": str(guild_id)})

    async def disconnect(self, *, resumable: bool) -> None:
        """Drop the socket of the newest connected session."""
        connected = [s for s in self.sessions.values() if s.ws is not None]
        if not connected:
            return
        session = connected[-1]
        if not resumable:
            del self.sessions[session.id]  # its RESUME will be refused: the bot IDENTIFYs again
        ws, session.ws = session.ws, None
        session.detached_at = time.monotonic()
        self._changed()
        assert ws is not None
        # 4000 ("unknown error") is a close discord.py reconnects from, trying RESUME first.
        await ws.close(code=4000, message=b"Sandbox disconnect")

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"Emulator stopping")
        self._sockets.clear()
        self.sessions.clear()
        self._changed()


def _shard(raw: JSON) -> tuple[int, int] | None:
    """IDENTIFY's ``shard`` as (shard_id, shard_count), or None if Discord would refuse it.
    Absent (or null), it is the one shard of an unsharded bot."""
    if raw is None:
        return 0, 1
    if not isinstance(raw, list) or len(raw) != 2:
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in raw):
        return None
    shard_id, shard_count = raw
    return (shard_id, shard_count) if 0 <= shard_id < shard_count else None


def recommended_shards(guild_count: int) -> int:
    """What GET /gateway/bot recommends unless told otherwise: one shard, or as many as keep
    each under Discord's 2,500-guild limit."""
    return max(1, math.ceil(guild_count / MAX_GUILDS_PER_SHARD))


async def _send(ws: web.WebSocketResponse, payload: dict[str, JSON]) -> None:
    """A frame outside any session's sequence (HELLO, HEARTBEAT_ACK, INVALID_SESSION).

    aiohttp writes an uncompressed frame in one piece, so these need no lock to stay whole.
    """
    payload.setdefault("s", None)
    payload.setdefault("t", None)
    payload.setdefault("d", None)
    await ws.send_str(json.dumps(payload))
