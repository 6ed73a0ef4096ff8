"""The REST half of the emulator: /api/v10 routes answered the way Discord answers them.

One catch-all aiohttp handler matches the path against spec-style templates
("/channels/{channel_id}/messages"), so the same template names the spec operation whose request
schema the body is validated against. Handlers return ``(status, json)`` or raise ``ApiError``;
rule breaks are recorded as violations before the error answer goes out.

Discord's own refusals that a well-behaved bot still meets (a global 429, a member's closed DMs)
are answered the same way but are not violations.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from . import _validation as checks
from ._interactions import APPLICATION_COMMAND, Interaction
from ._world import (
    ATTACH_FILES,
    DM,
    EMBED_LINKS,
    MESSAGE_CHANNEL_TYPES,
    MESSAGE_LOADING,
    READ_MESSAGE_HISTORY,
    REPLYABLE_TYPES,
    SEND_MESSAGES,
    SEND_TTS_MESSAGES,
    Guild,
    Upload,
)

if TYPE_CHECKING:
    from .emulator import Emulator

log = logging.getLogger(__name__)

JSON = Any
NONCE_WINDOW = 5 * 60  # seconds during which an enforced nonce returns the first message
CREATE_MESSAGE = "/channels/{channel_id}/messages"
# Discord's messages for error codes a bot must handle by code.
KNOWN_ERRORS = {
    50001: "Missing Access",
    50007: "Cannot send messages to this user",
    50008: "Cannot send messages in a non-text channel",
    50013: "Missing Permissions",
    50278: "Cannot send messages to this user due to having no mutual guilds",
    40005: "Request entity too large",
    50109: "The request body contains invalid JSON.",
}
# Which callback types may answer which interaction type (Discord's documented matrix).
ALLOWED_CALLBACKS = {2: {4, 5, 9}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}


class ApiError(Exception):
    """An error answer: Discord's ``{"message", "code"[, "errors"]}`` body."""

    def __init__(
        self,
        status: int,
        message: str,
        code: int = 0,
        *,
        errors: dict[str, JSON] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, JSON] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, JSON] = {"message": message, "code": code, **(extra or {})}
        if errors:
            self.body["errors"] = errors
        self.headers = headers or {}


@dataclass
class Call:
    """One parsed request, as the handlers see it."""

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: JSON
    uploads: list[Upload] = field(default_factory=list)
    # monotonic() when the request arrived, before its body was read and checked: an answer's
    # lateness is judged from here, so the emulator's own checks never make it late.
    arrived: float = 0.0
    # The bot token it came with: several processes of one bot may each use their own.
    token: str = ""

    def int_param(self, name: str) -> int:
        try:
            return int(self.params[name])
        except ValueError:
            raise ApiError(404, "404: Not Found") from None


def json_response(status: int, body: JSON, headers: dict[str, str] | None = None) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    # discord.py compares the header to exactly "application/json" (no charset).
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


Handler = Callable[[Call], Awaitable[tuple[int, JSON]]]


