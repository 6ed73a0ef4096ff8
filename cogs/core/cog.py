"""The base of every feature cog: commands and routes declared where they are handled.

Slash commands are declared on the class (``@app_commands.command``, or an
``app_commands.Group`` attribute and its ``@group.command``); discord.py adds and removes them
with the cog. Buttons and forms are declared with ``@button(route)`` and ``@form(route)`` on
their handlers; this base adds them to the bot's router when the cog loads and removes them
when it unloads. No cog registers anything by hand.
"""

from discord.ext import commands

from cogs.core.bot import CrossroadsBot


class FeatureCog(commands.Cog):
    def __init__(self, bot: CrossroadsBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.router.add_routes(self)

    async def cog_unload(self) -> None:
        self.bot.router.remove_routes(self)
