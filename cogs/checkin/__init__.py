"""/checkin and the DM check-ins: a package, since delivery and rendering are jobs of their own."""

from cogs.checkin.cog import Checkins
from cogs.core.bot import CrossroadsBot


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Checkins(bot))
