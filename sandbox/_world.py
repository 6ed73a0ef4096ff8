"""The emulated Discord world: users, guilds, channels, messages, commands, and their payloads.

Kept free of networking so the REST and gateway halves share one source of truth. Payload builders
return dicts shaped like Discord's objects, with just enough fields for discord.py to build its
models (its constructors index some keys directly, so those are always present).
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = Any

DISCORD_EPOCH_MS = 1_420_070_400_000
SNOWFLAKE_MAX = (1 << 63) - 1  # Discord's snowflakes fit a signed 64-bit integer
GUILD_TEXT = 0
DM = 1
MANAGE_GUILD = 1 << 5
# What an ordinary member of a default server can do.
MEMBER_PERMISSIONS = (
    (1 << 0)  # CREATE_INSTANT_INVITE
    | (1 << 6)  # ADD_REACTIONS
    | (1 << 10)  # VIEW_CHANNEL
    | (1 << 11)  # SEND_MESSAGES
    | (1 << 14)  # EMBED_LINKS
    | (1 << 15)  # ATTACH_FILES
    | (1 << 16)  # READ_MESSAGE_HISTORY
    | (1 << 18)  # USE_EXTERNAL_EMOJIS
    | (1 << 20)  # CONNECT
    | (1 << 21)  # SPEAK
    | (1 << 26)  # CHANGE_NICKNAME
    | (1 << 31)  # USE_APPLICATION_COMMANDS
    | (1 << 38)  # SEND_MESSAGES_IN_THREADS
)
BOT_PERMISSIONS = MEMBER_PERMISSIONS | (1 << 13)  # + MANAGE_MESSAGES
MESSAGE_EPHEMERAL = 1 << 6
MESSAGE_LOADING = 1 << 7
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


class Snowflakes:
    """Real-looking, strictly increasing snowflakes (discord.py derives created_at from them).

    Ids chosen by hand (a sandbox keeping its member and server across runs) are reserved, so
    the generator steps over them instead of handing them out a second time.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._last = 0
        self.reserved: set[int] = set()

    def __call__(self) -> int:
        candidate = max((int(self._clock() * 1000) - DISCORD_EPOCH_MS) << 22, self._last + 1)
        while candidate in self.reserved:
            candidate += 1
        self._last = candidate
        return candidate


@dataclass
class User:
    id: int
    name: str
    bot: bool = False

    def payload(self) -> dict[str, JSON]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": None if self.bot else self.name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
            "flags": 0,
        }


@dataclass
class Member:
    user_id: int
    permissions: int
    joined_at: str = field(default_factory=now_iso)


@dataclass
class Channel:
    id: int
    name: str
    type: int
    guild_id: int | None = None
    recipient_id: int | None = None
    position: int = 0


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    channel_ids: list[int] = field(default_factory=list)
    members: dict[int, Member] = field(default_factory=dict)
    joined_at: str = field(default_factory=now_iso)


@dataclass
class Upload:
    """One uploaded file part of a multipart request (``files[n]``)."""

    index: int
    filename: str
    content_type: str
    data: bytes


