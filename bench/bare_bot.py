"""The baseline bot of bench/interactions.py: the least a discord.py bot can do.

It imports nothing of Crossroads (it points discord.py at the emulator itself), so run on its own
(`python bench/bare_bot.py EMULATOR_URL`)
its memory is what any discord.py bot costs.
"""

import asyncio
import signal
import sys

import discord
import yarl
from discord import app_commands


class BareBot(discord.Client):
    """The least a discord.py bot can do for /advice purpose: answer "ok", privately."""

    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(intents=intents)
        self.tree: app_commands.CommandTree[BareBot] = app_commands.CommandTree(self)
        advice = app_commands.Group(name="advice", description="Baseline group")

        @advice.command(name="purpose", description="Baseline no-op")
        async def purpose(interaction: discord.Interaction[BareBot]) -> None:
            await interaction.response.send_message("ok", ephemeral=True)

        self.tree.add_command(advice)

    async def setup_hook(self) -> None:
        await self.tree.sync()  # a fresh emulator knows no commands


async def serve(root: str) -> None:
    """Run against the emulator at `root` until SIGTERM."""
    discord.http.Route.BASE = f"{root}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
        root.replace("http", "ws", 1) + "/gateway"
    )
    bot = BareBot()
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: asyncio.ensure_future(bot.close())
    )
    async with bot:
        await bot.start("bench-token")


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
