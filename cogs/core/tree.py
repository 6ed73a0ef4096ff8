"""The command tree: every slash-command error ends in an answer the member can read.

This module relies on discord.py beyond its public API, as only cogs/core/ratelimits.py also
does (each reliance is guarded by a test in tests/cogs/test_tree.py that fails when a
discord.py release changes it):

- ``CommandTree._call``, to give every autocomplete a time budget and an answer whatever
  happened; no public hook sees an autocomplete that raised, hung or was forged.
- ``Command._params``, to give a declared command's option choices that come from content
  known only at start-up (discord.py fixes choices when the class is defined).
"""

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import discord
from discord import app_commands

from cogs.core.errors import (
    handle_interaction_error,
    outcome_of,
    typed_options,
    worth_one_more_try,
)
from cogs.core.metrics import InteractionOutcome, interaction_began, interaction_ended

log = logging.getLogger(__name__)

# Discord waits 3 seconds for choices; past this we answer with none rather than not at all.
AUTOCOMPLETE_BUDGET_SECONDS = 2.0
ONCE_MORE = "crossroads.once_more"  # in interaction.extras: a command already run twice


class CrossroadsTree(app_commands.CommandTree[discord.Client]):
    autocomplete_budget = AUTOCOMPLETE_BUDGET_SECONDS

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if worth_one_more_try(interaction, error) and not interaction.extras.get(ONCE_MORE):
            interaction.extras[ONCE_MORE] = True
            interaction.command_failed = False  # so a success now counts as one
            log.info("/%s lost a race with another write; once more", _command_name(interaction))
            await super()._call(interaction)  # a second failure comes back here, and is told
            return
        await handle_interaction_error(interaction, error, typed=typed_options(interaction))

    async def _call(self, interaction: discord.Interaction) -> None:
        """Run the command; an autocomplete always ends with choices, an empty list at worst.

        discord.py only logs an autocomplete that raised (it never reaches on_error), and a
        hung database would leave the member's client spinning: so every autocomplete gets a
        time budget here, and whatever went wrong, this answers.
        """
        interaction_began(interaction)  # each ends counted: here, or where its error is answered
        if interaction.type is not discord.InteractionType.autocomplete:
            await super()._call(interaction)  # an error goes on to on_error, which counts it
            interaction_ended(interaction, InteractionOutcome.ANSWERED)
            return
        outcome = InteractionOutcome.ANSWERED
        try:
            async with asyncio.timeout(self.autocomplete_budget):
                await super()._call(interaction)
        except TimeoutError:
            outcome = InteractionOutcome.OUR_ERROR
            log.warning("autocomplete for %s ran out of time", _command_name(interaction))
        except Exception as error:
            outcome = outcome_of(error)
            raise
        finally:
            if not interaction.response.is_done():
                try:
                    await interaction.response.autocomplete([])
                except discord.HTTPException as exc:
                    log.warning("could not answer an autocomplete: %s", exc)
            interaction_ended(interaction, outcome)


def _command_name(interaction: discord.Interaction) -> str:
    data: Mapping[str, object] = interaction.data or {}
    return str(data.get("name", "?"))[:100]


def fill_choices(
    command: app_commands.Command[Any, ..., Any],
    parameter: str,
    choices: list[app_commands.Choice[str | int | float]],
) -> None:
    """Give `parameter` of a cog's own copy of a declared command these choices.

    The parameter is replaced, not changed: the copies discord.py makes for each cog share
    their parameters with the class's command, and two bots in one process (tests) may hold
    different content.
    """
    params = command._params
    params[parameter] = dataclasses.replace(params[parameter], choices=choices)