class World:
    """Everything the emulator knows, plus Discord-shaped payloads of it."""

    def __init__(self, application_id: int, bot_name: str) -> None:
        self.snowflake = Snowflakes()
        self.snowflake.reserved.add(application_id)
        self.application_id = application_id
        self.bot = User(application_id, bot_name, bot=True)
        self.users: dict[int, User] = {self.bot.id: self.bot}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.dm_channel_of: dict[int, int] = {}  # user id -> DM channel id
        self.messages: dict[int, dict[str, JSON]] = {}
        self.channel_log: dict[int, list[int]] = {}  # channel id -> message ids, oldest first
        self.attachment_data: dict[int, bytes] = {}  # attachment id -> bytes
        self.commands: dict[int | None, dict[int, dict[str, JSON]]] = {None: {}}
        self.dms_closed: set[int] = set()  # users who accept no DMs from the bot

    # --- building the world ---------------------------------------------------------------

    def new_id(self, wanted: int | None = None) -> int:
        """A fresh snowflake, or ``wanted`` when nothing has that id yet (then never again)."""
        if wanted is None:
            return self.snowflake()
        if isinstance(wanted, bool) or not isinstance(wanted, int):
            raise ValueError(f"an id is an int, not {wanted!r}")
        if not 0 < wanted <= SNOWFLAKE_MAX:
            raise ValueError(f"id {wanted} is not a snowflake (1 to 2**63 - 1)")
        if self.id_taken(wanted):
            raise ValueError(f"id {wanted} is already taken")
        self.snowflake.reserved.add(wanted)
        return wanted

    def id_taken(self, snowflake: int) -> bool:
        return snowflake in self.snowflake.reserved or any(
            snowflake in known for known in (self.users, self.guilds, self.channels, self.messages)
        )

    def add_user(self, name: str, id: int | None = None) -> User:
        user = User(self.new_id(id), name)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, id: int | None = None) -> Guild:
        guild = Guild(self.new_id(id), name, owner_id=self.bot.id)
        self.guilds[guild.id] = guild
        guild.members[self.bot.id] = Member(self.bot.id, BOT_PERMISSIONS)
        return guild

    def add_channel(self, guild_id: int, name: str, id: int | None = None) -> Channel:
        guild = self.guild(guild_id)
        channel = Channel(
            self.new_id(id), name, GUILD_TEXT, guild_id, position=len(guild.channel_ids)
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        return channel

    def dm_channel(self, user_id: int) -> Channel:
        """The user's DM channel with the bot; the same one every time, as on Discord."""
        if user_id not in self.dm_channel_of:
            channel = Channel(self.snowflake(), "", DM, recipient_id=user_id)
            self.channels[channel.id] = channel
            self.dm_channel_of[user_id] = channel.id
        return self.channels[self.dm_channel_of[user_id]]

    def guild(self, guild_id: int) -> Guild:
        if guild_id not in self.guilds:
            raise LookupError(f"no guild {guild_id}")
        return self.guilds[guild_id]

    def user(self, user_id: int) -> User:
        if user_id not in self.users:
            raise LookupError(f"no user {user_id}")
        return self.users[user_id]

    # --- payloads ----------------------------------------------------------------------------

    def member_payload(self, guild: Guild, member: Member) -> dict[str, JSON]:
        return {
            "user": self.users[member.user_id].payload(),
            "nick": None,
            "avatar": None,
            "roles": [],
            "joined_at": member.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
            "permissions": str(member.permissions),
        }

    def channel_payload(self, channel: Channel) -> dict[str, JSON]:
        if channel.type == DM:
            assert channel.recipient_id is not None
            return {
                "id": str(channel.id),
                "type": DM,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.users[channel.recipient_id].payload()],
            }
        return {
            "id": str(channel.id),
            "type": channel.type,
            "guild_id": str(channel.guild_id),
            "name": channel.name,
            "position": channel.position,
            "permission_overwrites": [],
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def guild_payload(self, guild: Guild) -> dict[str, JSON]:
        """A REST guild object (no channels/members, like GET /guilds/{id})."""
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "region": "us-west",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [self._everyone_role(guild)],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
        }

    def guild_create_payload(self, guild: Guild) -> dict[str, JSON]:
        """The GUILD_CREATE dispatch: the guild plus its channels; no member list (no intent)."""
        bot_member = self.member_payload(guild, guild.members[self.bot.id])
        return {
            **self.guild_payload(guild),
            "unavailable": False,
            "joined_at": guild.joined_at,
            "large": False,
            "member_count": len(guild.members),
            "members": [bot_member],
            "channels": [self.channel_payload(self.channels[c]) for c in guild.channel_ids],
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _everyone_role(self, guild: Guild) -> dict[str, JSON]:
        return {
            "id": str(guild.id),
            "name": "@everyone",
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": 0,
            "permissions": str(MEMBER_PERMISSIONS),
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }

    def application_payload(self) -> dict[str, JSON]:
        return {
            "id": str(self.application_id),
            "name": self.bot.name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": 0,
            "owner": self.bot.payload(),
            "team": None,
            "bot": self.bot.payload(),
            "rpc_origins": [],
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(self.guilds),
        }

    # --- messages ------------------------------------------------------------------------

    def create_message(
        self,
        channel_id: int,
        body: dict[str, JSON],
        uploads: list[Upload],
        **extra: JSON,
    ) -> dict[str, JSON]:
        """Store a new message built from a create body, by the bot unless ``extra`` names
        another ``author``; ``extra`` overrides fields."""
        channel = self.channels[channel_id]
        message: dict[str, JSON] = {
            "id": str(self.snowflake()),
            "channel_id": str(channel_id),
            "author": self.bot.payload(),
            "content": "",
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if channel.guild_id is not None:
            message["guild_id"] = str(channel.guild_id)
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        self._apply(message, body, uploads)
        message["flags"] = int(body.get("flags") or 0)
        message.update(extra)
        self.messages[int(message["id"])] = message
        self.channel_log.setdefault(channel_id, []).append(int(message["id"]))
        return message

    def edit_message(
        self, message: dict[str, JSON], body: dict[str, JSON], uploads: list[Upload]
    ) -> dict[str, JSON]:
        self._apply(message, body, uploads)
        message["edited_timestamp"] = now_iso()
        if "flags" in body and body["flags"] is not None:
            # Only SUPPRESS_EMBEDS may change on edit; ephemeral/loading stay as they were.
            message["flags"] = (message["flags"] & ~4) | (int(body["flags"]) & 4)
        return message

    def _apply(
        self, message: dict[str, JSON], body: dict[str, JSON], uploads: list[Upload]
    ) -> None:
        for key in ("content", "embeds", "components", "allowed_mentions", "poll"):
            if key in body:
                value = body[key]
                message[key] = value if value is not None else ("" if key == "content" else [])
        message["embeds"] = [{"type": "rich", **e} for e in message.get("embeds") or []]
        if "attachments" in body or uploads:
            message["attachments"] = self._attachments(message, body.get("attachments"), uploads)

    def _attachments(
        self,
        message: dict[str, JSON],
        wanted: list[dict[str, JSON]] | None,
        uploads: list[Upload],
    ) -> list[dict[str, JSON]]:
        """Resolve an ``attachments`` list: existing ids are kept, upload indexes become new."""
        existing = {a["id"]: a for a in message.get("attachments", [])}
        by_index = {u.index: u for u in uploads}
        if wanted is None:  # files without metadata: keep old ones, append the uploads
            wanted = [{"id": a} for a in existing] + [{"id": u.index} for u in uploads]
        result = []
        for item in wanted:
            key = str(item.get("id"))
            if key in existing:
                result.append(existing[key])
            elif key.isdigit() and int(key) in by_index:
                result.append(self._new_attachment(message, by_index[int(key)], item))
        return result

    def _new_attachment(
        self, message: dict[str, JSON], upload: Upload, meta: dict[str, JSON]
    ) -> dict[str, JSON]:
        attachment_id = self.snowflake()
        filename = str(meta.get("filename") or upload.filename)
        self.attachment_data[attachment_id] = upload.data
        url = f"https://cdn.discordapp.com/attachments/{message['channel_id']}/{attachment_id}/{filename}"
        content_type = upload.content_type
        if content_type in ("", "application/octet-stream"):
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        attachment = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(upload.data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        if meta.get("description"):
            attachment["description"] = meta["description"]
        return attachment