class RestApi:
    """Route table and handlers; all state lives on the Emulator."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.world = emu._world
        # (channel id, nonce) -> (when, message id), oldest first; per channel, as on Discord.
        self._nonces: dict[tuple[int, str], tuple[float, int]] = {}
        self._global_window = SlidingWindow()
        app_cmds = "/applications/{application_id}"
        guild_cmds = "/applications/{application_id}/guilds/{guild_id}"
        hook = "/webhooks/{webhook_id}/{webhook_token}"
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/users/@me", self.get_me),
            ("POST", "/users/@me/channels", self.create_dm),
            ("GET", "/users/{user_id}", self.get_user),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_bot_gateway),
            ("GET", f"{app_cmds}/commands", self.list_commands),
            ("PUT", f"{app_cmds}/commands", self.overwrite_commands),
            ("POST", f"{app_cmds}/commands", self.create_command),
            ("GET", f"{app_cmds}/commands/{{command_id}}", self.get_command),
            ("PATCH", f"{app_cmds}/commands/{{command_id}}", self.edit_command),
            ("DELETE", f"{app_cmds}/commands/{{command_id}}", self.delete_command),
            ("GET", f"{guild_cmds}/commands", self.list_commands),
            ("PUT", f"{guild_cmds}/commands", self.overwrite_commands),
            ("POST", f"{guild_cmds}/commands", self.create_command),
            ("GET", f"{guild_cmds}/commands/{{command_id}}", self.get_command),
            ("PATCH", f"{guild_cmds}/commands/{{command_id}}", self.edit_command),
            ("DELETE", f"{guild_cmds}/commands/{{command_id}}", self.delete_command),
            ("POST", "/interactions/{interaction_id}/{interaction_token}/callback", self.callback),
            ("POST", hook, self.followup),
            ("GET", f"{hook}/messages/@original", self.get_hook_message),
            ("PATCH", f"{hook}/messages/@original", self.edit_hook_message),
            ("DELETE", f"{hook}/messages/@original", self.delete_hook_message),
            ("GET", f"{hook}/messages/{{message_id}}", self.get_hook_message),
            ("PATCH", f"{hook}/messages/{{message_id}}", self.edit_hook_message),
            ("DELETE", f"{hook}/messages/{{message_id}}", self.delete_hook_message),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("GET", "/channels/{channel_id}/messages", self.list_messages),
            ("POST", "/channels/{channel_id}/typing", self.typing),
            ("POST", CREATE_MESSAGE, self.create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
        ]
        self._routes = [
            (
                method,
                template,
                re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"),
                h,
            )
            for method, template, h in table
        ]

    # --- plumbing ----------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        path = "/" + request.match_info["tail"]
        record = self.emu._record_request(request.method, path, dict(request.query))
        try:
            response = await self._dispatch(request, path, record, arrived)
        except ApiError as error:
            response = json_response(error.status, error.body, error.headers)
        record.status = response.status
        if response.status == 429:
            self.emu.rate_limited_count += 1
        return response

    async def _dispatch(
        self, request: web.Request, path: str, record: Any, arrived: float
    ) -> web.Response:
        method = request.method
        found = self._match(method, path)
        if found is None:
            self._violate(method, path, "unknown-route", "no such route in the emulator")
            raise ApiError(404, "404: Not Found")
        template, params, handler = found
        if method == "POST" and template == CREATE_MESSAGE:
            self._count_dm_attempt(params["channel_id"])

        body, uploads = await _read_body(request)
        record.json = body
        record.files = [{"filename": u.filename, "size": len(u.data)} for u in uploads]
        is_webhook = template.startswith(("/webhooks/", "/interactions/"))
        if not self._answers_interaction(template, params):
            self._check_global_limit()
        failure = self.emu._take_failure(method, path)
        if failure is not None and not failure[1]:
            raise failure[0]
        if not is_webhook:  # webhook and callback routes are authorised by their token
            self._check_auth(request, method, path)
        if uploads:
            self._check_upload_size(method, path, template, params, uploads)
        if _lone_surrogate(body):
            # Valid JSON escapes, but not text: Discord stores UTF-8 and refuses them
            # (discord-api-docs#6561). A member's half emoji, echoed back unscrubbed.
            self._violate(method, path, "lone-surrogate", "the body holds unencodable text")
            raise ApiError(400, KNOWN_ERRORS[50109], 50109)
        # The limits come first: they name the rule (2000 characters) better than the schema does.
        if isinstance(body, dict):
            problems = _limit_problems(method, template, body)
            if problems:
                self._reject(method, path, "limits", problems)
        if body is not None and self.emu._validator is not None:
            problems = self.emu._validator.validate(method, template, body)
            if problems:
                self._reject(method, path, "schema", problems)
        token = request.headers.get("Authorization", "").removeprefix("Bot ")
        call = Call(method, path, params, dict(request.query), body, uploads, arrived, token)
        status, payload = await handler(call)
        if failure is not None:  # handled, but the answer is "lost": the error goes out instead
            raise failure[0]
        return json_response(status, payload)

    def _match(self, method: str, path: str) -> tuple[str, dict[str, str], Handler] | None:
        for route_method, template, pattern, handler in self._routes:
            match = pattern.match(path)
            if match and route_method == method:
                return template, match.groupdict(), handler
        return None

    def _answers_interaction(self, template: str, params: dict[str, str]) -> bool:
        """Interaction callbacks and the application's interaction webhooks, which Discord
        exempts from the global rate limit."""
        if template.startswith("/interactions/"):
            return True
        application_id = str(self.world.application_id)
        return template.startswith("/webhooks/") and params["webhook_id"] == application_id

    def _check_global_limit(self) -> None:
        limit = self.emu.global_rate_limit
        if limit is None:
            return
        retry_after = self._global_window.admit(limit, time.monotonic())
        if retry_after is not None:
            raise globally_rate_limited(retry_after)

    def _count_dm_attempt(self, raw_channel_id: str) -> None:
        channel = self.world.channels.get(int(raw_channel_id)) if raw_channel_id.isdigit() else None
        if channel is not None and channel.type == DM and channel.recipient_id is not None:
            self.emu._dm_attempts[channel.recipient_id] += 1

    def _check_auth(self, request: web.Request, method: str, path: str) -> None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bot ") or header == "Bot invalid-token":
            if not header.startswith("Bot "):
                self._violate(method, path, "auth", f"Authorization header {header[:12]!r}...")
            raise ApiError(401, "401: Unauthorized")

    def _check_upload_size(
        self,
        method: str,
        path: str,
        template: str,
        params: dict[str, str],
        uploads: list[Upload],
    ) -> None:
        """Discord's 413 (code 40005) for files over the upload limit, counted together for the
        request: an interaction's answers may carry its ``attachment_size_limit``, anything
        else the emulator's ``attachment_size_limit``."""
        interaction = None
        if template.startswith("/interactions/"):
            interaction = self.emu._interactions.get(int(params["interaction_id"]))
        elif template.startswith("/webhooks/"):
            interaction = self.emu._interactions_by_token.get(params["webhook_token"])
        limit = self.emu.attachment_size_limit
        if interaction is not None:
            limit = int(interaction.payload.get("attachment_size_limit", limit))
        size = sum(len(upload.data) for upload in uploads)
        if size > limit:
            detail = f"{len(uploads)} file(s) of {size} bytes in all; the limit is {limit}"
            self._violate(method, path, "upload-size", detail)
            raise ApiError(413, KNOWN_ERRORS[40005], 40005)

    def _violate(self, method: str, path: str, rule: str, detail: str) -> None:
        self.emu._add_violation(method, path, rule, detail)

    def _reject(self, method: str, path: str, rule: str, problems: list[checks.Problem]) -> None:
        detail = "; ".join(f"{where}: {message}" for where, message in problems)
        self._violate(method, path, rule, detail)
        raise ApiError(400, "Invalid Form Body", 50035, errors=checks.form_errors(problems))

    def _refuse_empty(self, call: Call, body: dict[str, JSON]) -> None:
        keys = ("content", "embeds", "components", "sticker_ids", "poll")
        if not call.uploads and not any(body.get(k) for k in keys):
            self._violate(call.method, call.path, "empty-message", "no content, embeds or files")
            raise ApiError(400, "Cannot send an empty message", 50006)

    # --- users, application, gateway ------------------------------------------------------

    async def get_me(self, call: Call) -> tuple[int, JSON]:
        return 200, {**self.world.bot.payload(), "verified": True, "mfa_enabled": False}

    async def get_user(self, call: Call) -> tuple[int, JSON]:
        user = self.world.users.get(call.int_param("user_id"))
        if user is None:
            raise ApiError(404, "Unknown User", 10013)
        return 200, user.payload()

    async def create_dm(self, call: Call) -> tuple[int, JSON]:
        user_id = int(call.body["recipient_id"])
        if user_id not in self.world.users or user_id == self.world.bot.id:
            raise ApiError(400, "Invalid Recipient(s)", 50033)
        channel = self.world.dm_channel(user_id)
        return 200, self.world.channel_payload(channel)

    async def get_application(self, call: Call) -> tuple[int, JSON]:
        return 200, self.world.application_payload()

    async def get_gateway(self, call: Call) -> tuple[int, JSON]:
        return 200, {"url": self.emu.gateway_url}

    async def get_bot_gateway(self, call: Call) -> tuple[int, JSON]:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return 200, {
            "url": self.emu.gateway_url,
            "shards": self.emu.recommended_shards,
            "session_start_limit": limit,
        }

    # --- application commands ---------------------------------------------------------------

    def _scope(self, call: Call) -> dict[int, dict[str, JSON]]:
        if call.int_param("application_id") != self.world.application_id:
            raise _refused(50001)
        if "guild_id" not in call.params:
            return self.world.commands[None]
        return self.world.commands.setdefault(self._guild(call).id, {})

    def _command(
        self, call: Call, definition: dict[str, JSON], old: dict[str, JSON] | None
    ) -> JSON:
        problems = checks.check_command(definition)
        if problems:
            self._reject(call.method, call.path, "limits", problems)
        permissions = definition.get("default_member_permissions")
        command = {
            "type": 1,
            "description": "",
            "options": [],
            "name_localizations": None,
            "description_localizations": None,
            "contexts": None,
            "integration_types": [0],
            "nsfw": False,
            **(old or {}),
            **definition,
            "id": old["id"] if old else str(self.world.snowflake()),
            "application_id": str(self.world.application_id),
            "version": str(self.world.snowflake()),
            "default_member_permissions": None if permissions is None else str(permissions),
        }
        if not command["integration_types"]:
            # "Defaults to your app's configured contexts": the emulated app's is a guild
            # install only, so a member's user install reaches only commands that say so.
            command["integration_types"] = [0]
        if "guild_id" in call.params:
            command["guild_id"] = call.params["guild_id"]
        return command

    async def list_commands(self, call: Call) -> tuple[int, JSON]:
        return 200, list(self._scope(call).values())

    async def overwrite_commands(self, call: Call) -> tuple[int, JSON]:
        scope = self._scope(call)
        # Overwriting keeps the id of a command with the same name and type, as Discord does.
        by_key = {(c["name"], c.get("type", 1)): c for c in scope.values()}
        new = [self._command(call, d, by_key.get((d["name"], d.get("type", 1)))) for d in call.body]
        scope.clear()
        scope.update({int(c["id"]): c for c in new})
        return 200, new

    async def create_command(self, call: Call) -> tuple[int, JSON]:
        scope = self._scope(call)
        key = (call.body["name"], call.body.get("type", 1))
        old = next((c for c in scope.values() if (c["name"], c.get("type", 1)) == key), None)
        command = self._command(call, call.body, old)
        scope[int(command["id"])] = command
        return (200 if old else 201), command

    def _existing_command(self, call: Call) -> dict[str, JSON]:
        command = self._scope(call).get(call.int_param("command_id"))
        if command is None:
            raise ApiError(404, "Unknown application command", 10063)
        return command

    async def get_command(self, call: Call) -> tuple[int, JSON]:
        return 200, self._existing_command(call)

    async def edit_command(self, call: Call) -> tuple[int, JSON]:
        old = self._existing_command(call)
        command = self._command(call, {**old, **call.body}, old)
        self._scope(call)[int(command["id"])] = command
        return 200, command

    async def delete_command(self, call: Call) -> tuple[int, JSON]:
        self._existing_command(call)
        del self._scope(call)[call.int_param("command_id")]
        return 204, None

    # --- interaction callbacks ---------------------------------------------------------------

    async def callback(self, call: Call) -> tuple[int, JSON]:
        interaction = self.emu._interactions.get(call.int_param("interaction_id"))
        if interaction is None or interaction.token != call.params["interaction_token"]:
            self._violate(call.method, call.path, "unknown-interaction", "no such interaction")
            raise ApiError(404, "Unknown interaction", 10062)
        if interaction.acknowledged:
            self._violate(call.method, call.path, "double-ack", f"interaction {interaction.id}")
            raise ApiError(400, "Interaction has already been acknowledged.", 40060)
        elapsed = call.arrived - interaction.created
        if elapsed > self.emu.response_deadline:
            limit = self.emu.response_deadline
            detail = f"first response {elapsed:.2f}s after dispatch (limit {limit}s)"
            self._violate(call.method, call.path, "late", detail)
            raise ApiError(404, "Unknown interaction", 10062)

        kind = call.body.get("type")
        data = call.body.get("data") or {}
        needs_source = kind in (6, 7) and interaction.source_message_id is None
        if kind not in ALLOWED_CALLBACKS[interaction.type] or needs_source:
            detail = f"callback type {kind} cannot answer interaction type {interaction.type}"
            self._violate(call.method, call.path, "callback-type", detail)
            raise ApiError(400, "Interaction callback type is not allowed here", 50035)
        if kind == 4:
            self._refuse_empty(call, data)
        interaction.record_callback(call.body)
        message = self._apply_callback(interaction, kind, data, call.uploads)
        if call.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
        response: dict[str, JSON] = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message and message["flags"] & 64),
            },
            "resource": {"type": kind},
        }
        if message is not None:
            response["interaction"]["response_message_id"] = message["id"]
            response["resource"]["message"] = message
        return 200, response

    def _apply_callback(
        self, interaction: Interaction, kind: int, data: dict[str, JSON], uploads: list[Upload]
    ) -> dict[str, JSON] | None:
        world = self.world
        if kind == 4:
            message = self._interaction_message(interaction, data, uploads)
            interaction.original_id = int(message["id"])
            interaction.answer(interaction.original_id)
            return message
        if kind == 5:  # "thinking": a loading message the bot edits (or follows up) later
            flags = (int(data.get("flags") or 0) & 64) | MESSAGE_LOADING
            message = self._interaction_message(interaction, {"flags": flags}, [])
            interaction.original_id = int(message["id"])
            return message
        if kind in (6, 7):
            interaction.original_id = interaction.source_message_id
            assert interaction.original_id is not None
            if kind == 6:
                return None
            message = world.edit_message(world.messages[interaction.original_id], data, uploads)
            interaction.answer(interaction.original_id)
            return message
        if kind == 9:
            self.emu._modal_origins[(interaction.user_id, data.get("custom_id"))] = interaction
        interaction.answer()  # 8 (choices) and 9 (modal) are complete answers
        return None

    def _interaction_message(
        self, interaction: Interaction, body: dict[str, JSON], uploads: list[Upload]
    ) -> dict[str, JSON]:
        owners = interaction.payload.get("authorizing_integration_owners", {})
        return self.world.create_message(
            interaction.channel_id,
            body,
            uploads,
            type=20 if interaction.type == APPLICATION_COMMAND else 0,
            webhook_id=str(self.world.application_id),
            application_id=str(self.world.application_id),
            interaction_metadata={
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self.world.users[interaction.user_id].payload(),
                "authorizing_integration_owners": owners,
            },
        )

    # --- interaction webhooks (follow-ups, @original) -------------------------------------

    def _hook_interaction(self, call: Call) -> Interaction:
        token = call.params["webhook_token"]
        interaction = self.emu._interactions_by_token.get(token)
        if interaction is None or call.int_param("webhook_id") != self.world.application_id:
            self._violate(
                call.method, call.path, "unknown-webhook", "no interaction with this token"
            )
            raise ApiError(404, "Unknown Webhook", 10015)
        if interaction.expired:
            self._violate(
                call.method, call.path, "expired-token", "interaction token is 15 min old"
            )
            raise ApiError(401, "Invalid Webhook Token", 50027)
        if not interaction.acknowledged:
            detail = "follow-up or edit before the interaction was acknowledged"
            self._violate(call.method, call.path, "not-acknowledged", detail)
            raise ApiError(404, "Unknown Webhook", 10015)
        return interaction

    def _hook_message(self, call: Call, interaction: Interaction) -> dict[str, JSON]:
        raw = call.params.get("message_id", "@original")
        message_id = interaction.original_id if raw == "@original" else call.int_param("message_id")
        own = {interaction.original_id, *(int(m["id"]) for m in interaction.followups)}
        if message_id is None or message_id not in own or message_id in self.emu._deleted:
            raise ApiError(404, "Unknown Message", 10008)
        return self.world.messages[message_id]

    async def followup(self, call: Call) -> tuple[int, JSON]:
        interaction = self._hook_interaction(call)
        self._refuse_empty(call, call.body or {})
        original = self.world.messages.get(interaction.original_id or 0)
        if original is not None and original["flags"] & MESSAGE_LOADING:
            # The first follow-up to a "thinking" response replaces the loading message.
            message = self.world.edit_message(original, call.body, call.uploads)
            message["flags"] &= ~MESSAGE_LOADING
        else:
            message = self._interaction_message(interaction, call.body, call.uploads)
            interaction.followups.append(message)
        interaction.answer(int(message["id"]))
        wait = call.query.get("wait", "").lower() in ("1", "true")
        return (200, message) if wait else (204, None)

    async def get_hook_message(self, call: Call) -> tuple[int, JSON]:
        return 200, self._hook_message(call, self._hook_interaction(call))

    async def edit_hook_message(self, call: Call) -> tuple[int, JSON]:
        interaction = self._hook_interaction(call)
        message = self._hook_message(call, interaction)
        self.world.edit_message(message, call.body or {}, call.uploads)
        message["flags"] &= ~MESSAGE_LOADING
        interaction.answer(int(message["id"]))
        return 200, message

    async def delete_hook_message(self, call: Call) -> tuple[int, JSON]:
        message = self._hook_message(call, self._hook_interaction(call))
        self.emu._delete_message(int(message["id"]))
        return 204, None

    # --- channels and messages -------------------------------------------------------------

    def _channel(self, call: Call) -> int:
        """The channel of the path, if it exists for the bot: a guild channel it cannot see
        (or whose server it left) is 403 Missing Access, as on Discord."""
        channel_id = call.int_param("channel_id")
        if channel_id not in self.world.channels:
            raise ApiError(404, "Unknown Channel", 10003)
        if not self.world.can_access(self.world.bot.id, channel_id):
            raise _refused(50001)
        return channel_id

    def _channel_message(self, call: Call) -> dict[str, JSON]:
        channel_id = self._channel(call)
        message = self.world.messages.get(call.int_param("message_id"))
        if (
            message is None
            or int(message["channel_id"]) != channel_id
            or int(message["id"]) in self.emu._deleted
            or message["flags"] & 64  # ephemeral messages are reachable only via the webhook
        ):
            raise ApiError(404, "Unknown Message", 10008)
        return message

    async def get_channel(self, call: Call) -> tuple[int, JSON]:
        return 200, self.world.channel_payload(self.world.channels[self._channel(call)])

    async def typing(self, call: Call) -> tuple[int, JSON]:
        self._channel(call)
        return 204, None

    async def list_messages(self, call: Call) -> tuple[int, JSON]:
        channel_id = self._channel(call)
        if not self.world.permissions(self.world.bot.id, channel_id) & READ_MESSAGE_HISTORY:
            return 200, []  # documented: no history to read, so no messages
        limit = int(call.query.get("limit", 50))
        newest_first = list(reversed(self.emu.channel_messages(channel_id)))
        return 200, newest_first[:limit]

    async def create_message(self, call: Call) -> tuple[int, JSON]:
        channel_id = self._channel(call)
        body = call.body or {}
        self._refuse_empty(call, body)
        recipient = self.world.channels[channel_id].recipient_id
        if recipient in self.world.dms_closed:
            raise _refused(50007)
        if recipient is None:
            body = self._as_permitted(call, channel_id, body)
        nonce = body.get("nonce")
        now = time.monotonic()
        self._forget_old_nonces(now)
        if nonce is not None and body.get("enforce_nonce"):
            seen = self._nonces.get((channel_id, str(nonce)))
            if seen is not None:
                self.emu._count_message_create(channel_id, deduplicated=True)
                return 200, self.world.messages[seen[1]]
        reference = self._reference(call, channel_id, body.get("message_reference"))
        message = self.world.create_message(channel_id, body, call.uploads, reference=reference)
        self.emu._count_message_create(channel_id, deduplicated=False, token=call.token)
        if nonce is not None:
            key = (channel_id, str(nonce))
            self._nonces.pop(key, None)  # re-inserted at the end: the dict stays oldest first
            self._nonces[key] = (now, int(message["id"]))
        return 200, message

    def _reference(self, call: Call, channel_id: int, reference: JSON) -> dict[str, JSON] | None:
        """The message a reply answers, refused as Discord refuses it (Create Message: the
        reply needs READ_MESSAGE_HISTORY; the message must exist in this channel and be no
        system message), or None: no reply, or one to a missing message sent anyway
        (``fail_if_not_exists`` false). Forwards (type 1) are not modelled."""
        if not isinstance(reference, dict):
            return None
        if reference.get("type") == 1:
            detail = "forwarding (message_reference type 1) is not modelled by the emulator"
            self._violate(call.method, call.path, "unsupported", detail)
            raise ApiError(400, "Forwarding is not supported by the emulator", 50035)
        raw_id = str(reference.get("message_id"))
        if not raw_id.isdigit():  # the spec requires it; checked even where the spec is absent
            self._violate(call.method, call.path, "schema", "message_reference.message_id")
            raise _form_error(
                "message_reference.message_id", "BASE_TYPE_REQUIRED", "This field is required"
            )
        channel = self.world.channels[channel_id]
        permissions = self.world.permissions(self.world.bot.id, channel_id)
        if channel.guild_id is not None and not permissions & READ_MESSAGE_HISTORY:
            raise _refused(50013)
        target = self.world.messages.get(int(raw_id))
        elsewhere = str(reference.get("channel_id") or channel_id) != str(channel_id)
        if (
            target is None
            or elsewhere
            or int(target["channel_id"]) != channel_id
            or int(target["id"]) in self.emu._deleted
            or target["flags"] & 64
        ):
            if reference.get("fail_if_not_exists") is False:
                return None
            raise _form_error("message_reference", "REPLIES_UNKNOWN_MESSAGE", "Unknown message")
        if target["type"] not in REPLYABLE_TYPES:
            raise _form_error(
                "message_reference",
                "REPLIES_CANNOT_REPLY_TO_SYSTEM_MESSAGE",
                "Cannot reply to a system message",
            )
        return target

    def _as_permitted(self, call: Call, channel_id: int, body: dict[str, JSON]) -> JSON:
        """What of the body the bot may post in the guild channel (refused as Discord refuses).

        Create Message's documented limitations: SEND_MESSAGES, and SEND_TTS_MESSAGES for tts;
        files need ATTACH_FILES. Embeds without EMBED_LINKS are dropped, and a message left
        with nothing is 403 Missing Permissions (discord-api-docs issues #2601 and #5648). A
        category holds no messages: 50008. The recorded body stays as the bot sent it.
        """
        channel = self.world.channels[channel_id]
        if channel.type not in MESSAGE_CHANNEL_TYPES:
            raise ApiError(400, KNOWN_ERRORS[50008], 50008)
        permissions = self.world.permissions(self.world.bot.id, channel_id)
        needed = SEND_MESSAGES | (SEND_TTS_MESSAGES if body.get("tts") else 0)
        needed |= ATTACH_FILES if call.uploads else 0
        if permissions & needed != needed:
            raise _refused(50013)
        if body.get("embeds") and not permissions & EMBED_LINKS:
            body = {**body, "embeds": []}
            keys = ("content", "components", "sticker_ids", "poll")
            if not any(body.get(k) for k in keys):
                raise _refused(50013)
        return body

    def _forget_old_nonces(self, now: float) -> None:
        """Drop nonces past Discord's window (discord.py sends one with every message, so
        keeping them all would grow without bound)."""
        while self._nonces:
            key, (when, _) = next(iter(self._nonces.items()))
            if now - when < NONCE_WINDOW:
                return
            del self._nonces[key]

    async def get_message(self, call: Call) -> tuple[int, JSON]:
        return 200, self._channel_message(call)

    async def edit_message(self, call: Call) -> tuple[int, JSON]:
        message = self._channel_message(call)
        return 200, self.world.edit_message(message, call.body or {}, call.uploads)

    async def delete_message(self, call: Call) -> tuple[int, JSON]:
        self.emu._delete_message(int(self._channel_message(call)["id"]))
        return 204, None

    # --- guilds ---------------------------------------------------------------------------

    def _guild(self, call: Call) -> Guild:
        """The guild of the path; one the bot is not in is 403 Missing Access, as on Discord."""
        guild = self.world.guilds.get(call.int_param("guild_id"))
        if guild is None:
            raise ApiError(404, "Unknown Guild", 10004)
        if self.world.bot.id not in guild.members:
            raise _refused(50001)
        return guild

    async def get_guild(self, call: Call) -> tuple[int, JSON]:
        guild = self._guild(call)
        payload = self.world.guild_payload(guild)
        if call.query.get("with_counts", "").lower() in ("1", "true"):
            payload["approximate_member_count"] = len(guild.members)
            payload["approximate_presence_count"] = 0
        return 200, payload

    async def get_guild_channels(self, call: Call) -> tuple[int, JSON]:
        guild = self._guild(call)
        return 200, [self.world.channel_payload(self.world.channels[c]) for c in guild.channel_ids]

    async def get_member(self, call: Call) -> tuple[int, JSON]:
        guild = self._guild(call)
        member = guild.members.get(call.int_param("user_id"))
        if member is None:
            raise ApiError(404, "Unknown Member", 10007)
        return 200, self.world.member_payload(guild, member)


