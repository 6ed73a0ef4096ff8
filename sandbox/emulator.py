"""A Discord stand-in on 127.0.0.1 that the real, unmodified discord.py bot talks to.

One aiohttp app serves the REST API under ``/api/v10`` and the gateway websocket at ``/gateway``.
Tests, benchmarks and ``python bot.py sandbox`` build a small world (guilds, channels, members),
act as members (slash commands, buttons, selects, modals, autocomplete) and read back what the
bot did. Every request body is checked against Discord's OpenAPI spec and the limits the spec
lacks; each break is answered as Discord would answer it *and* recorded in ``violations``.

Messages are stored as full Discord message objects (plus the ``allowed_mentions`` the bot sent),
with ``mentions``, ``mention_roles`` and ``mention_everyone`` worked out as Discord does, so a
test can assert that nobody was pinged. Attachment bytes are not inside the message dicts (they
travel as JSON to the bot); read them with ``Emulator.attachment_bytes(message, filename)``.

``channel_messages`` and ``dm_messages`` list what everyone in the channel sees: ephemeral
interaction replies are left out (read them through ``Interaction.message()``).

Members write too: ``send_message(user, channel, text, reply_to=...)`` in a server's channel or
their DM with the bot (``send_dm``), ``mention_bot(user, channel, text)`` for ``<@bot> text``,
``send_webhook_message`` for a webhook, and ``add_user(..., bot=True)`` for another bot. Each
goes out as MESSAGE_CREATE as Discord sends it: a server's to the sessions of the shard that owns
it with the GUILD_MESSAGES intent (if the bot sees the channel), a DM to shard 0's with
DIRECT_MESSAGES; without the privileged MESSAGE_CONTENT intent a server message arrives with
empty content, embeds, attachments and components unless it mentions the bot (a reply that pings
it counts). ``wait_for_message(channel, after=message)`` waits for the bot's answer. The bot's
replies (``message_reference``) are stored with ``referenced_message``, type 19, and ping the
replied-to author unless ``allowed_mentions`` leaves ``replied_user`` out or false. (Unlike
Discord, the emulator does not echo the bot's own posts back to it as MESSAGE_CREATE.)

Where the app is installed: to the servers it is in (a guild install; ``add_guild(...,
bot=False)`` makes one it is not in) and, after ``install_for_user(user)``, to that member's
account (a user install), which follows them into the bot's DM, group DMs (``add_group_dm``)
and servers without the bot. Interactions carry ``context`` (0 a server, 1 the bot's DM, 2 a
group DM) and ``authorizing_integration_owners`` ({"0": the server's id, or "0" in the bot's
DM; "1": the installing member's id}) for the installs their command's ``integration_types``
list (absent: [0], the emulated app's setting); a command whose ``contexts`` or
``integration_types`` do not fit where the member is raises PermissionError, as the client
would not offer it, and a place no install reaches raises LookupError. Presses and modal
submits keep the owners of the interaction they came from. An interaction from a server without
the bot goes to the shard the server would be on.

Exactly once, counted: ``message_create_requests`` (and ``message_create_requests_in(channel)``)
counts the Create Message requests answered with a message, including those answered with an
earlier one because their enforced nonce was seen, which ``deduplicated_nonces`` (and
``deduplicated_nonces_in(channel)``) counts apart: Discord drops those copies, so a test asserts
``deduplicated_nonces == 0`` to prove nothing was even sent twice. ``fail_next(...,
handled=True)`` loses Discord's answer after the message was made, as a retry meets it.

Beyond the happy path it plays the parts of Discord a reliable bot must cope with: members who
close their DMs (403, code 50007), a global rate limit (429 that discord.py waits out), enforced
nonces that return the first message instead of a second, members writing DMs to the bot, and
several gateway sessions at once (two processes, or shards that each hear only their guilds),
permissions (a channel the bot cannot see is 403 Missing Access, 50001; one it may not post in,
403 Missing Permissions, 50013), channels deleted under it, being removed from a server, and
files over the upload limit each interaction announces (413, 40005).
Ids may be fixed (``add_guild(..., id=...)``) so a sandbox keeps its server across runs.

Shards: each IDENTIFY names its ``[shard_id, shard_count]``; a session hears the guilds
``(guild_id >> 22) % shard_count`` gives its shard, and DMs if it is shard 0. Interactions go the
same way, so several processes, each with its own shards, answer for their own guilds. GET
/gateway/bot recommends ``recommended_shards``. An interaction no session can hear comes back
undelivered: ``Interaction.delivered`` is False and waiting on it raises ``DidNotRespond`` at
once, what the member's client shows as "The application did not respond".
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from . import _validation
from ._gateway import (
    DIRECT_MESSAGES,
    GUILD_MESSAGES,
    MESSAGE_CONTENT,
    Gateway,
    Session,
    recommended_shards,
)
from ._interactions import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    Interaction,
    command_data,
    find_component,
    modal_submit_data,
    select_values,
)
from ._rest import KNOWN_ERRORS, ApiError, RestApi, rate_limited
from ._world import (
    ADMINISTRATOR,
    ATTACHMENT_SIZE_LIMIT,
    DM,
    GROUP_DM,
    GUILD_ANNOUNCEMENT,
    GUILD_TEXT,
    MANAGE_GUILD,
    MESSAGE_CHANNEL_TYPES,
    MESSAGE_EPHEMERAL,
    SEND_MESSAGES,
    USE_APPLICATION_COMMANDS,
    Channel,
    Member,
    World,
    now_iso,
)

log = logging.getLogger(__name__)

JSON = Any
# How Discord's settings name the permissions a command may require (the console shows them).
PERMISSION_NAMES = {MANAGE_GUILD: "Manage Server", ADMINISTRATOR: "Administrator"}
DEFAULT_SPEC_PATH = (
    Path(__file__).resolve().parents[1].parent / "shared/discord-api-spec/openapi.json"
)
DEFAULT_APPLICATION_ID = 1_290_000_000_000_000_001
TEXT_TYPES = (GUILD_TEXT, GUILD_ANNOUNCEMENT)
# Interaction context types: a server, the bot's DM with the member, any other private channel.
GUILD_CONTEXT, BOT_DM_CONTEXT, PRIVATE_CHANNEL_CONTEXT = 0, 1, 2
# Installation types (keys of authorizing_integration_owners): to a server, to a member's account.
GUILD_INSTALL, USER_INSTALL = "0", "1"
CONTEXT_PLACES = {
    GUILD_CONTEXT: "in a server",
    BOT_DM_CONTEXT: "in the bot's DMs",
    PRIVATE_CHANNEL_CONTEXT: "in a group DM",
}
# What a member's message loses for a session without MESSAGE_CONTENT (unless it mentions the
# bot or is a DM); ``poll`` is left out altogether (discord-api-docs #6869).
CONTENT_FIELDS = {"content": "", "embeds": [], "attachments": [], "components": []}


@dataclass
class Violation:
    """A rule the bot broke: which request, which rule, and the details."""

    method: str
    path: str
    rule: str
    detail: str


@dataclass
class RequestRecord:
    """One REST request the bot made (path without ``/api/v10``; ``json`` is payload_json for
    multipart bodies; ``files`` lists uploaded files' names and sizes)."""

    method: str
    path: str
    query: dict[str, str]
    json: JSON = None
    files: list[dict[str, JSON]] = field(default_factory=list)
    status: int = 0


@dataclass(frozen=True)
class GatewaySession:
    """What a test may want to know about one gateway session."""

    id: str
    shard: tuple[int, int]
    intents: int
    live: bool  # identified, guilds announced, and connected (not waiting to RESUME)
    guilds: frozenset[int]  # the guilds it was sent GUILD_CREATE for, and not removed from


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    code: int | None
    times: int
    retry_after: float
    handled: bool


class Emulator:
    """The emulated Discord; see the module docstring.

    A server (``add_guild``) has three roles: @everyone, whose id is the server's id (what an
    ordinary member may do); the bot's own managed role, ``bot_role_id(guild_id)``, which the
    bot holds; and "Moderators" (Manage Server), ``moderators_role_id(guild_id)``, given by
    ``add_member(..., manage_guild=True)``. ``add_role`` makes more, for ``add_member(...,
    roles=[...])``. Its owner is a user of its own, never the bot (an owner holds everything).
    Channels are text (``add_text_channel``) or of any type ``add_channel`` takes;
    ``set_permissions`` overwrites a role's or a user's (the bot's is ``application_id``)
    permissions in one. ``permissions(user_id, channel_id)`` is what Discord computes from all
    that, and what the emulator checks the bot's posts and the members' commands against.
    """

    def __init__(
        self,
        *,
        spec_path: Path | None = DEFAULT_SPEC_PATH,
        application_id: int = DEFAULT_APPLICATION_ID,
        bot_name: str = "Crossroads",
        host: str = "127.0.0.1",
        port: int = 0,
        response_deadline: float = 3.0,
        record_requests: bool = True,
        global_rate_limit: float | None = None,
        recommended_shards: int | None = None,
        attachment_size_limit: int = ATTACHMENT_SIZE_LIMIT,
    ) -> None:
        # record_requests=False keeps `requests` empty: a long benchmark would otherwise hold
        # every request body alive, and the collector's pauses would grow with it.
        self.record_requests = record_requests
        self.application_id = application_id
        self.bot_user_id = application_id
        self.response_deadline = response_deadline
        self.global_rate_limit = global_rate_limit
        self.recommended_shards = recommended_shards
        # Bytes of files one request may upload (sent with each interaction, as Discord does);
        # over it, 413 with code 40005.
        self.attachment_size_limit = attachment_size_limit
        self.violations: list[Violation] = []
        self.requests: list[RequestRecord] = []
        # Answers that are Discord behaving as Discord does, not the bot misbehaving, so they
        # are counted rather than recorded as violations.
        self.rate_limited_count = 0  # every 429 answered (global or injected)
        self._dm_attempts: Counter[int] = Counter()  # user id -> POSTs to their DM channel
        # channel id -> creates answered with a message / with an earlier one (enforced nonce)
        self._creates: Counter[int] = Counter()
        self._deduplicated: Counter[int] = Counter()
        self._created_at: dict[str, list[float]] = {}  # token -> when each message was created
        self._user_installs: set[int] = set()  # members who installed the app to their account
        self._webhooks: dict[tuple[int, str], int] = {}  # (channel, name) -> its webhook's id
        self._message_stored = asyncio.Event()  # set (and replaced) as each message is stored
        self._spec_path = spec_path
        self._host = host
        self._port = port
        self._world = World(application_id, bot_name)
        self._world.on_message = self._stored
        self._validator: _validation.SpecValidator | None = None
        self._gateway = Gateway(self._world, lambda: self.gateway_url)
        self._rest = RestApi(self)
        self._runner: web.AppRunner | None = None
        self._failures: list[_Failure] = []
        self._interactions: dict[int, Interaction] = {}
        self._interactions_by_token: dict[str, Interaction] = {}
        # (user id, modal custom_id) -> the interaction that opened it: where a submit comes from.
        self._modal_origins: dict[tuple[int, Any], Interaction] = {}
        self._deleted: set[int] = set()
        # (guild id, command name, user id): members a server lets use a command regardless.
        self._command_grants: set[tuple[int, str, int]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._validator = _validation.load_validator(self._spec_path)
        app = web.Application(client_max_size=100 * 1024 * 1024)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest.handle)
        app.router.add_get("/gateway", self._gateway.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        self._port = self._runner.addresses[0][1]
        log.info("Discord emulator listening on %s", self.api_base)

    async def stop(self) -> None:
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        await self._gateway.close()
        await runner.cleanup()
        for task in list(self._tasks):
            task.cancel()

    @property
    def global_rate_limit(self) -> float | None:
        """Requests per second the bot may make across its REST calls, interaction callbacks
        and interaction webhooks excepted (Discord exempts them); None: unlimited. Over it,
        a global 429 answers, which discord.py waits out and retries. May change any time."""
        return self._global_rate_limit

    @global_rate_limit.setter
    def global_rate_limit(self, limit: float | None) -> None:
        if limit is not None and not limit > 0:
            raise ValueError(f"global_rate_limit must be positive or None, not {limit}")
        self._global_rate_limit = limit

    @property
    def recommended_shards(self) -> int:
        """The shard count GET /gateway/bot recommends, which discord.py's AutoShardedClient
        uses when it is given no ``shard_count``. Set a number (or None, the default: one
        shard per 2,500 guilds the bot is in, at least one, so Discord's limit is never
        broken); may change any time."""
        if self._recommended_shards is not None:
            return self._recommended_shards
        bot = self._world.bot.id
        return recommended_shards(sum(bot in g.members for g in self._world.guilds.values()))

    @recommended_shards.setter
    def recommended_shards(self, count: int | None) -> None:
        if count is not None and not count >= 1:
            raise ValueError(f"recommended_shards must be at least 1 or None, not {count}")
        self._recommended_shards = count

    @property
    def validating(self) -> bool:
        return self._validator is not None

    @property
    def api_base(self) -> str:
        return f"http://{self._host}:{self._port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self._host}:{self._port}/gateway"

    async def wait_until_ready(
        self,
        timeout: float = 10,  # noqa: ASYNC109 (fixed API)
        *,
        sessions: int = 1,
    ) -> None:
        """Until ``sessions`` gateway sessions are live: identified, sent READY plus their
        GUILD_CREATEs, and connected (a dropped one counts again once it has resumed)."""
        await asyncio.wait_for(self._gateway.wait_for_live(sessions), timeout)

    async def disconnect_gateway(self, *, resumable: bool = True) -> None:
        """Drop the newest session's websocket; the bot RESUMEs (or, if not resumable,
        IDENTIFYs again)."""
        await self._gateway.disconnect(resumable=resumable)

    @property
    def session_count(self) -> int:
        """Live gateway sessions (see ``wait_until_ready``)."""
        return self._gateway.live_count

    def gateway_sessions(self) -> list[GatewaySession]:
        """Every session the emulator keeps (live or awaiting a RESUME), oldest first."""
        return [
            GatewaySession(
                s.id, (s.shard_id, s.shard_count), s.intents, s.live, frozenset(s.guild_ids)
            )
            for s in self._gateway.sessions.values()
        ]

    # --- the world ---------------------------------------------------------------------------

    # ``id`` fixes an object's id (so a sandbox keeps the same server and member across runs);
    # it must not be taken (ValueError), and no generated id will ever equal it.

    @property
    def bot_name(self) -> str:
        """The bot's username (what a member types after @ to mention it)."""
        return self._world.bot.name

    def add_guild(
        self, name: str = "Test Server", *, id: int | None = None, bot: bool = True
    ) -> int:
        """A server with the bot in it (GUILD_CREATE to the sessions that hear it), or with
        ``bot=False`` one the bot is not in: no session hears of it, and only members who
        installed the app to their account (``install_for_user``) can use it there."""
        guild = self._world.add_guild(name, id, bot=bot)
        if bot and self._gateway.sessions:
            self._later(self._gateway.announce_guild(guild))
        return guild.id

    def add_channel(
        self,
        guild_id: int,
        name: str,
        *,
        type: int = GUILD_TEXT,
        id: int | None = None,
        parent_id: int | None = None,
    ) -> int:
        """A channel of ``type`` (GUILD_TEXT 0, GUILD_VOICE 2, GUILD_CATEGORY 4,
        GUILD_ANNOUNCEMENT 5), optionally in the category ``parent_id``, whose overwrites it
        starts with (synced, as on Discord)."""
        channel = self._world.add_channel(guild_id, name, type, id, parent_id)
        self._dispatch_to_guild(guild_id, "CHANNEL_CREATE", self._world.channel_payload(channel))
        return channel.id

    def add_text_channel(
        self, guild_id: int, name: str = "general", *, id: int | None = None
    ) -> int:
        return self.add_channel(guild_id, name, id=id)

    def set_permissions(
        self, channel_id: int, target_id: int, *, allow: int = 0, deny: int = 0
    ) -> None:
        """Overwrite the permissions of a role (the guild's id is @everyone) or a user (the bot
        is ``application_id``) in the channel; nothing allowed or denied removes the overwrite.
        On a category, channels synced with it change too. Each changed channel is sent as
        CHANNEL_UPDATE."""
        for channel in self._world.set_overwrite(channel_id, target_id, allow, deny):
            self._channel_event("CHANNEL_UPDATE", channel)

    def delete_channel(self, channel_id: int) -> None:
        """Delete a guild channel (CHANNEL_DELETE); REST on it then answers 404 Unknown Channel.
        A category's channels stay, without a parent (a CHANNEL_UPDATE each), as on Discord."""
        channel = self._world.guild_channel(channel_id)
        payload = self._world.channel_payload(channel)
        orphans = self._world.delete_channel(channel_id)
        self._channel_event("CHANNEL_DELETE", channel, payload)
        for orphan in orphans:
            self._channel_event("CHANNEL_UPDATE", orphan)

    def remove_guild(self, guild_id: int) -> None:
        """The bot is removed from the server: GUILD_DELETE (no ``unavailable``, so discord.py
        fires ``on_guild_remove``), and from then on REST about the server or its channels
        answers 403 Missing Access (50001) and its members can no longer reach the bot there."""
        self._world.remove_bot(guild_id)
        if self._gateway.sessions_for(guild_id):
            self._later(self._gateway.leave_guild(guild_id))

    def add_role(
        self, guild_id: int, name: str, *, permissions: int = 0, id: int | None = None
    ) -> int:
        """A role to give members with ``add_member(..., roles=[...])``."""
        return self._world.add_role(guild_id, name, permissions, id).id

    def moderators_role_id(self, guild_id: int) -> int:
        """The server's "Moderators" role (Manage Server)."""
        return self._world.guild(guild_id).moderators_role_id

    def bot_role_id(self, guild_id: int) -> int:
        """The bot's own role, managed by Discord, holding what the bot was invited with."""
        return self._world.guild(guild_id).bot_role_id

    def permissions(self, user_id: int, channel_id: int) -> int:
        """The user's permissions in the channel, as Discord computes them (roles, then the
        channel's overwrites); what ``member.permissions`` of an interaction there carries."""
        return self._world.permissions(user_id, channel_id)

    def guild_channels(self, guild_id: int) -> list[dict[str, JSON]]:
        """The server's channels (Discord channel objects), in order."""
        guild = self._world.guild(guild_id)
        return [self._world.channel_payload(self._world.channels[c]) for c in guild.channel_ids]

    def add_user(self, name: str, *, id: int | None = None, bot: bool = False) -> int:
        """A user; ``bot=True`` makes another bot (``author.bot`` on what it posts)."""
        return self._world.add_user(name, id, bot=bot).id

    def add_group_dm(self, owner_id: int, member_ids: Iterable[int] = (), *, name: str = "") -> int:
        """A group DM of people (never the bot): where a member who installed the app to their
        account can use its commands (context 2, PRIVATE_CHANNEL) though the bot cannot read
        or post there (REST answers 403 Missing Access)."""
        return self._world.add_group_dm(owner_id, list(member_ids), name).id

    def install_for_user(self, user_id: int) -> None:
        """The member adds the app to their account (Discord's user install): its commands
        whose ``integration_types`` include 1 follow them into DMs, group DMs and servers the
        bot is not in, and their interactions carry ``authorizing_integration_owners`` {"1":
        user_id}."""
        self._world.user(user_id)  # must exist
        self._user_installs.add(user_id)

    def uninstall_for_user(self, user_id: int) -> None:
        """The member removes the app from their account."""
        self._user_installs.discard(user_id)

    def installed_for_user(self, user_id: int) -> bool:
        return user_id in self._user_installs

    def add_member(
        self,
        guild_id: int,
        user_id: int,
        *,
        manage_guild: bool = False,
        roles: Iterable[int] = (),
    ) -> None:
        """Make the user a member with ``roles`` (and the Moderators role if ``manage_guild``)."""
        self._world.user(user_id)  # must exist
        guild = self._world.guild(guild_id)
        role_ids = list(roles) + ([guild.moderators_role_id] if manage_guild else [])
        unknown = [r for r in role_ids if r not in guild.roles or r == guild.id]
        if unknown:
            raise LookupError(f"no roles {unknown} to give in guild {guild_id}")
        guild.members[user_id] = Member(user_id, role_ids)

    def add_members(self, guild_id: int, user_ids: Iterable[int]) -> None:
        """Make each user an ordinary member, all joining now: a benchmark's large server in a
        fraction of the time one ``add_member`` each takes (one join time, one lookup)."""
        guild, users = self._world.guild(guild_id), self._world.users
        joined = now_iso()
        for user_id in user_ids:
            if user_id not in users:
                raise LookupError(f"no user {user_id}")
            guild.members[user_id] = Member(user_id, joined_at=joined)

    def allow_command(self, guild_id: int, command_name: str, user_id: int) -> None:
        """Let the member use /command_name in the server whatever its
        ``default_member_permissions`` (a server's Integrations settings can do that), so a
        test can prove the bot checks permissions itself."""
        self._world.guild(guild_id)  # must exist
        self._command_grants.add((guild_id, command_name, user_id))

    def set_dms_open(self, user_id: int, open: bool) -> None:
        """Whether the member accepts DMs from the bot (default: open). While closed, a message
        to their DM channel is refused with 403, code 50007, as on Discord; opening the DM
        channel still works. Not a violation: it is the member's choice."""
        self._world.user(user_id)  # must exist
        if open:
            self._world.dms_closed.discard(user_id)
        else:
            self._world.dms_closed.add(user_id)

    def _dispatch_to_guild(self, guild_id: int, event: str, payload: dict[str, JSON]) -> None:
        """Send a guild's event to the sessions that hear about it (none before any connects)."""
        sessions = self._gateway.sessions_for(guild_id)
        if sessions:
            self._later(self._gateway.dispatch(sessions, event, payload))

    def _channel_event(
        self, event: str, channel: Channel, payload: dict[str, JSON] | None = None
    ) -> None:
        assert channel.guild_id is not None
        payload = payload or self._world.channel_payload(channel)
        self._dispatch_to_guild(channel.guild_id, event, payload)

    def _later(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- acting as a member ----------------------------------------------------------------

    async def slash(
        self,
        user_id: int,
        command_line: str,
        *,
        options: Mapping[str, object] | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        enforce_client_limits: bool = True,
    ) -> Interaction:
        """Invoke ``/command [group] [subcommand]`` with ``options`` (name -> value).

        Values are coerced to the option types; user/channel options accept ids, names,
        ``@name``/``#name`` and fill ``resolved``. Unknown or missing required options raise
        ValueError, and so do values a member's client would refuse (not among the choices,
        outside min/max, a channel the picker would not offer) unless
        ``enforce_client_limits=False``, which also lets a command be sent from where its
        ``contexts`` say the client would not offer it (a forged or out-of-date client).
        A command the member may not use there raises PermissionError, one the app cannot be
        reached with there LookupError (see ``_authorize``).
        """
        name, *path = command_line.strip().lstrip("/").split()
        guild_id, channel_id = self._where(user_id, guild_id, channel_id)
        command = self._command(name, guild_id)
        owners = self._authorize(command, user_id, channel_id, check_contexts=enforce_client_limits)
        data = command_data(
            self._world,
            command,
            path,
            options or {},
            user_id=user_id,
            channel_id=channel_id,
            enforce_client_limits=enforce_client_limits,
        )
        return await self._send(
            APPLICATION_COMMAND, user_id, data, guild_id, channel_id, owners=owners
        )

    async def autocomplete(
        self,
        user_id: int,
        command_line: str,
        *,
        focused: str,
        value: str,
        options: Mapping[str, object] | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> list[dict[str, JSON]]:
        """Type ``value`` into option ``focused``; returns the choices the bot answered."""
        interaction = await self.type_into(
            user_id,
            command_line,
            focused=focused,
            value=value,
            options=options,
            guild_id=guild_id,
            channel_id=channel_id,
        )
        return await interaction.choices()

    async def type_into(
        self,
        user_id: int,
        command_line: str,
        *,
        focused: str,
        value: str,
        options: Mapping[str, object] | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
    ) -> Interaction:
        """``autocomplete`` without waiting: the interaction, to watch whether and how the bot
        answers it."""
        name, *path = command_line.strip().lstrip("/").split()
        guild_id, channel_id = self._where(user_id, guild_id, channel_id)
        command = self._command(name, guild_id)
        owners = self._authorize(command, user_id, channel_id, check_contexts=True)
        given = {**(options or {}), focused: value}
        data = command_data(
            self._world,
            command,
            path,
            given,
            user_id=user_id,
            channel_id=channel_id,
            focused=focused,
        )
        return await self._send(AUTOCOMPLETE, user_id, data, guild_id, channel_id, owners=owners)

    async def click(self, user_id: int, message: dict[str, JSON], custom_id: str) -> Interaction:
        """Press the button ``custom_id`` on ``message``, exactly as given (it is what the member
        sees; a test may pass an old or forged copy to press stale buttons)."""
        button = find_component(message, custom_id, 2)
        if button.get("disabled"):
            raise ValueError(f"button {custom_id!r} is disabled")
        data: dict[str, JSON] = {"custom_id": custom_id, "component_type": 2}
        if "id" in button:
            data["id"] = button["id"]
        return await self._send_component(user_id, message, data)

    async def select(
        self, user_id: int, message: dict[str, JSON], custom_id: str, values: list[str]
    ) -> Interaction:
        """Pick ``values`` in the string select ``custom_id`` on ``message`` (as given)."""
        menu = find_component(message, custom_id, 3)
        if menu.get("disabled"):
            raise ValueError(f"select {custom_id!r} is disabled")
        data: dict[str, JSON] = {
            "custom_id": custom_id,
            "component_type": 3,
            "values": select_values(menu, values),
        }
        if "id" in menu:
            data["id"] = menu["id"]
        return await self._send_component(user_id, message, data)

    async def submit_modal(
        self,
        user_id: int,
        modal: dict[str, JSON],
        values: dict[str, str | list[str]],
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        enforce_client_limits: bool = True,
    ) -> Interaction:
        """Fill in and submit ``modal`` (the ``data`` of a type-9 callback).

        Where it is submitted from defaults to where the modal was opened. With
        ``enforce_client_limits=False`` over-long or missing values go through unchecked.
        """
        data = modal_submit_data(modal, values, enforce_client_limits=enforce_client_limits)
        origin = self._modal_origins.get((user_id, modal.get("custom_id")))
        message = None
        owners = None
        if guild_id is None and channel_id is None and origin is not None:
            guild_id, channel_id = origin.guild_id, origin.channel_id
            owners = dict(origin.payload.get("authorizing_integration_owners") or {}) or None
            if origin.source_message_id is not None:
                message = self._world.messages[origin.source_message_id]
        guild_id, channel_id = self._where(user_id, guild_id, channel_id)
        return await self._send(
            MODAL_SUBMIT, user_id, data, guild_id, channel_id, message, owners=owners
        )

    async def send_dm(self, user_id: int, content: str) -> dict[str, JSON]:
        """The member writes ``content`` in their DM channel with the bot (``send_message``
        in ``dm_channel_id(user_id)``). Returns the message."""
        return await self.send_message(user_id, self.dm_channel_id(user_id), content)

    async def send_message(
        self,
        user_id: int,
        channel_id: int,
        content: str = "",
        *,
        reply_to: int | Mapping[str, JSON] | None = None,
        mention_author: bool = True,
        embeds: list[dict[str, JSON]] | None = None,
        type: int = 0,
    ) -> dict[str, JSON]:
        """The user (a member, or another bot made with ``add_user(..., bot=True)``) posts in
        a channel of a server they are in, their DM with the bot, or a group DM of theirs.

        ``reply_to`` (a message or its id, in the same channel) makes it a reply, which pings
        that message's author unless ``mention_author`` is False, as the client's toggle does.
        ``type`` other than 0 posts a system message (7: a member joined, ...).

        The message is stored and MESSAGE_CREATE goes where Discord sends it: for a server,
        to the sessions of the shard that owns it that asked for GUILD_MESSAGES, if the bot is
        in the server and can see the channel; for a DM, to shard 0's sessions with
        DIRECT_MESSAGES; a group DM never reaches the bot. A session without the privileged
        MESSAGE_CONTENT intent gets ``content``, ``embeds``, ``attachments`` and
        ``components`` empty unless the message is a DM or mentions the bot (``<@id>``,
        ``<@!id>``, or a reply that pings it). Server messages carry ``guild_id`` and the
        author's partial ``member``. Returns the message as everyone sees it.
        """
        world = self._world
        author = world.user(user_id)
        channel = self._postable(user_id, channel_id)
        body: dict[str, JSON] = {"content": content, "embeds": embeds or []}
        reference = None
        if reply_to is not None:
            reference = self._replied(channel_id, reply_to)
            body["allowed_mentions"] = {
                "parse": ["users", "roles", "everyone"],
                "replied_user": mention_author,
            }
        extra: dict[str, JSON] = {"author": author.payload()}
        if type != 0:
            extra["type"] = type
        message = world.create_message(channel.id, body, [], reference=reference, **extra)
        message.pop("allowed_mentions", None)  # what a bot sent is kept; a member sent none
        await self._deliver(message)
        return copy.deepcopy(message)

    async def mention_bot(
        self,
        user_id: int,
        channel_id: int,
        text: str,
        *,
        nickname_form: bool = False,
        reply_to: int | Mapping[str, JSON] | None = None,
    ) -> dict[str, JSON]:
        """``send_message`` of ``<@bot_id> text`` (``<@!bot_id> text`` with
        ``nickname_form``, as older clients wrote it): a member addressing the bot."""
        mention = f"<@!{self.bot_user_id}>" if nickname_form else f"<@{self.bot_user_id}>"
        return await self.send_message(user_id, channel_id, f"{mention} {text}", reply_to=reply_to)

    async def send_webhook_message(
        self,
        channel_id: int,
        content: str,
        *,
        username: str = "Captain Hook",
        embeds: list[dict[str, JSON]] | None = None,
    ) -> dict[str, JSON]:
        """A webhook of the server posts in the channel: ``webhook_id`` set, the author the
        webhook (``bot`` true, no member), delivered as ``send_message`` delivers."""
        channel = self._world.guild_channel(channel_id)
        if channel.type not in MESSAGE_CHANNEL_TYPES:
            raise ValueError(f"channel {channel_id} holds no messages")
        webhook_id = self._webhooks.setdefault((channel_id, username), self._world.snowflake())
        author = {
            "id": str(webhook_id),
            "username": username,
            "discriminator": "0000",
            "global_name": None,
            "avatar": None,
            "bot": True,
        }
        body = {"content": content, "embeds": embeds or []}
        message = self._world.create_message(
            channel_id, body, [], author=author, webhook_id=str(webhook_id)
        )
        await self._deliver(message)
        return copy.deepcopy(message)

    async def wait_for_message(
        self,
        channel_id: int,
        *,
        after: int | Mapping[str, JSON] | None = None,
        author_id: int | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 (fixed API)
    ) -> dict[str, JSON]:
        """The first message in the channel everyone sees (so not an ephemeral one) by
        ``author_id`` (default: the bot) posted after ``after`` (a message or its id), as soon
        as there is one; TimeoutError if none comes within ``timeout`` seconds."""
        author = str(self.bot_user_id if author_id is None else author_id)
        after_id = int(after["id"]) if isinstance(after, Mapping) else (after or 0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            stored = self._message_stored  # before looking: a message stored meanwhile wakes us
            for message in self.channel_messages(channel_id):
                if int(message["id"]) > after_id and message["author"]["id"] == author:
                    return message
            remaining = deadline - loop.time()
            try:
                await asyncio.wait_for(stored.wait(), max(remaining, 0))
            except TimeoutError:
                raise TimeoutError(
                    f"no message by {author} in channel {channel_id} within {timeout} s"
                ) from None

    def _stored(self, message: dict[str, JSON]) -> None:
        self._message_stored.set()
        self._message_stored = asyncio.Event()

    def _postable(self, user_id: int, channel_id: int) -> Channel:
        """The channel, if the user's client would let them post there (else LookupError, or
        PermissionError where they lack VIEW_CHANNEL or SEND_MESSAGES)."""
        world = self._world
        channel = world.channels.get(channel_id)
        if channel is None:
            raise LookupError(f"no channel {channel_id}")
        if channel.type == DM and channel.recipient_id != user_id:
            raise PermissionError(f"channel {channel_id} is another member's DM with the bot")
        if channel.type == GROUP_DM and user_id not in channel.recipients:
            raise PermissionError(f"user {user_id} is not in the group DM {channel_id}")
        if channel.guild_id is None:
            return channel
        if user_id not in world.guild(channel.guild_id).members:
            raise LookupError(f"user {user_id} is not a member of guild {channel.guild_id}")
        if channel.type not in MESSAGE_CHANNEL_TYPES:
            raise ValueError(f"#{channel.name} holds no messages")
        if not world.can_access(user_id, channel_id) or not (
            world.permissions(user_id, channel_id) & SEND_MESSAGES
        ):
            raise PermissionError(f"user {user_id} may not post in #{channel.name}")
        return channel

    def _replied(self, channel_id: int, reply_to: int | Mapping[str, JSON]) -> dict[str, JSON]:
        message_id = int(reply_to["id"]) if isinstance(reply_to, Mapping) else reply_to
        message = self._world.messages.get(message_id)
        if (
            message is None
            or int(message["channel_id"]) != channel_id
            or message_id in self._deleted
            or message["flags"] & MESSAGE_EPHEMERAL
        ):
            raise LookupError(f"no message {message_id} to reply to in channel {channel_id}")
        return message

    async def _deliver(self, message: dict[str, JSON]) -> None:
        """MESSAGE_CREATE of a message someone other than the bot posted, to the sessions
        Discord sends it to, without content for those that may not read it."""
        world = self._world
        channel = world.channels[int(message["channel_id"])]
        payload = copy.deepcopy(message)
        if channel.type == GROUP_DM:
            return  # the bot is in no group DM
        if channel.guild_id is None:
            sessions = self._gateway.sessions_for(None, intents=DIRECT_MESSAGES)
        else:
            guild = world.guild(channel.guild_id)
            if world.bot.id not in guild.members or not world.can_access(world.bot.id, channel.id):
                return
            sessions = self._gateway.sessions_for(guild.id, intents=GUILD_MESSAGES)
            author = int(message["author"]["id"])
            if "webhook_id" not in message and author in guild.members:
                payload["member"] = world.partial_member(guild, author)
        readers: list[Session] = []
        others: list[Session] = []
        for session in sessions:
            (readers if session.intents & MESSAGE_CONTENT else others).append(session)
        if readers:
            await self._gateway.dispatch(readers, "MESSAGE_CREATE", payload)
        if others:
            await self._gateway.dispatch(others, "MESSAGE_CREATE", self._without_content(payload))

    def _without_content(self, message: dict[str, JSON]) -> dict[str, JSON]:
        """The message as a session without MESSAGE_CONTENT sees it: whole if it is a DM, the
        bot's own, or mentions the bot; else with its content fields empty. A replied-to
        message inside it is judged the same way on its own."""
        bot = str(self._world.bot.id)
        readable = (
            "guild_id" not in message
            or message["author"]["id"] == bot
            or any(m["id"] == bot for m in message.get("mentions") or [])
        )
        seen = copy.copy(message) if readable else {**message, **copy.deepcopy(CONTENT_FIELDS)}
        if not readable:
            seen.pop("poll", None)
        if isinstance(message.get("referenced_message"), dict):
            seen["referenced_message"] = self._without_content(message["referenced_message"])
        return seen

    async def _send_component(
        self, user_id: int, message: dict[str, JSON], data: dict[str, JSON]
    ) -> Interaction:
        channel = self._world.channels[int(message["channel_id"])]
        return await self._send(
            MESSAGE_COMPONENT, user_id, data, channel.guild_id, channel.id, message
        )

    def _where(
        self, user_id: int, guild_id: int | None, channel_id: int | None
    ) -> tuple[int | None, int]:
        """Resolve (guild, channel): a guild's first text channel, or the user's DM channel."""
        world = self._world
        if channel_id is not None:
            if channel_id not in world.channels:
                raise LookupError(f"no channel {channel_id}")
            return world.channels[channel_id].guild_id, channel_id
        if guild_id is None:
            return None, world.dm_channel(user_id).id
        guild = world.guild(guild_id)
        texts = [c for c in guild.channel_ids if world.channels[c].type in TEXT_TYPES]
        if not texts:
            raise LookupError(f"guild {guild_id} has no text channel")
        return guild_id, texts[0]

    def _command(self, name: str, guild_id: int | None) -> dict[str, JSON]:
        scopes = ([guild_id] if guild_id is not None else []) + [None]
        for scope in scopes:
            for command in self._world.commands.get(scope, {}).values():
                if command["name"] == name and command.get("type", 1) == 1:
                    return command
        raise LookupError(f"/{name} is not registered")

    def _authorize(
        self, command: dict[str, JSON], user_id: int, channel_id: int, *, check_contexts: bool
    ) -> dict[str, str]:
        """The ``authorizing_integration_owners`` of the member invoking ``command`` here, or
        a refusal of what Discord's client would not offer.

        The app reaches a place through its installs: its guild install in a server it is in
        (key "0", the server's id) and in its own DM with the member ("0": "0"); the member's
        user install (key "1", their id) anywhere, group DMs and servers without the bot
        included. Nothing reaching here is a LookupError (nothing to invoke). A PermissionError
        refuses a global command outside its ``contexts`` (0 a server, 1 the bot's DM, 2 a
        group DM; absent, the legacy ``dm_permission``) or whose ``integration_types`` (absent:
        [0]) list none of the installs here; in a server, a channel the member cannot see or
        may not use commands in (USE_APPLICATION_COMMANDS), and, through the guild install, a
        command whose ``default_member_permissions`` they do not all hold ("0": administrators
        only) unless ``allow_command`` lets them. ``check_contexts=False`` (a forged or
        out-of-date client) skips ``contexts`` and ``integration_types``.
        """
        world = self._world
        name = command["name"]
        channel = world.channels[channel_id]
        guild_id = channel.guild_id
        context = interaction_context(channel)
        installs = self._installs(user_id, channel)
        types: list[int] = [0]
        contexts: list[int] = [GUILD_CONTEXT]  # a server's own command: there, by its install
        if "guild_id" not in command:
            types = command.get("integration_types") or [0]
            if command.get("contexts") is not None:
                contexts = command["contexts"]
            elif command.get("dm_permission", True) is not False:  # the legacy setting
                contexts = [GUILD_CONTEXT, BOT_DM_CONTEXT, PRIVATE_CHANNEL_CONTEXT]
        owners = {key: owner for key, owner in installs.items() if int(key) in types}
        if check_contexts:
            if context not in contexts:
                where = CONTEXT_PLACES[context]
                raise PermissionError(f"/{name} cannot be used {where} (contexts {contexts})")
            if not owners:
                raise PermissionError(
                    f"/{name} cannot be used {CONTEXT_PLACES[context]} by this member: its "
                    f"integration_types are {types}, and the app reaches here only through "
                    f"{_describe_installs(installs)}"
                )
        owners = owners or installs
        if guild_id is None:
            return owners
        usable = world.permissions(user_id, channel_id) & USE_APPLICATION_COMMANDS
        if not usable or not world.can_access(user_id, channel_id):
            raise PermissionError(f"the member cannot use commands in channel {channel_id}")
        raw = command.get("default_member_permissions")
        if GUILD_INSTALL not in owners or raw is None:
            return owners  # a server's settings govern only what its own install offers
        if (guild_id, name, user_id) in self._command_grants:
            return owners
        required = int(raw)
        held = world.guild_permissions(user_id, guild_id)
        if not held & ADMINISTRATOR and (required == 0 or held & required != required):
            needed = PERMISSION_NAMES.get(required, f"permissions {required}")
            raise PermissionError(
                f"/{name} is for members with {needed} (its default_member_permissions), "
                "which this member lacks"
            )
        return owners

    def _installs(self, user_id: int, channel: Channel) -> dict[str, str]:
        """The app's installs that reach ``user_id`` in ``channel`` (key -> owner), or
        LookupError when none does, or when the member is not in the server or group DM."""
        world = self._world
        installs: dict[str, str] = {}
        if channel.guild_id is not None:
            members = world.guild(channel.guild_id).members
            if user_id not in members:
                raise LookupError(f"user {user_id} is not a member of guild {channel.guild_id}")
            if world.bot.id in members:
                installs[GUILD_INSTALL] = str(channel.guild_id)
        elif channel.type == GROUP_DM:
            if user_id not in channel.recipients:
                raise LookupError(f"user {user_id} is not in the group DM {channel.id}")
        else:
            installs[GUILD_INSTALL] = "0"  # the bot's own DM
        if user_id in self._user_installs:
            installs[USER_INSTALL] = str(user_id)
        if not installs:
            if channel.guild_id is not None:
                raise LookupError(
                    f"the bot is not in guild {channel.guild_id} (remove_guild, or "
                    "add_guild(bot=False)) and the member has not installed the app to their "
                    "account (install_for_user)"
                )
            raise LookupError(
                "the app is not installed to the member's account (install_for_user), so "
                "they cannot use it in a group DM"
            )
        return installs

    def _default_owners(
        self, user_id: int, channel: Channel, message: dict[str, JSON] | None
    ) -> dict[str, str]:
        """Who authorises a component pressed or a modal submitted: the owners of the
        interaction whose answer carries it, or for a message the bot posted on its own, its
        guild install there (the server, or "0" in its DM)."""
        metadata = (message or {}).get("interaction_metadata") or {}
        owners = metadata.get("authorizing_integration_owners")
        if owners:
            return dict(owners)
        if channel.guild_id is None:
            return {GUILD_INSTALL: "0"}
        return {GUILD_INSTALL: str(channel.guild_id)}

    async def _send(
        self,
        kind: int,
        user_id: int,
        data: dict[str, JSON],
        guild_id: int | None,
        channel_id: int,
        message: dict[str, JSON] | None = None,
        *,
        owners: dict[str, str] | None = None,
    ) -> Interaction:
        """Build the INTERACTION_CREATE payload Discord would send, and dispatch it.

        ``owners`` are its ``authorizing_integration_owners`` (by default those of the
        message's interaction, else the guild install: see ``_default_owners``); through a
        guild install both the member and the bot must be in the server."""
        world = self._world
        user = world.user(user_id)
        channel = world.channels[channel_id]
        if owners is None:
            owners = self._default_owners(user_id, channel, message)
        if guild_id is not None:
            members = world.guild(guild_id).members
            if user_id not in members:
                raise LookupError(f"user {user_id} is not a member of guild {guild_id}")
            if GUILD_INSTALL in owners and world.bot.id not in members:
                raise LookupError(f"the bot is not in guild {guild_id} (remove_guild)")
        interaction_id = world.snowflake()
        token = f"sandbox.{secrets.token_urlsafe(48)}"
        payload: dict[str, JSON] = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": 1,
            "locale": "en-US",
            "app_permissions": str(world.app_permissions(channel_id)),
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.attachment_size_limit,
            "channel_id": str(channel_id),
        }
        if guild_id is not None:
            guild = world.guild(guild_id)
            member = guild.members[user_id]
            # The member's permissions are their total in this channel, overwrites included.
            permissions = str(world.permissions(user_id, channel_id))
            payload.update(
                guild_id=str(guild_id),
                guild={"id": str(guild_id), "locale": "en-US", "features": []},
                guild_locale="en-US",
                member={**world.member_payload(guild, member), "permissions": permissions},
                channel={**world.channel_payload(channel), "permissions": permissions},
            )
        else:
            payload.update(user=user.payload(), channel=world.channel_payload(channel))
        payload.update(
            context=interaction_context(channel), authorizing_integration_owners=dict(owners)
        )
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        # Like every event, it goes to the sessions of the shard that owns the guild (shard 0
        # for DMs), including one awaiting its RESUME, which replays it.
        sessions = self._gateway.sessions_for(guild_id)
        interaction = Interaction(
            world,
            id=interaction_id,
            token=token,
            type=kind,
            user_id=user_id,
            payload=payload,
            guild_id=guild_id,
            channel_id=channel_id,
            source_message_id=int(message["id"]) if message is not None else None,
            deadline=self.response_deadline,
            undelivered=None if sessions else self._nobody_hears(guild_id),
        )
        if sessions:
            self._interactions[interaction_id] = interaction
            self._interactions_by_token[token] = interaction
            await self._gateway.dispatch(sessions, "INTERACTION_CREATE", payload)
        return interaction

    def _nobody_hears(self, guild_id: int | None) -> str:
        """Why no gateway session was sent an event about ``guild_id`` (None: a DM)."""
        counts = sorted({s.shard_count for s in self._gateway.sessions.values()})
        if not counts:
            return "no bot session is connected to the gateway"
        if guild_id is None:
            return "no session of shard 0, which hears DMs, is connected"
        shards = " or ".join(f"{(guild_id >> 22) % n}/{n}" for n in counts)
        return f"no session of the shard that owns guild {guild_id} ({shards}) is connected"

    # --- what the bot did --------------------------------------------------------------------

    def channel_messages(self, channel_id: int) -> list[dict[str, JSON]]:
        """Messages everyone in the channel sees (no ephemeral ones), oldest first."""
        world = self._world
        return [
            copy.deepcopy(world.messages[m])
            for m in world.channel_log.get(channel_id, {})
            if m not in self._deleted and not world.messages[m]["flags"] & MESSAGE_EPHEMERAL
        ]

    def dm_messages(self, user_id: int) -> list[dict[str, JSON]]:
        """Messages in the user's DM channel with the bot (the bot's and the member's), oldest
        first."""
        channel_id = self._world.dm_channel_of.get(user_id)
        return [] if channel_id is None else self.channel_messages(channel_id)

    def dm_send_attempts(self, user_id: int) -> int:
        """POSTs the bot made to the user's DM channel messages, whatever the answer (a 403,
        or a 429 that discord.py retried, counts as well as a sent message)."""
        return self._dm_attempts[user_id]

    @property
    def message_create_requests(self) -> int:
        """Create Message requests (POST /channels/{id}/messages) answered with a message:
        each that created one, and each answered with an earlier one because its enforced
        nonce was seen (``deduplicated_nonces``), which Discord does not post twice. Requests
        refused (403, 429, 400, an injected failure) are not counted; ``dm_send_attempts``
        counts those too. Interaction answers and follow-ups are not Create Message."""
        return self._creates.total()

    def message_create_requests_in(self, channel_id: int) -> int:
        """``message_create_requests`` in one channel (``dm_channel_id`` for a DM)."""
        return self._creates[channel_id]

    @property
    def deduplicated_nonces(self) -> int:
        """Create Message requests answered with an earlier message, because the same nonce
        with ``enforce_nonce`` had created one in the channel within Discord's window: copies
        that a retry (or a bug) sent and Discord dropped. Zero means nothing was sent twice."""
        return self._deduplicated.total()

    def deduplicated_nonces_in(self, channel_id: int) -> int:
        return self._deduplicated[channel_id]

    @property
    def nonce_duplicates(self) -> int:
        """The older name of ``deduplicated_nonces``."""
        return self.deduplicated_nonces

    def _count_message_create(
        self, channel_id: int, *, deduplicated: bool, token: str = ""
    ) -> None:
        self._creates[channel_id] += 1
        if deduplicated:
            self._deduplicated[channel_id] += 1
        else:
            self._created_at.setdefault(token, []).append(time.monotonic())

    def messages_created_per_second(self, token: str) -> Counter[int]:
        """Messages created with `token` (one bot process's, when each has its own), counted by
        the whole second (of the emulator's monotonic clock) they were created in."""
        return Counter(int(at) for at in self._created_at.get(token, []))

    def dm_channel_id(self, user_id: int) -> int:
        """The user's DM channel with the bot (created on first use, as on Discord)."""
        return self._world.dm_channel(user_id).id

    def registered_commands(self, guild_id: int | None = None) -> list[dict[str, JSON]]:
        return copy.deepcopy(list(self._world.commands.get(guild_id, {}).values()))

    def attachment_bytes(self, message: dict[str, JSON], filename: str) -> bytes:
        """The uploaded bytes of the attachment ``filename`` on ``message``."""
        for attachment in message.get("attachments", []):
            if attachment["filename"] == filename:
                return self._world.attachment_data[int(attachment["id"])]
        raise LookupError(f"no attachment {filename!r} on message {message.get('id')}")

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        *,
        status: int,
        code: int | None = None,
        times: int = 1,
        retry_after: float = 0.05,
        handled: bool = False,
    ) -> None:
        """Answer the next ``times`` matching requests (regex on the path) with an error.

        A 429 is one discord.py waits ``retry_after`` and retries; a known ``code`` (50007,
        50278) gets Discord's message for it. With ``handled`` the request is carried out
        first (a message is created) and only its answer is the error: Discord's answer lost
        on the way, say a 500 or 502 that discord.py retries (after about a second), so an
        enforced nonce is what keeps the retry from posting twice.
        """
        pattern = re.compile(path_pattern)
        rule = _Failure(method.upper(), pattern, status, code, times, retry_after, handled)
        self._failures.append(rule)

    def _take_failure(self, method: str, path: str) -> tuple[ApiError, bool] | None:
        """The injected error for this request, if any, and whether to handle it first."""
        for rule in self._failures:
            if rule.method == method and rule.pattern.search(path):
                rule.times -= 1
                if rule.times <= 0:
                    self._failures.remove(rule)
                if rule.status == 429:
                    return rate_limited(rule.retry_after), rule.handled
                message = KNOWN_ERRORS.get(rule.code or 0, f"{rule.status}: injected failure")
                return ApiError(rule.status, message, rule.code or 0), rule.handled
        return None

    def _record_request(self, method: str, path: str, query: dict[str, str]) -> RequestRecord:
        record = RequestRecord(method, path, query)
        if self.record_requests:
            self.requests.append(record)
        return record

    def discard(self, interaction: Interaction) -> None:
        """Forget an answered interaction, its messages and the modal it opened, so a long
        benchmark's emulator does not grow with every interaction."""
        self._interactions.pop(interaction.id, None)
        self._interactions_by_token.pop(interaction.token, None)
        followups = [int(f["id"]) for f in interaction.followups]
        for message_id in (interaction.original_id, interaction.answer_id, *followups):
            if message_id is not None:
                self._world.forget_message(message_id)
                self._deleted.discard(message_id)
        for body in interaction.callbacks:
            key = (interaction.user_id, (body.get("data") or {}).get("custom_id"))
            if body.get("type") == 9 and self._modal_origins.get(key) is interaction:
                del self._modal_origins[key]

    def _add_violation(self, method: str, path: str, rule: str, detail: str) -> None:
        log.warning("bot broke %s: %s %s: %s", rule, method, path, detail)
        self.violations.append(Violation(method, path, rule, detail))

    def _delete_message(self, message_id: int) -> None:
        self._deleted.add(message_id)


def interaction_context(channel: Channel) -> int:
    """The interaction context type of a channel: 0 a server's, 1 the bot's DM, 2 any other
    private channel (a group DM)."""
    if channel.guild_id is not None:
        return GUILD_CONTEXT
    return BOT_DM_CONTEXT if channel.type == DM else PRIVATE_CHANNEL_CONTEXT


def _describe_installs(installs: Mapping[str, str]) -> str:
    kinds = {GUILD_INSTALL: "its server install (0)", USER_INSTALL: "the member's user install (1)"}
    return " and ".join(kinds[key] for key in installs)
