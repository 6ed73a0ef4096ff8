"""Direct messages to members: one DM channel per member, kept, and Discord's refusals named."""

import discord

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