def _limit_problems(method: str, template: str, body: dict[str, JSON]) -> list[checks.Problem]:
    """The hand-written limits that apply to this route's body."""
    if template.endswith("/callback"):
        data = body.get("data") or {}
        kind = body.get("type")
        if kind in (4, 7):
            return [(f"data.{where}", m) for where, m in checks.check_message(data)]
        if kind == 8:
            return checks.check_choices(data.get("choices") or [])
        if kind == 9:
            return checks.check_modal(data)
        return []
    carries_message = template.startswith("/webhooks/") or template.startswith(CREATE_MESSAGE)
    if carries_message and method in ("POST", "PATCH"):
        problems = checks.check_message(body)
        if template == CREATE_MESSAGE and method == "POST":
            problems += checks.check_nonce(body)
        return problems
    return []


def _form_error(field: str, code: str, message: str) -> ApiError:
    """Discord's 400 Invalid Form Body naming one field ("a.b": nested) and why (its error
    ``code``)."""
    errors: dict[str, JSON] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(field.split(".")):
        errors = {part: errors}
    return ApiError(400, "Invalid Form Body", 50035, errors=errors)


def _refused(code: int) -> ApiError:
    """Discord's 403 for a known code: what a well-behaved bot may still meet."""
    return ApiError(403, KNOWN_ERRORS[code], code)


