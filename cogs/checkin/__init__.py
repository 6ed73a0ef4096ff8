"""/checkin and the DM check-ins: a package, since delivery and rendering are jobs of their own."""

from cogs._bot import CrossroadsBot
from cogs.checkin._cog import Checkins


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Checkins(bot))
