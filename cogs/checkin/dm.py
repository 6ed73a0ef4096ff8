"""Direct messages to members: one DM channel per member, kept, and Discord's refusals named."""

import discord
from discord.http import Ratelimit, Route

from cogs.core.bot import CrossroadsBot

# 50007: "Cannot send messages to this user" (DMs closed, blocked, or no shared server);
# 50278: the same refusal for a member with no mutual guild; 10013 (unknown user) and 50033
# (invalid recipient): the account is gone. None of them gets better by retrying.
REFUSED_CODES = frozenset({50007, 50278, 10013, 50033})
UNREACHABLE_PROBLEM = (
    "Discord refused my direct message to you (you may have closed DMs from server members, "
    "left every server we share, or blocked me), so your check-ins stopped."
)


def refused(error: BaseException) -> bool:
    return isinstance(error, discord.Forbidden) and error.code in REFUSED_CODES


async def open_dm(bot: CrossroadsBot, user_id: int) -> int:
    """The member's DM channel id (Discord returns the same channel every time)."""
    data = await bot.http.start_private_message(user_id)
    return int(data["id"])


def dm_channel(bot: CrossroadsBot, channel_id: int) -> discord.PartialMessageable:
    return bot.get_partial_messageable(channel_id, type=discord.ChannelType.private)


# discord.py keeps a rate-limit bucket per channel, lets one go only after 300 idle seconds,
# and, once it holds 256, scans them all each time it makes a new one. Check-ins to 10,000
# members make 10,000 buckets, so the scans grow with the square of the run: 50 million
# is_inactive calls, half the profiled time of such a run (bench/checkins.py).
_SEND_ROUTE = Route("POST", "/channels/{channel_id}/messages", channel_id=0)


def release_rate_limit(bot: CrossroadsBot, channel_id: int) -> None:
    """Let go of the rate-limit bucket of a DM channel a check-in has just gone to, when it
    holds nothing back (no request on its way or waiting, requests left or its window
    over): the next message there is a week or more away, and discord.py learns a bucket
    afresh from the first answer, as it does after its own clean-up."""
    http = bot.http
    route = _SEND_ROUTE.key
    learned = http._bucket_hashes.get(route)  # the key is the route's until Discord names it
    for prefix in (route, learned) if learned else (route,):
        key = f"{prefix}:{channel_id}"
        bucket = http._buckets.get(key)
        if bucket is not None and _holds_nothing_back(bucket):
            del http._buckets[key]


def _holds_nothing_back(bucket: Ratelimit) -> bool:
    return (
        bucket.outgoing == 0
        and not bucket._pending_requests
        and not bucket._sleeping.locked()
        and (bucket.remaining > 0 or bucket.is_expired())
    )
