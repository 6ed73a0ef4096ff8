"""/stats: for moderators, how the members of their server use Crossroads, in counts only.

No text and no names, and no count from 1 to 4 (advice.stats), so nobody can be singled out.
"""

import discord
from discord import app_commands

from advice.progress import Leaning
from advice.stats import FEWEST_SHOWN, ServerStats, shown
from cogs.core.bot import CrossroadsBot
from cogs.core.checks import require_moderator
from cogs.core.cog import FeatureCog
from cogs.core.reply import acknowledge, reply
from cogs.core.style import COLOUR
from db.server_stats import server_stats


def stats_embed(bot: CrossroadsBot, stats: ServerStats) -> discord.Embed:
    embed = discord.Embed(
        title="Crossroads in this server",
        description=f"**{shown(stats.members)}** members have used Crossroads here.",
        colour=COLOUR,
    )
    embed.add_field(
        name="Reflected on each point",
        value="\n".join(
            f"{point.number}. {point.title}: **{shown(stats.reflected.get(point.slug, 0))}**"
            for point in bot.content.points
        ),
        inline=False,
    )
    embed.add_field(
        name="Where they stand (latest /decide)",
        value="\n".join(
            f"{leaning.label.capitalize()}: **{shown(stats.leanings.get(leaning, 0))}**"
            for leaning in Leaning
        ),
        inline=False,
    )
    embed.add_field(name="Taking DM check-ins", value=f"**{shown(stats.checkins)}**", inline=False)
    embed.set_footer(
        text="Members are counted where they used the bot. No text, no names; any count from "
        f"1 to {FEWEST_SHOWN - 1} shows as “fewer than {FEWEST_SHOWN}”."
    )
    return embed


class Stats(FeatureCog):
    @app_commands.command(name="stats", description="Moderators: how this server uses Crossroads")
    @app_commands.guild_only()  # dm_permission: false, for clients that predate `contexts`
    @app_commands.allowed_contexts(guilds=True, dms=False, private_channels=False)
    @app_commands.allowed_installs(guilds=True, users=False)
    @app_commands.default_permissions(manage_guild=True)
    async def stats(self, interaction: discord.Interaction) -> None:
        guild_id = require_moderator(interaction)
        await acknowledge(interaction, thinking=True)
        async with self.bot.database.read() as session:
            counts = await server_stats(session, guild_id)
        await reply(interaction, embed=stats_embed(self.bot, counts))


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Stats(bot))
