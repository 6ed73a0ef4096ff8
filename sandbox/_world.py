"""The emulated Discord world: users, guilds, channels, messages, commands, and their payloads.

Kept free of networking so the REST and gateway halves share one source of truth. Payload builders
return dicts shaped like Discord's objects, with just enough fields for discord.py to build its
models (its constructors index some keys directly, so those are always present).
"""

from __future__ import annotations

import copy
import mimetypes
import re
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
GUILD_VOICE = 2
GROUP_DM = 3
GUILD_CATEGORY = 4
GUILD_ANNOUNCEMENT = 5
GUILD_CHANNEL_TYPES = (GUILD_TEXT, GUILD_VOICE, GUILD_CATEGORY, GUILD_ANNOUNCEMENT)
MESSAGE_CHANNEL_TYPES = (GUILD_TEXT, GUILD_VOICE, GUILD_ANNOUNCEMENT)  # voice: text-in-voice
# Message types (Message, "Message Types"): a default message, a reply, a slash command's answer
# and a context menu command's; every other type is a system message, which nobody replies to.
DEFAULT_MESSAGE, REPLY, CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND = 0, 19, 20, 23
REPLYABLE_TYPES = (DEFAULT_MESSAGE, REPLY, CHAT_INPUT_COMMAND, CONTEXT_MENU_COMMAND)
ROLE, MEMBER = 0, 1  # permission overwrite types

ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
SEND_TTS_MESSAGES = 1 << 12
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
CONNECT = 1 << 20
USE_APPLICATION_COMMANDS = 1 << 31
# Every documented permission (bits 0-52; 47 is unassigned): what an owner or administrator has.
ALL_PERMISSIONS = ((1 << 53) - 1) & ~(1 << 47)
# What an ordinary member of a default server can do.
MEMBER_PERMISSIONS = (
    (1 << 0)  # CREATE_INSTANT_INVITE
    | (1 << 6)  # ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CONNECT
    | (1 << 21)  # SPEAK
    | (1 << 26)  # CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | (1 << 38)  # SEND_MESSAGES_IN_THREADS
)
BOT_PERMISSIONS = MEMBER_PERMISSIONS | (1 << 13)  # + MANAGE_MESSAGES
# app_permissions in the bot's DM, as documented for interactions ("Interaction Structure").
DM_APP_PERMISSIONS = ATTACH_FILES | EMBED_LINKS | MENTION_EVERYONE | USE_EXTERNAL_EMOJIS
MESSAGE_EPHEMERAL = 1 << 6
MESSAGE_LOADING = 1 << 7
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
_EVERYTHING = ("users", "roles", "everyone")  # allowed mention types
_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_EVERYONE_MENTION = re.compile(r"@(?:everyone|here)")


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
    role_ids: list[int] = field(default_factory=list)  # besides @everyone, which all have
    joined_at: str = field(default_factory=now_iso)


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int
    bot_id: int | None = None  # the bot's own role, which Discord manages


@dataclass
class Overwrite:
    type: int  # ROLE or MEMBER
    allow: int
    deny: int


