"""What a kind of timed job builds on: a dispatcher that sends through the bot, and a cog
that runs the job's loop while the bot is connected.

A job kind (check-ins, weekly posts) fills in its dispatcher's steps and gives the cog that
dispatcher; starting once connected, waking early (the sandbox moves the clock) and stopping
with the cog are the same for all.
"""

from typing import Any, TypeVar

from discord.ext import commands

from cogs.core.bot import CrossroadsBot
from cogs.core.cog import FeatureCog
from cogs.core.jobs.dispatcher import Dispatcher, JobSettings
from cogs.core.jobs.loop import TimedLoop
from db.models import LeasedJob

Job = TypeVar("Job", bound=LeasedJob)
Ready = TypeVar("Ready")
Result = TypeVar("Result")


def job_settings(bot: CrossroadsBot) -> JobSettings:
    return JobSettings(
        database=bot.database,
        clock=bot.clock,
        lease=bot.job_lease,
        requests_per_second=bot.requests_per_second,
        metrics=bot.metrics,
    )


class BotDispatcher(Dispatcher[Job, Ready, Result]):
    """A dispatcher whose jobs are rendered from the bot's content and sent through its HTTP."""

    def __init__(self, bot: CrossroadsBot) -> None:
        super().__init__(job_settings(bot))
        self.bot = bot


class TimedJobCog(FeatureCog):
    def __init__(
        self, bot: CrossroadsBot, *, name: str, dispatcher: Dispatcher[Any, Any, Any]
    ) -> None:
        super().__init__(bot)
        self.dispatcher = dispatcher
        self.loop = TimedLoop(
            name,
            lambda: dispatcher.tick(stopping=lambda: self.loop.stopping),
            clock=bot.clock,
            every=bot.tick_seconds,
        )
        bot.metrics.watch_timed_jobs(dispatcher.kind, dispatcher.model, self.loop)

    @commands.Cog.listener()
    async def on_connect(self) -> None:
        # Not on_ready: that waits for every server to arrive, seconds on a large bot, and
        # timed jobs need only the REST API, which is ready once logged in.
        self.loop.start()

    @commands.Cog.listener()
    async def on_timed_jobs_wake(self) -> None:
        self.loop.wake()

    async def cog_unload(self) -> None:
        self.bot.metrics.unwatch_timed_jobs(self.dispatcher.kind)
        await self.loop.stop()
        await super().cog_unload()
