"""Interactions: the payloads a member's client would cause, and tracking the bot's answers.

The builders mirror what Discord puts in INTERACTION_CREATE for slash commands, autocomplete,
buttons, selects and modal submits, including the client-side rules a real member could not break
(an unknown option, a disabled button, a too-long text input) which raise ValueError here.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._world import (
    DM,
    GROUP_DM,
    GUILD_ANNOUNCEMENT,
    GUILD_CATEGORY,
    GUILD_TEXT,
    GUILD_VOICE,
    MESSAGE_EPHEMERAL,
    Channel,
    World,
)

JSON = Any

APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4
MODAL_SUBMIT = 5

SUB_COMMAND = 1
SUB_COMMAND_GROUP = 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER = 3, 4, 5, 6, 7, 8, 9, 10

TOKEN_LIFETIME = 15 * 60  # seconds a token accepts follow-ups and edits


class DidNotRespond(TimeoutError):
    """What the member sees when no bot could answer: "The application did not respond".

    Raised at once by an interaction's waiting methods when no gateway session heard it (none
    owns its guild's shard, or none hears DMs), rather than after their timeout.
    """


class Interaction:
    """One interaction sent to the bot, and everything the bot did with it.

    ``delivered`` is False when no gateway session could hear it (no session of the shard that
    owns its guild, or of shard 0 for a DM); ``did_not_respond`` says whether the member's
    client now shows "The application did not respond".
    """

    def __init__(
        self,
        world: World,
        *,
        id: int,
        token: str,
        type: int,
        user_id: int,
        payload: dict[str, JSON],
        guild_id: int | None,
        channel_id: int,
        source_message_id: int | None = None,
        deadline: float = 3.0,
        undelivered: str | None = None,
    ) -> None:
        self.id = id
        self.token = token
        self.type = type
        self.user_id = user_id
        self.payload = payload
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.callbacks: list[dict[str, JSON]] = []
        self.followups: list[dict[str, JSON]] = []
        self.created = time.monotonic()
        self.deadline = deadline  # seconds the bot has for its first response
        self.undelivered = undelivered  # why no bot session heard it, if none did
        # The message a component was on: what @original means after a type 6/7 callback.
        self.source_message_id = source_message_id
        self.original_id: int | None = None
        self.answer_id: int | None = None
        self.choices_data: list[dict[str, JSON]] | None = None
        self._world = world
        self._responded = asyncio.Event()
        self._answered = asyncio.Event()
        self.answered_at: float | None = None  # perf_counter() when the answer arrived

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def expired(self) -> bool:
        return time.monotonic() - self.created > TOKEN_LIFETIME

    @property
    def delivered(self) -> bool:
        return self.undelivered is None

    @property
    def did_not_respond(self) -> bool:
        """No bot heard it, or none acknowledged it within the deadline: the member's client
        shows "The application did not respond" (a late answer is refused, so it stays so)."""
        late = time.monotonic() - self.created > self.deadline
        return not self.delivered or (late and not self.acknowledged)

    async def _wait(self, event: asyncio.Event, seconds: float) -> None:
        if self.undelivered is not None:
            raise DidNotRespond(f"the application did not respond: {self.undelivered}")
        await asyncio.wait_for(event.wait(), seconds)

    # --- recording (called by the REST side) ------------------------------------------------

    def record_callback(self, body: dict[str, JSON]) -> None:
        self.callbacks.append(body)
        self._responded.set()

    def answer(self, message_id: int | None = None) -> None:
        """The member now sees a final answer (a message, or autocomplete choices / a modal)."""
        if message_id is not None and self.answer_id is None:
            self.answer_id = message_id
        if not self._answered.is_set():
            self.answered_at = time.perf_counter()
        self._answered.set()

    # --- for tests --------------------------------------------------------------------------

    async def response(self, timeout: float = 5.0) -> dict[str, JSON]:  # noqa: ASYNC109 (fixed API)
        """The first callback body (type, data) the bot posted."""
        await self._wait(self._responded, timeout)
        return self.callbacks[0]

    async def answered(self, timeout: float = 10.0) -> float:  # noqa: ASYNC109 (fixed API)
        """Wait for the final answer; the perf_counter() instant it reached the emulator."""
        await self._wait(self._answered, timeout)
        assert self.answered_at is not None
        return self.answered_at

    async def message(self, timeout: float = 10.0) -> dict[str, JSON]:  # noqa: ASYNC109 (fixed API)
        """The message the member finally sees as the answer, as it is now."""
        await self._wait(self._answered, timeout)
        if self.answer_id is None:
            kind = self.callbacks[0].get("type") if self.callbacks else None
            raise AssertionError(f"the answer was not a message (callback type {kind})")
        return copy.deepcopy(self._world.messages[self.answer_id])

    async def modal(self, timeout: float = 5.0) -> dict[str, JSON]:  # noqa: ASYNC109 (fixed API)
        """The ``data`` of the type-9 (modal) callback."""
        body = await self.response(timeout)
        if body.get("type") != 9:
            raise AssertionError(f"expected a modal (callback type 9), got type {body.get('type')}")
        data: dict[str, JSON] = body["data"]
        return data

    async def choices(self, timeout: float = 5.0) -> list[dict[str, JSON]]:  # noqa: ASYNC109 (fixed API)
        """The autocomplete choices (type-8 callback)."""
        body = await self.response(timeout)
        if body.get("type") != 8:
            raise AssertionError(f"expected autocomplete (callback type 8), got {body.get('type')}")
        return list((body.get("data") or {}).get("choices") or [])

    def is_ephemeral(self) -> bool:
        message_id = self.answer_id or self.original_id
        if message_id is None or message_id not in self._world.messages:
            return False
        return bool(self._world.messages[message_id]["flags"] & MESSAGE_EPHEMERAL)

    def __repr__(self) -> str:
        return f"<Interaction id={self.id} type={self.type} callbacks={len(self.callbacks)}>"


# --- application command options ------------------------------------------------------------


@dataclass
class _Filling:
    """A member filling in a command's options in a channel, and what their client resolved."""

    world: World
    user_id: int
    channel: Channel
    enforce: bool
    resolved: dict[str, dict[str, JSON]] = field(default_factory=dict)