@dataclass
class Channel:
    id: int
    name: str
    type: int
    guild_id: int | None = None
    recipient_id: int | None = None  # a DM's member (the bot is the other end)
    recipients: tuple[int, ...] = ()  # a group DM's members (the bot is never one of them)
    owner_id: int | None = None  # a group DM's owner
    position: int = 0
    parent_id: int | None = None
    overwrites: dict[int, Overwrite] = field(default_factory=dict)  # role or user id -> overwrite


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)  # the guild's own id is @everyone
    bot_role_id: int = 0
    moderators_role_id: int = 0
    channel_ids: list[int] = field(default_factory=list)
    members: dict[int, Member] = field(default_factory=dict)  # the bot too, until removed
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
        # channel id -> its message ids, oldest first (keys of a dict: one is forgotten at once)
        self.channel_log: dict[int, dict[int, None]] = {}
        self.attachment_data: dict[int, bytes] = {}  # attachment id -> bytes
        self.commands: dict[int | None, dict[int, dict[str, JSON]]] = {None: {}}
        self.dms_closed: set[int] = set()  # users who accept no DMs from the bot
        # Called with each message once it is stored (the emulator wakes its waiters).
        self.on_message: Callable[[dict[str, JSON]], None] | None = None

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

    def add_user(self, name: str, id: int | None = None, *, bot: bool = False) -> User:
        user = User(self.new_id(id), name, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str, id: int | None = None, *, bot: bool = True) -> Guild:
        """A server the bot was invited to (unless ``bot`` is False: one it is not in, where
        only members who installed the app to their account can use it): @everyone, the bot's
        own managed role, a Moderators role (Manage Server), and an owner who is none of the
        test's members (an owner holds every permission, so it must not be the bot)."""
        owner = self.add_user("server_owner")
        guild = Guild(self.new_id(id), name, owner_id=owner.id)
        self.guilds[guild.id] = guild
        guild.roles[guild.id] = Role(guild.id, "@everyone", MEMBER_PERMISSIONS, position=0)
        if bot:
            bot_role = self.add_role(guild.id, self.bot.name, BOT_PERMISSIONS, bot_id=self.bot.id)
            guild.bot_role_id = bot_role.id
        guild.moderators_role_id = self.add_role(guild.id, "Moderators", MANAGE_GUILD).id
        guild.members[owner.id] = Member(owner.id)
        if bot:
            guild.members[self.bot.id] = Member(self.bot.id, [guild.bot_role_id])
        return guild

    def add_role(
        self,
        guild_id: int,
        name: str,
        permissions: int,
        id: int | None = None,
        *,
        bot_id: int | None = None,
    ) -> Role:
        guild = self.guild(guild_id)
        role = Role(self.new_id(id), name, permissions, len(guild.roles), bot_id)
        guild.roles[role.id] = role
        return role

    def remove_bot(self, guild_id: int) -> None:
        """The bot is kicked (or leaves): it is no member, and its managed role goes with it."""
        guild = self.guild(guild_id)
        if self.bot.id not in guild.members:
            raise ValueError(f"the bot is not in guild {guild_id}")
        del guild.members[self.bot.id]
        del guild.roles[guild.bot_role_id]

    def add_channel(
        self,
        guild_id: int,
        name: str,
        type: int = GUILD_TEXT,
        id: int | None = None,
        parent_id: int | None = None,
    ) -> Channel:
        guild = self.guild(guild_id)
        if type not in GUILD_CHANNEL_TYPES:
            raise ValueError(f"channel type {type} is not one of {GUILD_CHANNEL_TYPES}")
        overwrites: dict[int, Overwrite] = {}
        if parent_id is not None:
            parent = self.channels.get(parent_id)
            if parent is None or parent.guild_id != guild_id or parent.type != GUILD_CATEGORY:
                raise ValueError(f"{parent_id} is no category of guild {guild_id}")
            if type == GUILD_CATEGORY:
                raise ValueError("a category cannot be inside another category")
            # Created in a category, a channel starts synced with it (discord.py documents it
            # for Guild.create_text_channel: "synced to category if no overwrites are provided").
            overwrites = copy.deepcopy(parent.overwrites)
        channel = Channel(
            self.new_id(id),
            name,
            type,
            guild_id,
            position=len(guild.channel_ids),
            parent_id=parent_id,
            overwrites=overwrites,
        )
        self.channels[channel.id] = channel
        guild.channel_ids.append(channel.id)
        return channel

    def guild_channel(self, channel_id: int) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None or channel.guild_id is None:
            raise LookupError(f"no guild channel {channel_id}")
        return channel

    def set_overwrite(
        self, channel_id: int, target_id: int, allow: int, deny: int
    ) -> list[Channel]:
        """Set (or, with nothing allowed or denied, remove) the channel's overwrite for a role
        or a user. A category passes the change on to the channels synced with it (Discord's
        "Permission Syncing"). Returns every channel that changed."""
        channel = self.guild_channel(channel_id)
        guild = self.guild(channel.guild_id or 0)
        if target_id in guild.roles:
            kind = ROLE
        elif target_id in self.users:
            kind = MEMBER
        else:
            raise LookupError(f"{target_id} is neither a role of guild {guild.id} nor a user")
        changed = [channel]
        if channel.type == GUILD_CATEGORY:
            changed += [
                self.channels[c]
                for c in guild.channel_ids
                if self.channels[c].parent_id == channel.id
                and self.channels[c].overwrites == channel.overwrites
            ]
        for each in changed:
            if allow or deny:
                each.overwrites[target_id] = Overwrite(kind, allow, deny)
            else:
                each.overwrites.pop(target_id, None)
        return changed

    def delete_channel(self, channel_id: int) -> list[Channel]:
        """Delete a guild channel; returns the channels it held as a category, which Discord
        keeps, now without a parent."""
        channel = self.guild_channel(channel_id)
        guild = self.guild(channel.guild_id or 0)
        del self.channels[channel_id]
        guild.channel_ids.remove(channel_id)
        orphans = [
            c
            for c in map(self.channels.__getitem__, guild.channel_ids)
            if c.parent_id == channel_id
        ]
        for orphan in orphans:
            orphan.parent_id = None
        return orphans

    def dm_channel(self, user_id: int) -> Channel:
        """The user's DM channel with the bot; the same one every time, as on Discord."""
        if user_id not in self.dm_channel_of:
            channel = Channel(self.snowflake(), "", DM, recipient_id=user_id)
            self.channels[channel.id] = channel
            self.dm_channel_of[user_id] = channel.id
        return self.channels[self.dm_channel_of[user_id]]

    def add_group_dm(self, owner_id: int, member_ids: list[int], name: str = "") -> Channel:
        """A group DM of members (the bot is none of them: it cannot be added to one)."""
        recipients = tuple(dict.fromkeys([owner_id, *member_ids]))
        for user_id in recipients:
            if self.user(user_id).bot:
                raise ValueError(f"user {user_id} is a bot; a group DM is for people")
        channel = Channel(
            self.snowflake(), name, GROUP_DM, recipients=recipients, owner_id=owner_id
        )
        self.channels[channel.id] = channel
        return channel

    def guild(self, guild_id: int) -> Guild:
        if guild_id not in self.guilds:
            raise LookupError(f"no guild {guild_id}")
        return self.guilds[guild_id]

    def user(self, user_id: int) -> User:
        if user_id not in self.users:
            raise LookupError(f"no user {user_id}")
        return self.users[user_id]

    # --- permissions ---------------------------------------------------------------------------

    def guild_permissions(self, user_id: int, guild_id: int) -> int:
        """The user's server-wide permissions: all for the owner, none for a non-member, else
        @everyone's OR their roles', and all once that includes ADMINISTRATOR."""
        guild = self.guild(guild_id)
        member = guild.members.get(user_id)
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        if member is None:
            return 0
        permissions = guild.roles[guild.id].permissions
        for role_id in member.role_ids:
            permissions |= guild.roles[role_id].permissions
        return ALL_PERMISSIONS if permissions & ADMINISTRATOR else permissions

    def permissions(self, user_id: int, channel_id: int) -> int:
        """The user's permissions in the channel, computed as Discord documents it (Permissions,
        "Permission Overwrites"): server-wide permissions, then the @everyone overwrite, then the
        member's roles' overwrites combined, then the member's own. Implicit denials (no
        VIEW_CHANNEL, no SEND_MESSAGES) are left to the caller, as on Discord, where they "are
        not explicitly denied when doing permissions calculations". In the bot's DM: what
        Discord grants an app there."""
        channel = self.channels[channel_id]
        if channel.guild_id is None:
            return DM_APP_PERMISSIONS
        guild = self.guild(channel.guild_id)
        permissions = self.guild_permissions(user_id, guild.id)
        member = guild.members.get(user_id)
        if member is None or permissions & ADMINISTRATOR:
            return permissions
        overwrites = channel.overwrites
        everyone = overwrites.get(guild.id)
        if everyone is not None:
            permissions = (permissions & ~everyone.deny) | everyone.allow
        allow = deny = 0
        for role_id in member.role_ids:
            if (overwrite := overwrites.get(role_id)) is not None:
                allow |= overwrite.allow
                deny |= overwrite.deny
        permissions = (permissions & ~deny) | allow
        own = overwrites.get(user_id)
        if own is not None:
            permissions = (permissions & ~own.deny) | own.allow
        return permissions

    def can_access(self, user_id: int, channel_id: int) -> bool:
        """Whether the channel exists for the user at all: VIEW_CHANNEL, and for a voice channel
        CONNECT too (which gates it the way VIEW_CHANNEL gates others; discord-api-docs #5111)."""
        channel = self.channels[channel_id]
        if channel.type == GROUP_DM:
            return user_id in channel.recipients
        if channel.guild_id is None:
            return True  # a DM is there for both ends
        needed = VIEW_CHANNEL | (CONNECT if channel.type == GUILD_VOICE else 0)
        return self.permissions(user_id, channel_id) & needed == needed

    # --- payloads ----------------------------------------------------------------------------

    def app_permissions(self, channel_id: int) -> int:
        """``app_permissions`` of an interaction in the channel: the bot's own where it is a
        member; in a server without it (a user install), what @everyone may do there of what
        Discord grants an app outside its servers; in a DM or group DM, that grant."""
        channel = self.channels[channel_id]
        if channel.guild_id is None:
            return DM_APP_PERMISSIONS
        guild = self.guild(channel.guild_id)
        if self.bot.id in guild.members:
            return self.permissions(self.bot.id, channel_id)
        everyone = guild.roles[guild.id].permissions
        overwrite = channel.overwrites.get(guild.id)
        if overwrite is not None:
            everyone = (everyone & ~overwrite.deny) | overwrite.allow
        return everyone & DM_APP_PERMISSIONS

    def partial_member(self, guild: Guild, user_id: int) -> dict[str, JSON]:
        """A member without its ``user`` (as on a message's author or a mentioned user)."""
        member = self.member_payload(guild, guild.members[user_id])
        del member["user"]
        return member

    def member_payload(self, guild: Guild, member: Member) -> dict[str, JSON]:
        return {
            "user": self.users[member.user_id].payload(),
            "nick": None,
            "avatar": None,
            "roles": [str(r) for r in member.role_ids],
            "joined_at": member.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }

    def channel_payload(self, channel: Channel) -> dict[str, JSON]:
        if channel.type == GROUP_DM:
            assert channel.owner_id is not None
            return {
                "id": str(channel.id),
                "type": GROUP_DM,
                "last_message_id": None,
                "flags": 0,
                "name": channel.name or None,
                "icon": None,
                "owner_id": str(channel.owner_id),
                "recipients": [self.users[u].payload() for u in channel.recipients],
            }
        if channel.type == DM:
            assert channel.recipient_id is not None
            return {
                "id": str(channel.id),
                "type": DM,
                "last_message_id": None,
                "flags": 0,
                "recipients": [self.users[channel.recipient_id].payload()],
            }
        payload: dict[str, JSON] = {
            "id": str(channel.id),
            "type": channel.type,
            "guild_id": str(channel.guild_id),
            "name": channel.name,
            "position": channel.position,
            "permission_overwrites": [
                {"id": str(target), "type": o.type, "allow": str(o.allow), "deny": str(o.deny)}
                for target, o in channel.overwrites.items()
            ],
            "parent_id": None if channel.parent_id is None else str(channel.parent_id),
            "nsfw": False,
            "flags": 0,
        }
        if channel.type in MESSAGE_CHANNEL_TYPES:
            payload.update(last_message_id=None, rate_limit_per_user=0)
        if channel.type == GUILD_VOICE:
            payload.update(bitrate=64000, user_limit=0, rtc_region=None)
        elif channel.type != GUILD_CATEGORY:
            payload["topic"] = None
        return payload

    def role_payload(self, role: Role) -> dict[str, JSON]:
        payload: dict[str, JSON] = {
            "id": str(role.id),
            "name": role.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": role.position,
            "permissions": str(role.permissions),
            "managed": role.bot_id is not None,
            "mentionable": False,
            "flags": 0,
        }
        if role.bot_id is not None:
            payload["tags"] = {"bot_id": str(role.bot_id)}
        return payload

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
            "roles": [self.role_payload(r) for r in guild.roles.values()],
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
        """The GUILD_CREATE dispatch: the guild, its roles and channels, and the bot's own member
        (with its roles, so a client can compute its permissions); no member list (no intent)."""
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
        *,
        reference: dict[str, JSON] | None = None,
        **extra: JSON,
    ) -> dict[str, JSON]:
        """Store a new message built from a create body, by the bot unless ``extra`` names
        another ``author``; ``extra`` overrides fields. With ``reference`` (the stored message
        it answers) it is a reply: type 19, with ``message_reference`` and a copy of the
        message as ``referenced_message``, pinging its author as ``allowed_mentions`` say."""
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
        if reference is not None:
            message["type"] = REPLY
            message["message_reference"] = {
                "type": 0,
                "message_id": reference["id"],
                "channel_id": reference["channel_id"],
                **({"guild_id": reference["guild_id"]} if "guild_id" in reference else {}),
            }
            referenced = copy.deepcopy(reference)
            for key in ("referenced_message", "allowed_mentions"):
                referenced.pop(key, None)
            message["referenced_message"] = referenced
        self._mention(message, body.get("allowed_mentions"))
        self.messages[int(message["id"])] = message
        self.channel_log.setdefault(channel_id, {})[int(message["id"])] = None
        if self.on_message is not None:
            self.on_message(message)
        return message

    def forget_message(self, message_id: int) -> None:
        """Drop a message and its attachments' bytes for good (a long benchmark's answers)."""
        message = self.messages.pop(message_id, None)
        if message is None:
            return
        self.channel_log.get(int(message["channel_id"]), {}).pop(message_id, None)
        for attachment in message.get("attachments") or []:
            self.attachment_data.pop(int(attachment["id"]), None)

    def edit_message(
        self, message: dict[str, JSON], body: dict[str, JSON], uploads: list[Upload]
    ) -> dict[str, JSON]:
        self._apply(message, body, uploads)
        if "content" in body:  # mentions are worked out afresh from the new content
            self._mention(message, body.get("allowed_mentions"))
        message["edited_timestamp"] = now_iso()
        if "flags" in body and body["flags"] is not None:
            # Only SUPPRESS_EMBEDS may change on edit; ephemeral/loading stay as they were.
            message["flags"] = (message["flags"] & ~4) | (int(body["flags"]) & 4)
        return message

    def _mention(self, message: dict[str, JSON], allowed: dict[str, JSON] | None) -> None:
        """Who the message pings, as Discord works it out (Message, "Allowed Mentions Object"):
        mentions written in the content that ``allowed`` lets through, where absent the default
        (everything in a plain message; only users in an interaction's or webhook's), and
        @everyone/@here or an unmentionable role only if the author has MENTION_EVERYONE.
        A reply pings the replied-to author too (never the author themself) unless ``allowed``
        is given without ``replied_user`` true: absent, a reply pings, as in Discord's client."""
        replied = (message.get("referenced_message") or {}).get("author") or {}
        ping_replied = allowed is None or bool(allowed.get("replied_user"))
        if allowed is None:
            allowed = {"parse": ["users"] if "webhook_id" in message else list(_EVERYTHING)}
        parse = set(allowed.get("parse") or [])
        users = {str(u) for u in allowed.get("users") or []}
        roles = {str(r) for r in allowed.get("roles") or []}
        content = str(message.get("content") or "")
        channel = self.channels[int(message["channel_id"])]
        author = int(message["author"]["id"])
        may_ping_all = bool(self.permissions(author, channel.id) & MENTION_EVERYONE)
        message["mention_everyone"] = bool(
            "everyone" in parse and may_ping_all and _EVERYONE_MENTION.search(content)
        )
        guild = self.guilds.get(channel.guild_id or 0)
        mentions = []
        for user_id in dict.fromkeys(_USER_MENTION.findall(content)):
            if int(user_id) in self.users and ("users" in parse or user_id in users):
                mentions.append(self._mentioned_user(int(user_id), guild))
        replied_id = str(replied.get("id") or "")
        if (
            ping_replied
            and replied_id.isdigit()
            and int(replied_id) in self.users
            and int(replied_id) != author
            and all(m["id"] != replied_id for m in mentions)
        ):
            mentions.append(self._mentioned_user(int(replied_id), guild))
        message["mentions"] = mentions
        message["mention_roles"] = [
            role_id
            for role_id in dict.fromkeys(_ROLE_MENTION.findall(content))
            if guild is not None
            and int(role_id) in guild.roles
            and ("roles" in parse or role_id in roles)
            and may_ping_all  # no role of the emulator's is mentionable
        ]

    def _mentioned_user(self, user_id: int, guild: Guild | None) -> dict[str, JSON]:
        """A mentioned user, with their (partial) member in a guild message."""
        payload = self.users[user_id].payload()
        if guild is not None and user_id in guild.members:
            payload["member"] = self.partial_member(guild, user_id)
        return payload

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
