"""/progress: how your thinking moved, as an embed and a chart (rendered off the bot's process)."""

import io
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import discord
from discord import app_commands
from discord.ext import commands

from cogs._bot import CrossroadsBot
from cogs._reply import reply
from cogs.progress._render import CHART_FILENAME, progress_embed, start_message
from cogs.progress._samples import ComfortSample, LeaningSample
from db.progress import ProgressData, progress_data


def member_zone(data: ProgressData) -> tzinfo:
    try:
        return ZoneInfo(data.timezone) if data.timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def chart_samples(data: ProgressData) -> tuple[list[ComfortSample], list[LeaningSample]]:
    comfort = [ComfortSample(m.point, m.created_at, m.comfort) for m in data.marks if m.comfort]
    leanings = [LeaningSample(s.created_at, int(s.leaning)) for s in data.stances]
    return comfort, leanings


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
        comfort, leanings = chart_samples(data)
        labels = {point.slug: point.label for point in self.bot.content.points}
        png = await self.bot.charts.render(
            comfort, leanings, labels=labels, tz=member_zone(data), member=interaction.user.id
        )
        await reply(interaction, embed=embed, files=[discord.File(io.BytesIO(png), CHART_FILENAME)])
