"""The weekly "point of the week" a server's moderators can switch on (`/config weekly-post`).

A package like ``checkin``: the dispatcher's steps for posts (``delivery``), run by the shared
timed-job cog base.
"""

from cogs.core.bot import CrossroadsBot
from cogs.core.jobs.cog import TimedJobCog
from cogs.weekly_post.delivery import WeeklyPostDelivery


class WeeklyPosts(TimedJobCog):
    def __init__(self, bot: CrossroadsBot) -> None:
        super().__init__(bot, name="weekly posts", dispatcher=WeeklyPostDelivery(bot))


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(WeeklyPosts(bot))
