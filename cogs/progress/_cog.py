"""/progress: how your thinking moved, as an embed and a chart (rendered off the event loop)."""

import asyncio
import io
from datetime import UTC
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import discord
from discord import app_commands
from discord.ext import commands

from cogs._bot import CrossroadsBot
from cogs._reply import reply
from cogs.progress._chart import ComfortSample, LeaningSample, render_progress_chart
from cogs.progress._render import CHART_FILENAME, progress_embed, start_message
from db.progress import ProgressData, progress_data


def chart_png(bot: CrossroadsBot, data: ProgressData) -> bytes:
    """Runs in a worker thread: matplotlib is CPU-bound and would stall every other member."""
    try:
        zone = ZoneInfo(data.timezone) if data.timezone else None
    except ZoneInfoNotFoundError:
        zone = None
    labels = {point.slug: point.label for point in bot.content.points}
    comfort = [ComfortSample(m.point, m.created_at, m.comfort) for m in data.marks if m.comfort]
    leanings = [LeaningSample(s.created_at, int(s.leaning)) for s in data.stances]
    return render_progress_chart(comfort, leanings, labels=labels, tz=zone or UTC)


class Progress(commands.Cog):
    def __init__(self, bot: CrossroadsBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="progress", description="Your coverage, then-vs-now, decision trend and a chart"
    )
    async def progress(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.database.read() as session:
            data = await progress_data(session, self.bot.cipher, user_id=interaction.user.id)
        if data.empty:
            await reply(interaction, start_message(self.bot.content))
            return
        embed = progress_embed(self.bot.content, data, now=self.bot.clock.now())
        png = await asyncio.to_thread(chart_png, self.bot, data)
        await reply(interaction, embed=embed, files=[discord.File(io.BytesIO(png), CHART_FILENAME)])
