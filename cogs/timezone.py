"""/timezone: the member's own time, so check-ins arrive at their hour wherever they live."""

import discord
from discord import app_commands

from advice.schedule import WEEKDAYS, zone
from cogs.core.bot import CrossroadsBot
from cogs.core.cog import FeatureCog
from cogs.core.reply import acknowledge, reply
from cogs.core.zones import known_zone, zone_choices
from db.checkins import set_timezone


def local_time_line(zone_name: str, bot: CrossroadsBot) -> str:
    local = bot.clock.now().astimezone(zone(zone_name))
    return f"It's **{local:%H:%M} on {WEEKDAYS[local.weekday()]}** there now."


class TimeZone(FeatureCog):
    @app_commands.command(
        name="timezone", description="Set your time zone, so check-ins come at your hour"
    )
    @app_commands.describe(zone="Your city or zone, e.g. Berlin, New York, Sydney")
    @app_commands.autocomplete(zone=zone_choices)
    async def timezone(self, interaction: discord.Interaction, zone: str) -> None:
        name = known_zone(zone)
        await acknowledge(interaction, thinking=True)
        async with self.bot.member_transaction(interaction) as session:
            moved = await set_timezone(
                session, user_id=interaction.user.id, zone_name=name, now=self.bot.clock.now()
            )
        lines = [f"Your time zone is now **{name}**. {local_time_line(name, self.bot)}"]
        if moved is not None:
            unix = int(moved.due_at.timestamp())
            lines.append(f"Your next check-in moved to <t:{unix}:F> (<t:{unix}:R>).")
        await reply(interaction, "\n".join(lines))


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(TimeZone(bot))
