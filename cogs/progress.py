"""/progress: how your thinking moved, as an embed and a chart (drawn off the bot's process)."""

import discord
from discord import app_commands

from cogs.core.bot import CrossroadsBot
from cogs.core.cog import FeatureCog
from cogs.core.reply import acknowledge, reply
from cogs.core.summary import progress_embed, start_message
from db.progress import progress_data


class Progress(FeatureCog):
    @app_commands.command(
        name="progress", description="Your coverage, then-vs-now, decision trend and a chart"
    )
    async def progress(self, interaction: discord.Interaction) -> None:
        await acknowledge(interaction, thinking=True)
        async with self.bot.database.read() as session:
            data = await progress_data(session, self.bot.cipher, user_id=interaction.user.id)
        if data.empty:
            await reply(interaction, start_message(self.bot.content))
            return
        chart = await self.bot.charts.chart(data, self.bot.content, member=interaction.user.id)
        embed = progress_embed(self.bot.content, data, now=self.bot.clock.now(), chart=chart)
        await reply(interaction, embed=embed, files=[chart.file()] if chart else [])


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Progress(bot))
