"""The weekly "point of the week" in a server's channel, delivered by the same dispatcher as
the DM check-ins (db.jobs claims with a lease, cogs.core.jobs paces, sends and loops).

Each post is sent with a nonce derived from its id and enforce_nonce, so a post whose
process died after Discord accepted it is not posted twice by whoever takes it over. A
channel that is gone, or where the bot lost permission, switches the post off, and
`/config show` says why.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import discord

from advice.weekly import missed, point_of_the_week
from cogs.core.jobs.cog import BotDispatcher
from cogs.core.jobs.dispatcher import MAX_ATTEMPTS, Outcome
from cogs.core.jobs.pace import Pacer, backoff
from cogs.core.points import point_embed
from cogs.core.reflection_form import reflect_button
from cogs.core.routing import RenderedView
from db import weekly_posts
from db.guild_settings import defaults, record_post_refused, server_settings
from db.jobs import JobState, finish
from db.models import GuildSettings, WeeklyPost

log = logging.getLogger(__name__)


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


# Why a claimed post is settled without posting.
_OFF = "off"  # the server's post was switched off, or has no channel: cancelled
_MISSED = "missed"  # too late (the bot was down): dropped, the next one scheduled


@dataclass
class Posted:
    """What the request did."""

    message_id: int | None = None
    error: Exception | None = None


class WeeklyPostDelivery(BotDispatcher[WeeklyPost, Ready, Posted]):
    """Every due weekly post, in paced batches (cogs.core.jobs.dispatcher), until none is left."""

    model = WeeklyPost

    async def prepare(self, post: WeeklyPost) -> Ready | None:
        now = self.bot.clock.now()
        async with self.bot.database.read() as session:
            settings = await server_settings(session, post.guild_id)
        decided = self._decide(post, settings, now)
        if decided == _OFF:
            async with self.bot.database.transaction() as session:
                await finish(session, WeeklyPost, post, JobState.CANCELLED)
        elif decided == _MISSED:
            async with self.bot.database.transaction() as session:
                await weekly_posts.record_dropped(session, post, now=now)
        return decided if isinstance(decided, Ready) else None

    async def prepare_batch(self, jobs: list[WeeklyPost]) -> list[Ready | Exception | None]:
        """`prepare` for a whole batch in a constant number of statements whatever its size:
        one read of the servers' settings, and one transaction settling the posts that do not
        go out (off, or missed). A server's second post in a batch (a server has one pending
        at a time, so hardly ever) is prepared on its own afterwards, as one by one."""
        now = self.bot.clock.now()
        async with self.bot.database.read() as session:
            found = await weekly_posts.settings_of_many(session, [post.guild_id for post in jobs])
        decided: list[Ready | str | Exception | None] = []
        servers: set[int] = set()
        for post in jobs:
            if post.guild_id in servers:
                decided.append(None)  # prepared on its own below
                continue
            servers.add(post.guild_id)
            try:
                settings = found.get(post.guild_id) or defaults(post.guild_id)
                decided.append(self._decide(post, settings, now))
            except Exception as error:  # a bug costs this post alone
                decided.append(error)
        off = [post for post, each in zip(jobs, decided, strict=True) if each == _OFF]
        late = [post for post, each in zip(jobs, decided, strict=True) if each == _MISSED]
        if off or late:
            async with self.bot.database.transaction() as session:
                await weekly_posts.record_unsent_many(session, cancelled=off, dropped=late, now=now)
        prepared: list[Ready | Exception | None] = []
        for post, each in zip(jobs, decided, strict=True):
            if each is None:
                try:
                    each = await self.prepare(post)
                except Exception as error:
                    each = error
            prepared.append(None if isinstance(each, str) else each)
        return prepared

    def _decide(self, post: WeeklyPost, settings: GuildSettings, now: datetime) -> Ready | str:
        """What to post where, or why it is not posted (_OFF, _MISSED)."""
        if not settings.weekly_post_enabled or settings.channel_id is None:
            return _OFF
        if missed(post.scheduled_at, now):
            log.info("weekly post %s: %s late, skipped to next week", post.id, now - post.due_at)
            return _MISSED
        point = point_of_the_week(list(self.bot.content.slugs), settings.weekly_posts_made)
        return Ready(post, point, settings.channel_id)

    async def send(self, ready: Ready, pacer: Pacer) -> Posted:
        point = self.bot.content.point(ready.point)
        embed = point_embed(self.bot.content, point)
        embed.title = f"Point of the week: {point.heading}"[:256]
        view = RenderedView()
        view.add_item(reflect_button(point))
        channel = self.bot.get_partial_messageable(
            ready.channel_id, guild_id=ready.post.guild_id, type=discord.ChannelType.text
        )
        await pacer.wait()
        try:
            message = await channel.send(embed=embed, view=view, nonce=nonce_for(ready.post.id))
        except Exception as error:  # judged in record, where the database is at hand
            return Posted(error=error)
        return Posted(message_id=message.id)

    async def record_batch(self, results: list[tuple[Ready, Posted]]) -> dict[int, Outcome | None]:
        """The batch's posts Discord accepted, and those to try again after a back-off, in one
        transaction of a constant number of statements (db.weekly_posts.record_posted_many,
        retry_many). The rest are recorded one by one with `record`: refusals (they switch
        the post off, rarely), posts given up on, bugs, and every post of a server whose
        first post in the batch is one of those or that has a second one in it."""
        now = self.bot.clock.now()
        accepted: dict[int, weekly_posts.Accepted] = {}  # by index
        retrying: dict[int, tuple[WeeklyPost, str]] = {}
        servers: set[int] = set()
        for index, (ready, posted) in enumerate(results):
            post = ready.post
            if post.guild_id in servers:
                continue
            servers.add(post.guild_id)
            why = self._retry_reason(ready, posted.error)
            if posted.message_id is not None:
                accepted[index] = weekly_posts.Accepted(
                    post, ready.point, ready.channel_id, posted.message_id
                )
            elif why is not None and post.attempts < MAX_ATTEMPTS:
                retrying[index] = (post, why)
        if not accepted and not retrying:
            return {}
        for post, why in retrying.values():
            self._warn_retry(post, why, give_up=False)
        async with self.bot.database.transaction() as session:
            recorded = await weekly_posts.record_posted_many(
                session, list(accepted.values()), now=now
            )
            await weekly_posts.retry_many(
                session, [(post, now + backoff(post.attempts)) for post, _ in retrying.values()]
            )
        outcomes: dict[int, Outcome | None] = dict.fromkeys(retrying, Outcome.FAILED)
        for index, each in accepted.items():
            # None: another process took it over meanwhile, and counts it
            outcomes[index] = Outcome.DELIVERED if each.post.id in recorded else None
        return outcomes

    async def record(self, ready: Ready, result: Posted) -> Outcome | None:
        post, now = ready.post, self.bot.clock.now()
        if result.message_id is not None:
            async with self.bot.database.transaction() as session:
                posted = await weekly_posts.record_posted(
                    session,
                    post,
                    point=ready.point,
                    channel_id=ready.channel_id,
                    message_id=result.message_id,
                    now=now,
                )
            return Outcome.DELIVERED if posted else None  # None: another process took it over
        error = result.error
        problem = (
            problem_for(error, ready.channel_id)
            if isinstance(error, discord.HTTPException)
            else None
        )
        if problem is not None:
            log.info("weekly post of server %s switched off: %s", post.guild_id, problem)
            async with self.bot.database.transaction() as session:
                await record_post_refused(session, post, problem=problem, now=now)
            return Outcome.UNREACHABLE
        why = self._retry_reason(ready, error)
        if why is not None:
            await self._retry(post, why)
        elif error is not None:
            raise error  # a bug: failed_unexpectedly hands it back for later
        return Outcome.FAILED

    def _retry_reason(self, ready: Ready, error: Exception | None) -> str | None:
        """Why a post failed that Discord may take later; None when it will refuse it every
        time (problem_for), for a bug, or when nothing failed."""
        if isinstance(error, discord.HTTPException):
            if problem_for(error, ready.channel_id) is not None:
                return None
            return f"Discord answered {error.status}"
        if isinstance(error, aiohttp.ClientError | OSError | TimeoutError):
            return f"Discord could not be reached ({type(error).__name__})"
        return None

    async def failed_unexpectedly(self, post: WeeklyPost) -> None:
        await self._retry(post, "a bug; see the traceback above")

    async def _retry(self, post: WeeklyPost, why: str) -> None:
        give_up = post.attempts >= MAX_ATTEMPTS
        self._warn_retry(post, why, give_up=give_up)
        now = self.bot.clock.now()
        async with self.bot.database.transaction() as session:
            if give_up:
                await weekly_posts.record_dropped(session, post, now=now)
            else:
                await weekly_posts.retry(session, post, after=backoff(post.attempts), now=now)

    @staticmethod
    def _warn_retry(post: WeeklyPost, why: str, *, give_up: bool) -> None:
        log.warning(
            "weekly post %s: attempt %d failed (%s)%s",
            post.id,
            post.attempts,
            why,
            "; giving up on this week's" if give_up else "",
        )
