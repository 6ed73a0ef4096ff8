"""/progress: a package because the chart and the embed are jobs of their own."""

from cogs._bot import CrossroadsBot
from cogs.progress._cog import Progress


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Progress(bot))