def command_data(
    world: World,
    command: dict[str, JSON],
    path: list[str],
    options: Mapping[str, object],
    *,
    user_id: int,
    channel_id: int,
    focused: str | None = None,
    enforce_client_limits: bool = True,
) -> dict[str, JSON]:
    """``data`` of an APPLICATION_COMMAND (or AUTOCOMPLETE when ``focused`` names an option)
    the member ``user_id`` sends from ``channel_id``.

    With ``enforce_client_limits`` (the default) values a member's client would not send raise
    ValueError: outside the option's choices or min/max bounds, or a channel the picker would
    not offer (of a type outside ``channel_types``, of another server, or hidden from them).
    """
    definitions = command.get("options") or []
    # Walk down "group subcommand" to the leaf; its options are the ones the member fills in.
    chain: list[dict[str, JSON]] = []
    for part in path:
        match = [o for o in definitions if o.get("name") == part and o["type"] in (1, 2)]
        if not match:
            raise ValueError(f"/{command['name']} has no subcommand or group {part!r}")
        chain.append(match[0])
        definitions = match[0].get("options") or []
    if any(o["type"] in (1, 2) for o in definitions):
        names = ", ".join(o["name"] for o in definitions)
        raise ValueError(f"/{' '.join([command['name'], *path])} needs a subcommand ({names})")
    filling = _Filling(world, user_id, world.channels[channel_id], enforce_client_limits)
    wrapped = _build_options(filling, definitions, options, focused)
    for node in reversed(chain):
        wrapped = [{"name": node["name"], "type": node["type"], "options": wrapped}]
    data: dict[str, JSON] = {
        "id": command["id"],
        "name": command["name"],
        "type": command.get("type", 1),
        "options": wrapped,
    }
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    if filling.resolved:
        data["resolved"] = filling.resolved
    return data


def _build_options(
    filling: _Filling,
    definitions: list[dict[str, JSON]],
    given: Mapping[str, object],
    focused: str | None,
) -> list[dict[str, JSON]]:
    by_name = {d["name"]: d for d in definitions}
    for name in given:
        if name not in by_name:
            known = ", ".join(by_name) or "none"
            raise ValueError(f"unknown option {name!r} (options: {known})")
    built: list[dict[str, JSON]] = []
    for definition in definitions:
        name = definition["name"]
        if name not in given:
            if definition.get("required") and focused is None:
                raise ValueError(f"option {name!r} is required")
            continue
        if name == focused:
            # The member is still typing: Discord sends the raw text, whatever the type.
            built.append(
                {
                    "name": name,
                    "type": definition["type"],
                    "value": str(given[name]),
                    "focused": True,
                }
            )
            continue
        value = _coerce(filling, definition, given[name])
        built.append({"name": name, "type": definition["type"], "value": value})
    return built