def rate_limited(retry_after: float) -> ApiError:
    """A per-route 429 that discord.py retries (it wants the ``Via`` header, else: Cloudflare)."""
    headers = {
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Scope": "user",
        "Via": "1.1 google",
    }
    extra = {"retry_after": retry_after, "global": False}
    return ApiError(429, "You are being rate limited.", 0, headers=headers, extra=extra)


def globally_rate_limited(retry_after: float) -> ApiError:
    """Discord's global 429: discord.py holds *every* request for ``retry_after`` (it reads
    ``global`` from the body) and retries; without ``Via`` it would take it for a Cloudflare
    ban and give up."""
    headers = {
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Global": "true",
        "X-RateLimit-Scope": "global",
        "Via": "1.1 google",
    }
    extra = {"retry_after": retry_after, "global": True}
    return ApiError(429, "You are being rate limited.", 0, headers=headers, extra=extra)


class SlidingWindow:
    """At most ``limit`` requests in any one-second window (below 1/s: one per 1/limit s)."""

    def __init__(self) -> None:
        self._admitted: deque[float] = deque()

    def admit(self, limit: float, now: float) -> float | None:
        """Admit a request at ``now`` (None), or say how many seconds until one would fit."""
        window = max(1.0, 1.0 / limit)
        capacity = max(1, int(limit))
        while self._admitted and now - self._admitted[0] >= window:
            self._admitted.popleft()
        if len(self._admitted) < capacity:
            self._admitted.append(now)
            return None
        frees_up = self._admitted[len(self._admitted) - capacity] + window
        # Rounded up to the millisecond, so a client sleeping exactly that long fits.
        return math.ceil((frees_up - now) * 1000) / 1000


async def _read_body(request: web.Request) -> tuple[JSON, list[Upload]]:
    """JSON body, or ``payload_json`` plus ``files[n]`` parts of a multipart body."""
    if request.content_type == "multipart/form-data":
        body: JSON = None
        uploads: list[Upload] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue  # nested multiparts are not something discord.py sends
            name = part.name or ""
            data = await part.read()
            if name == "payload_json":
                body = _parse_json(bytes(data))
            elif match := re.fullmatch(r"files\[(\d+)\]", name):
                content_type = part.headers.get("Content-Type", "")
                filename = part.filename or f"file{match.group(1)}"
                uploads.append(Upload(int(match.group(1)), filename, content_type, bytes(data)))
        return body, uploads
    raw = await request.read()
    return (_parse_json(raw) if raw else None), []


SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(value: JSON) -> bool:
    """Whether any string in a parsed body holds half of a UTF-16 surrogate pair (json.loads
    joins a whole pair into its one character)."""
    if isinstance(value, str):
        return SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(item) for item in value)
    return False


def _parse_json(raw: bytes) -> JSON:
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, KNOWN_ERRORS[50109], 50109) from None
