"""The one way cogs answer an interaction, whether or not it was already answered."""

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import discord

T = TypeVar("T")

# Personal replies are private unless a feature says otherwise.
EPHEMERAL_DEFAULT = True
# Work not done by then is answered "thinking…" first, well inside Discord's three seconds;
# most is done in milliseconds, and then the answer is the one request.
DEFER_AFTER_S = 1.0


async def in_time(interaction: discord.Interaction, work: Awaitable[T]) -> T:
    """Await `work` (a write, say) for the answer, deferring the interaction privately if it
    is not done within DEFER_AFTER_S: a slow database never costs the member the answer."""
    task = asyncio.ensure_future(work)
    try:
        if not interaction.response.is_done():
            done, _ = await asyncio.wait({task}, timeout=DEFER_AFTER_S)
            if not done:
                await interaction.response.defer(ephemeral=True, thinking=True)
        return await task
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        if not task.done():  # deferring failed: the work still ends, its outcome unread
            task.add_done_callback(lambda ended: ended.cancelled() or ended.exception())


async def reply(
    interaction: discord.Interaction,
    content: str | None = None,
    *,
    embed: discord.Embed | None = None,
    view: discord.ui.View | None = None,
    files: list[discord.File] | None = None,
    ephemeral: bool = EPHEMERAL_DEFAULT,
) -> None:
    """Send the answer: the first response if none was sent yet, else a follow-up.

    A deferred interaction gets its "thinking…" placeholder replaced by this answer.
    """
    kwargs: dict[str, Any] = {"content": content}
    if embed is not None:
        kwargs["embed"] = embed
    if view is not None:
        kwargs["view"] = view
    if files:
        kwargs["files"] = files
    if not interaction.response.is_done():
        await interaction.response.send_message(ephemeral=ephemeral, **kwargs)
        return
    deferred = interaction.response.type is discord.InteractionResponseType.deferred_channel_message
    if deferred and not interaction.extras.get("placeholder_replaced"):
        # The placeholder keeps the privacy chosen when deferring, so `ephemeral` is moot here.
        interaction.extras["placeholder_replaced"] = True
        if "files" in kwargs:
            kwargs["attachments"] = kwargs.pop("files")
        await interaction.edit_original_response(**kwargs)
        return
    await interaction.followup.send(ephemeral=ephemeral, **kwargs)


async def acknowledge(interaction: discord.Interaction, *, thinking: bool = False) -> None:
    """Tell Discord the answer is coming, when the work may outlast its three seconds: with
    "thinking…" and privately for a command (`thinking`), silently for a press or a form.

    Once only: a handler run again after its write lost a race with another (see
    cogs.core.errors.worth_one_more_try) finds it done and goes on."""
    if interaction.response.is_done():
        return
    if thinking:
        await interaction.response.defer(ephemeral=True, thinking=True)
    else:
        await interaction.response.defer()
