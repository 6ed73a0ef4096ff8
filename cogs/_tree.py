"""The command tree: every slash-command error ends in an answer the member can read."""

import asyncio
import logging

import discord
from discord import app_commands

from cogs._errors import handle_interaction_error, typed_options

log = logging.getLogger(__name__)

# Discord waits 3 seconds for choices; past this we answer with none rather than not at all.
AUTOCOMPLETE_BUDGET_SECONDS = 2.0


class CrossroadsTree(app_commands.CommandTree[discord.Client]):
    autocomplete_budget = AUTOCOMPLETE_BUDGET_SECONDS

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await handle_interaction_error(interaction, error, typed=typed_options(interaction))

    async def _call(self, interaction: discord.Interaction) -> None:
        """Run the command; an autocomplete always ends with choices, an empty list at worst.

        discord.py only logs an autocomplete that raised (it never reaches on_error), and a
        hung database would leave the member's client spinning: so every autocomplete gets a
        time budget here, and whatever went wrong, this answers.
        """
        if interaction.type is not discord.InteractionType.autocomplete:
            await super()._call(interaction)
            return
        try:
            async with asyncio.timeout(self.autocomplete_budget):
                await super()._call(interaction)
        except TimeoutError:
            log.warning("autocomplete for %s ran out of time", _command_name(interaction))
        finally:
            if not interaction.response.is_done():
                try:
                    await interaction.response.autocomplete([])
                except discord.HTTPException as exc:
                    log.warning("could not answer an autocomplete: %s", exc)


def _command_name(interaction: discord.Interaction) -> str:
    data = interaction.data or {}
    return str(data.get("name", "?"))[:100]