def _coerce(filling: _Filling, definition: dict[str, JSON], raw: object) -> JSON:
    kind = definition["type"]
    name = definition["name"]
    value: JSON
    try:
        if kind == STRING:
            value = str(raw)
        elif kind == INTEGER:
            value = int(str(raw))
        elif kind == NUMBER:
            value = float(str(raw))
        elif kind == BOOLEAN:
            value = _boolean(raw)
        elif kind == USER:
            value = _resolve_user(filling, raw)
        elif kind == CHANNEL:
            value = _resolve_channel(filling, definition, raw)
        elif kind in (ROLE, MENTIONABLE):
            value = str(int(str(raw)))
        else:
            raise ValueError(f"option type {kind} is not supported by the emulator")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"option {name!r}: {exc}") from None
    if not filling.enforce:
        return value
    choices = definition.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        allowed = ", ".join(str(c["value"]) for c in choices)
        raise ValueError(f"option {name!r} must be one of: {allowed}")
    try:
        _check_range(definition, value)
    except ValueError as exc:
        raise ValueError(f"option {name!r}: {exc}") from None
    return value


def _boolean(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "1", "on"):
        return True
    if text in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"{raw!r} is not a boolean (true/false)")


def _check_range(definition: dict[str, JSON], value: JSON) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        low, high = definition.get("min_value"), definition.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{value} is outside {low}..{high}")
    if isinstance(value, str):
        low, high = definition.get("min_length", 0), definition.get("max_length", 6000)
        if not low <= len(value) <= high:
            raise ValueError(f"length {len(value)} is outside {low}..{high}")


def _resolve_user(filling: _Filling, raw: object) -> str:
    world = filling.world
    text = str(raw).strip().removeprefix("<@").removesuffix(">").lstrip("!@")
    matches = [u for u in world.users.values() if str(u.id) == text or u.name == text]
    if not matches:
        raise ValueError(f"no user {raw!r}")
    user = matches[0]
    filling.resolved.setdefault("users", {})[str(user.id)] = user.payload()
    guild = world.guilds.get(filling.channel.guild_id or 0)
    if guild is not None and user.id in guild.members:
        # A resolved member is partial (no user, deaf, mute) and carries their permissions
        # in the interaction's channel.
        member = world.member_payload(guild, guild.members[user.id])
        for key in ("user", "deaf", "mute"):
            del member[key]
        member["permissions"] = str(world.permissions(user.id, filling.channel.id))
        filling.resolved.setdefault("members", {})[str(user.id)] = member
    return str(user.id)


CHANNEL_KINDS = {
    GUILD_TEXT: "text channel",
    DM: "DM",
    GROUP_DM: "group DM",
    GUILD_VOICE: "voice channel",
    GUILD_CATEGORY: "category",
    GUILD_ANNOUNCEMENT: "announcement channel",
}
# The fields of a resolved channel (receiving-and-responding, "Resolved Data Structure").
RESOLVED_CHANNEL_FIELDS = (
    "id",
    "name",
    "type",
    "last_message_id",
    "nsfw",
    "parent_id",
    "guild_id",
    "flags",
    "rate_limit_per_user",
    "topic",
    "position",
)


def _resolve_channel(filling: _Filling, definition: dict[str, JSON], raw: object) -> str:
    world, here = filling.world, filling.channel
    text = str(raw).strip().removeprefix("<#").removesuffix(">").lstrip("#")
    matches = [
        c
        for c in world.channels.values()
        if str(c.id) == text or (c.name == text and c.guild_id == here.guild_id and c.name)
    ]
    if not matches:
        raise ValueError(f"no channel {raw!r}")
    channel = matches[0]
    if filling.enforce:
        # The picker offers only this server's channels the member can see, of the option's
        # channel_types.
        kinds = definition.get("channel_types")
        if channel.guild_id is None or channel.guild_id != here.guild_id:
            raise ValueError(f"{raw!r} is not a channel of this server")
        if kinds and channel.type not in kinds:
            wanted = " or ".join(CHANNEL_KINDS.get(k, f"type {k}") for k in kinds)
            raise ValueError(f"#{channel.name} is a {CHANNEL_KINDS[channel.type]}, not a {wanted}")
        if not world.can_access(filling.user_id, channel.id):
            raise ValueError(f"the member cannot see #{channel.name}")
    full = world.channel_payload(channel)
    payload = {key: full[key] for key in RESOLVED_CHANNEL_FIELDS if key in full}
    payload["permissions"] = str(world.permissions(filling.user_id, channel.id))
    payload["app_permissions"] = str(world.permissions(world.bot.id, channel.id))
    filling.resolved.setdefault("channels", {})[str(channel.id)] = payload
    return str(channel.id)


