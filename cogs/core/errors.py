"""One place that turns any failure of an interaction into an answer the member can read."""

import logging
import secrets
from collections.abc import Mapping

import discord
from discord import app_commands

from advice.errors import UserFacingError
from cogs.core.metrics import InteractionOutcome, interaction_ended
from cogs.core.reply import reply
from cogs.core.text import scrub, text_file
from db import StorageUnavailable
from db.crypto import DecryptionFailed
from db.database import ConcurrentChange

log = logging.getLogger(__name__)


def _cause(error: BaseException) -> BaseException:
    """The error a command raised, unwrapped from discord.py's CommandInvokeError."""
    if isinstance(error, app_commands.CommandInvokeError):
        return error.original
    return error


def worth_one_more_try(interaction: discord.Interaction, error: BaseException) -> bool:
    """A write that lost a deadlock or serialization failure, with nothing answered yet (an
    acknowledgement at most): run the handler again, once, before telling the member
    (db.ConcurrentChange). Handlers acknowledge with cogs.core.reply.acknowledge, which a
    second run finds done."""
    cause = _cause(error)
    answered = interaction.response.is_done() and interaction.response.type not in ACKNOWLEDGED
    return isinstance(cause, ConcurrentChange) and cause.retryable and not answered


# What cogs.core.reply.acknowledge leaves: the answer is still to come.
ACKNOWLEDGED = (
    discord.InteractionResponseType.deferred_channel_message,
    discord.InteractionResponseType.deferred_message_update,
)


UNREADABLE = (
    "Your stored writing can't be decrypted right now (the bot's encryption key does not "
    "match it), so it can't be shown. Nothing was changed or lost; the bot's operator has "
    "been told."
)
TOO_LARGE = (
    "Discord refused the files of this answer as too large for you here, so they could not "
    "be delivered. Nothing you stored was changed."
)
DISCORD_DOWN = (
    "Discord had trouble delivering this answer. Nothing you stored was changed; please try "
    "again in a few minutes."
)
REQUEST_TOO_LARGE = 40005  # Discord's code for a 413: the upload was over the limit


def _explain(error: BaseException) -> str | None:
    """The member-safe explanation of an expected error, or None for a bug."""
    cause = _cause(error)
    if isinstance(cause, UserFacingError):
        return cause.message
    if isinstance(cause, DecryptionFailed):
        return UNREADABLE
    if isinstance(cause, discord.HTTPException):  # Discord refused or failed our answer
        if cause.status == 413 or cause.code == REQUEST_TOO_LARGE:
            return TOO_LARGE
        if cause.status >= 500:
            return DISCORD_DOWN
        return None  # any other refusal means we sent something wrong: a bug
    if isinstance(error.__cause__, UserFacingError):  # raised inside a transformer
        return error.__cause__.message
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command works inside a server, not in direct messages."
    if isinstance(error, app_commands.MissingPermissions):
        return "Only members with the Manage Server permission can use this command."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f} seconds."
    if isinstance(error, app_commands.TransformerError):
        if error.type is discord.AppCommandOptionType.channel:  # a forged or stale pick
            return (
                f"“{_shown(error.value)}” isn't a channel I can use here: pick a text or "
                "announcement channel of this server from the list."
            )
        return f"“{_shown(error.value)}” is not a valid choice here."
    if isinstance(error, app_commands.CommandSignatureMismatch | app_commands.CommandNotFound):
        return "This command changed since Discord last loaded it. Please try again in a minute."
    if isinstance(error, app_commands.CheckFailure):
        return "You can't use this command here."
    return None


def outcome_of(error: BaseException) -> InteractionOutcome:
    """How a failed interaction ends, as the metrics count it."""
    cause = _cause(error)
    if isinstance(cause, StorageUnavailable) or isinstance(error.__cause__, StorageUnavailable):
        return InteractionOutcome.STORAGE_UNAVAILABLE
    if _explain(error) is None or isinstance(cause, DecryptionFailed | discord.HTTPException):
        return InteractionOutcome.OUR_ERROR  # a bug, a key that does not fit, Discord's refusal
    return InteractionOutcome.USER_ERROR


def _shown(value: object) -> str:
    """A member's value quoted back to them: short, and encodable whatever they sent."""
    return scrub(str(value)[:100])


async def handle_interaction_error(
    interaction: discord.Interaction, error: BaseException, *, typed: str | None = None
) -> None:
    """Answer the member (ephemerally); log bugs with a traceback and an id they can quote.

    `typed` is what the member wrote in the failed interaction. It goes back to them as a
    file whatever failed: a bug, storage down, or another of their inputs (a bad choice must
    not cost them the reason they wrote beside it); a form's text especially, since Discord's
    client forgets it once submitted.
    """
    message = _explain(error)
    cause = _cause(error)
    if message is not None and isinstance(cause, DecryptionFailed | discord.HTTPException):
        # Explained to the member, but the operator must hear of it too.
        log.error("interaction %s (%s): %r", interaction.id, _describe(interaction), cause)
    if interaction.type is discord.InteractionType.autocomplete:
        # Autocomplete cannot show a message; an empty list beats a spinner that never ends.
        log.log(logging.INFO if message else logging.ERROR, "autocomplete failed", exc_info=error)
        try:
            if not interaction.response.is_done():
                await interaction.response.autocomplete([])
        finally:
            interaction_ended(interaction, outcome_of(error))
        return
    if message is None:
        error_id = secrets.token_hex(4)
        log.error(
            "error %s in interaction %s (%s)",
            error_id,
            interaction.id,
            _describe(interaction),
            exc_info=error,
        )
        refused = (
            "Discord refused this answer: " if isinstance(cause, discord.HTTPException) else ""
        )
        message = (
            f"Sorry, {refused}something went wrong on our side and it was logged. "
            f"If it keeps happening, give the bot's operator this error id: `{error_id}`."
        )
    files = []
    if typed and typed.strip():
        message += " What you wrote is attached, so nothing is lost."
        files.append(text_file(typed, "what-you-wrote.txt"))
    try:
        # An explanation may quote what the member typed; Discord refuses half a surrogate pair.
        await reply(interaction, scrub(message), files=files)
    except discord.HTTPException as exc:
        # Too late or already gone (e.g. the token expired): nothing more we can tell them.
        log.warning("could not tell the member about an error: %s", exc)
    finally:
        interaction_ended(interaction, outcome_of(error))


def _describe(interaction: discord.Interaction) -> str:
    if interaction.command is not None:
        return f"/{interaction.command.qualified_name}"
    data: Mapping[str, object] = interaction.data or {}
    return str(data.get("custom_id", interaction.type.name))[:100]


def typed_options(interaction: discord.Interaction) -> str | None:
    """The free text a member typed into a slash command's options (not picked choices)."""
    command = interaction.command
    if not isinstance(command, app_commands.Command):
        return None
    free = {
        p.name
        for p in command.parameters
        if p.type is discord.AppCommandOptionType.string and not p.choices and not p.autocomplete
    }
    texts = [v for name, v in interaction.namespace if name in free and isinstance(v, str)]
    return "\n\n".join(texts) or None
