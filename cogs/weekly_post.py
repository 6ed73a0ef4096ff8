"""The weekly "point of the week" in a server's channel, on the same claim-with-lease
dispatcher as the DM check-ins (db.jobs, cogs._loop, cogs._pace).

Each post is sent with a nonce derived from its id and enforce_nonce, so a post whose
process died after Discord accepted it is not posted twice by whoever takes it over. A
channel that is gone, or where the bot lost permission, switches the post off, and
`/config show` says why.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import discord
from discord.ext import commands

from advice.weekly import missed, point_of_the_week
from cogs._bot import CrossroadsBot
from cogs._loop import TimedLoop
from cogs._pace import Pacer, backoff, job_pace, reserve
from cogs._reflection_form import reflect_button
from cogs._routing import RenderedView
from cogs.advice import point_embed
from db import weekly_posts
from db.guild_settings import post_refused, server_settings
from db.jobs import JobState, claim_due, finish
from db.models import WeeklyPost

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
T = TypeVar("T")


def nonce_for(post_id: int) -> str:
    """Deterministic per post and within Discord's 25 characters."""
    return f"cr-wp-{post_id}"


def problem_for(error: discord.HTTPException, channel_id: int) -> str | None:
    """Why Discord will refuse this channel every time, in a moderator's words; None when
    trying again later may work."""
    if isinstance(error, discord.NotFound):
        return f"the channel <#{channel_id}> no longer exists."
    if isinstance(error, discord.Forbidden):
        if error.code == 50001:  # Missing Access
            return f"I can no longer see <#{channel_id}> (View Channel)."
        return (
            f"I lost permission to post in <#{channel_id}> "
            "(I need View Channel, Send Messages and Embed Links)."
        )
    return None


@dataclass
class Ready:
    """A claimed post, with what to post where, waiting for its turn in the pace."""

    post: WeeklyPost
    point: str
    channel_id: int


class WeeklyPosts(commands.Cog):
    def __init__(self, bot: CrossroadsBot) -> None:
        self.bot = bot
        self.batch = max(1, min(500, int(job_pace(bot) * 2)))
        self.loop = TimedLoop(
            "weekly posts",
            lambda: self.tick(stopping=lambda: self.loop.stopping),
            clock=bot.clock,
            every=bot.tick_seconds,
        )

    @property
    def order(self) -> list[str]:
        return list(self.bot.content.slugs)

    async def tick(self, stopping: Callable[[], bool] = lambda: False) -> int:
        """Post what is due, batch by batch; how many went out."""
        posted = 0
        while not stopping() and (claimed := await self._claim()):
            prepared = await asyncio.gather(
                *(self._safely(post, self._prepare(post)) for post in claimed)
            )
            ready = [each for each in prepared if isinstance(each, Ready)]
            if ready:
                pacer = await reserve(self.bot, len(ready))
                results = await asyncio.gather(
                    *(self._safely(each.post, self._post(each, pacer)) for each in ready)
                )
                posted += sum(1 for each in results if each is True)
        return posted

    async def _safely(self, post: WeeklyPost, step: Awaitable[T]) -> T | None:
        """A bug in one server's post must not cost the others theirs, nor lose this one."""
        try:
            return await step
        except Exception:
            log.exception("weekly post %s failed unexpectedly", post.id)
            await self._retry(post, "a bug; see the traceback above")
            return None

    async def _claim(self) -> list[WeeklyPost]:
        async with self.bot.database.transaction() as session:
            return await claim_due(
                session,
                WeeklyPost,
                now=self.bot.clock.now(),
                lease=self.bot.job_lease,
                limit=self.batch,
            )

    async def _prepare(self, post: WeeklyPost) -> Ready | None:
        """The post to send now, or None when it is settled without sending."""
        now = self.bot.clock.now()
        async with self.bot.database.read() as session:
            settings = await server_settings(session, post.guild_id)
        if not settings.weekly_post_enabled or settings.channel_id is None:
            async with self.bot.database.transaction() as session:
                await finish(session, WeeklyPost, post, JobState.CANCELLED)
            return None
        if missed(post.scheduled_at, now):
            log.info("weekly post %s: %s late, skipped to next week", post.id, now - post.due_at)
            async with self.bot.database.transaction() as session:
                await weekly_posts.dropped(session, post, now=now)
            return None
        point = point_of_the_week(self.order, settings.weekly_posts_made)
        return Ready(post, point, settings.channel_id)

    async def _post(self, ready: Ready, pacer: Pacer) -> bool:
        post = ready.post
        point = self.bot.content.point(ready.point)
        embed = point_embed(self.bot.content, point)
        embed.title = f"Point of the week: {point.heading}"[:256]
        view = RenderedView()
        view.add_item(reflect_button(point))
        channel = self.bot.get_partial_messageable(
            ready.channel_id, guild_id=post.guild_id, type=discord.ChannelType.text
        )
        await pacer.wait()
        try:
            message = await channel.send(embed=embed, view=view, nonce=nonce_for(post.id))
        except discord.HTTPException as error:
            await self._failed(ready, error)
            return False
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            await self._retry(post, f"Discord could not be reached ({type(error).__name__})")
            return False
        async with self.bot.database.transaction() as session:
            return await weekly_posts.posted(
                session,
                post,
                point=ready.point,
                channel_id=ready.channel_id,
                message_id=message.id,
                now=self.bot.clock.now(),
            )

    async def _failed(self, ready: Ready, error: discord.HTTPException) -> None:
        problem = problem_for(error, ready.channel_id)
        if problem is None:
            await self._retry(ready.post, f"Discord answered {error.status}")
            return
        log.info("weekly post of server %s switched off: %s", ready.post.guild_id, problem)
        async with self.bot.database.transaction() as session:
            await post_refused(session, ready.post, problem=problem, now=self.bot.clock.now())

    async def _retry(self, post: WeeklyPost, why: str) -> None:
        give_up = post.attempts >= MAX_ATTEMPTS
        log.warning(
            "weekly post %s: attempt %d failed (%s)%s",
            post.id,
            post.attempts,
            why,
            "; giving up on this week's" if give_up else "",
        )
        now = self.bot.clock.now()
        async with self.bot.database.transaction() as session:
            if give_up:
                await weekly_posts.dropped(session, post, now=now)
            else:
                await weekly_posts.retry(session, post, after=backoff(post.attempts), now=now)

    @commands.Cog.listener()
    async def on_connect(self) -> None:
        self.loop.start()

    @commands.Cog.listener()
    async def on_timed_jobs_wake(self) -> None:
        self.loop.wake()

    async def cog_unload(self) -> None:
        await self.loop.stop()


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(WeeklyPosts(bot))
