"""The Discord face of Crossroads: one feature per extension module."""

EXTENSIONS: tuple[str, ...] = (
    "cogs.advice",
    "cogs.help",
    "cogs.reflect",
    "cogs.journal",
    "cogs.decide",
    "cogs.progress",
    "cogs.mydata",
)
