"""The Discord face of Crossroads: one feature per extension module."""

EXTENSIONS: tuple[str, ...] = (
    # In the order of the journey: /help lists commands in this order.
    "cogs.advice",
    "cogs.chat",
    "cogs.reflect",
    "cogs.journal",
    "cogs.decide",
    "cogs.progress",
    "cogs.timezone",
    "cogs.checkin",
    "cogs.mydata",
    "cogs.share",
    "cogs.config",
    "cogs.stats",
    "cogs.weekly_post",
    "cogs.help",
)
