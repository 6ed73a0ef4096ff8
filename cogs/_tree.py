"""The command tree: every slash-command error ends in an answer the member can read."""

import discord
from discord import app_commands

from cogs._errors import handle_interaction_error, typed_options


class CrossroadsTree(app_commands.CommandTree[discord.Client]):
    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await handle_interaction_error(interaction, error, typed=typed_options(interaction))
