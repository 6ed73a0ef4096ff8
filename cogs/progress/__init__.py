"""/progress: a package because the chart and the embed are jobs of their own.

Light on purpose: the chart worker (``python -m cogs.progress.chart_worker``) imports this
package first, and must not pull in discord.py, SQLAlchemy or the cog with it.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cogs._bot import CrossroadsBot


async def setup(bot: "CrossroadsBot") -> None:
    from cogs.progress._cog import Progress

    await bot.add_cog(Progress(bot))
