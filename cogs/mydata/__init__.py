"""/mydata: what Crossroads stores about you; an export of all of it; deleting all of it."""

from cogs.core.bot import CrossroadsBot
from cogs.mydata.cog import MyData


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(MyData(bot))