# --- components -------------------------------------------------------------------------------


def walk_components(components: list[dict[str, JSON]]) -> Iterator[dict[str, JSON]]:
    """Every component, depth first, through rows, labels, sections and containers."""
    for component in components:
        yield component
        if isinstance(component.get("components"), list):
            yield from walk_components(component["components"])
        if isinstance(component.get("component"), dict):
            yield from walk_components([component["component"]])
        if isinstance(component.get("accessory"), dict):
            yield from walk_components([component["accessory"]])


def find_component(message: dict[str, JSON], custom_id: str, kind: int) -> dict[str, JSON]:
    for component in walk_components(message.get("components") or []):
        if component.get("custom_id") == custom_id and component.get("type") == kind:
            return component
    raise LookupError(f"no component of type {kind} with custom_id {custom_id!r} on the message")


def select_values(component: dict[str, JSON], values: list[str]) -> list[str]:
    """Check values the way the member's client would: known options, within min/max."""
    options = [o["value"] for o in component.get("options") or []]
    if component.get("type") == 3:
        unknown = [v for v in values if v not in options]
        if unknown:
            raise ValueError(f"{unknown} not among the select's options {options}")
    low, high = component.get("min_values", 1), component.get("max_values", 1)
    if not low <= len(values) <= high:
        raise ValueError(f"pick between {low} and {high} values, not {len(values)}")
    return list(values)


# --- modals -------------------------------------------------------------------------------


def modal_submit_data(
    modal: dict[str, JSON], values: dict[str, str | list[str]], *, enforce_client_limits: bool
) -> dict[str, JSON]:
    """``data`` of a MODAL_SUBMIT for ``modal`` filled in with ``values`` (custom_id -> value)."""
    known = {
        c["custom_id"] for c in walk_components(modal.get("components") or []) if "custom_id" in c
    }
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"the modal has no input(s) {sorted(unknown)}; it has {sorted(known)}")
    counter = iter(range(1, 1000))

    def submitted(component: dict[str, JSON]) -> dict[str, JSON]:
        # Discord numbers components when the bot did not; submissions echo those ids.
        ident = component.get("id") or next(counter)
        kind = component["type"]
        if kind == 1:
            return {
                "type": 1,
                "id": ident,
                "components": [submitted(c) for c in component["components"]],
            }
        if kind == 18:
            return {"type": 18, "id": ident, "component": submitted(component["component"])}
        if kind == 4:
            return {
                "type": 4,
                "id": ident,
                "custom_id": component["custom_id"],
                "value": _text(component),
            }
        if kind in (3, 5, 6, 7, 8):
            return {
                "type": kind,
                "id": ident,
                "custom_id": component["custom_id"],
                "values": _picked(component),
            }
        return {"type": kind, "id": ident}

    def _text(component: dict[str, JSON]) -> str:
        custom_id = component["custom_id"]
        raw = values.get(custom_id, component.get("value") or "")
        text = raw if isinstance(raw, str) else " ".join(raw)
        required = component.get("required", True)
        low, high = component.get("min_length") or 0, component.get("max_length") or 4000
        if enforce_client_limits:
            if required and not text:
                raise ValueError(f"{custom_id!r} is required")
            if text and not low <= len(text) <= high:
                raise ValueError(f"{custom_id!r} must be {low}-{high} characters, not {len(text)}")
        return text

    def _picked(component: dict[str, JSON]) -> list[str]:
        raw = values.get(component["custom_id"])
        if raw is None:  # untouched: the client submits the options marked default
            raw = [o["value"] for o in component.get("options") or [] if o.get("default")]
        picked = [raw] if isinstance(raw, str) else list(raw)
        if not enforce_client_limits or (not picked and not component.get("required", True)):
            return picked
        return select_values(component, picked)

    return {
        "custom_id": modal["custom_id"],
        "components": [submitted(c) for c in modal.get("components") or []],
    }
