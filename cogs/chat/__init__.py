"""Conversation: members write to Crossroads in their own words, in DMs or by mentioning it."""

from cogs.chat.cog import Chat
from cogs.core.bot import CrossroadsBot


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Chat(bot))
