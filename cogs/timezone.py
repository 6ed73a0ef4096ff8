"""/timezone: the member's own time, so check-ins arrive at their hour wherever they live."""

import discord
from discord import app_commands
from discord.ext import commands

from advice.errors import InvalidInput
from advice.schedule import WEEKDAYS, zone
from advice.timezones import close_matches, resolve, search
from cogs._bot import CrossroadsBot
from cogs._reply import reply
from db.checkins import set_timezone


def local_time_line(zone_name: str, bot: CrossroadsBot) -> str:
    local = bot.clock.now().astimezone(zone(zone_name))
    return f"It's **{local:%H:%M} on {WEEKDAYS[local.weekday()]}** there now."


def known_zone(typed: str) -> str:
    """The IANA name for what a member typed; a clear refusal with close matches otherwise."""
    name = resolve(typed)
    if name is None:
        suggestions = ", ".join(f"`{match}`" for match in close_matches(typed))
        hint = f" Did you mean {suggestions}?" if suggestions else ""
        raise InvalidInput(
            f"“{typed[:64]}” isn't a time zone I know.{hint} Start typing a city and pick it "
            "from the list. Nothing was changed."
        )
    return name


def zone_choices(current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete over IANA zone names, for every option that takes one."""
    return [app_commands.Choice(name=name, value=name) for name in search(current[:64])]


class TimeZone(commands.Cog):
    def __init__(self, bot: CrossroadsBot) -> None:
        self.bot = bot

    @app_commands.command(
        name="timezone", description="Set your time zone, so check-ins come at your hour"
    )
    @app_commands.describe(zone="Your city or zone, e.g. Berlin, New York, Sydney")
    async def timezone(self, interaction: discord.Interaction, zone: str) -> None:
        name = known_zone(zone)
        await interaction.response.defer(ephemeral=True, thinking=True)
        async with self.bot.member_transaction(interaction) as session:
            moved = await set_timezone(
                session, user_id=interaction.user.id, zone_name=name, now=self.bot.clock.now()
            )
        lines = [f"Your time zone is now **{name}**. {local_time_line(name, self.bot)}"]
        if moved is not None:
            unix = int(moved.due_at.timestamp())
            lines.append(f"Your next check-in moved to <t:{unix}:F> (<t:{unix}:R>).")
        await reply(interaction, "\n".join(lines))

    @timezone.autocomplete("zone")
    async def _zones(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return zone_choices(current)


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(TimeZone(bot))
