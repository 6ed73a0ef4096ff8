"""Every setting, read from the environment and `.env`, and the logging they ask for.

An operator with a bad setting sees `crossroads: <SETTING> is invalid: ...` and nothing else
(ConfigError, printed by bot.main), so every check here names the variable it read.
"""

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from cogs.core.metrics import DEFAULT_HOST as DEFAULT_METRICS_HOST

# How each setting is read from its text; a bad one is named in one line (ConfigError).
Parse = Callable[[str], object]


def whole_number(low: int, high: int) -> Parse:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"must be a whole number from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}")
        return value

    return parse


def positive_number(high: float) -> Parse:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"must be a number above 0 and at most {high:g}") from None
        if not 0 < value <= high:  # also refuses nan
            raise ValueError(f"must be above 0 and at most {high:g}")
        return value

    return parse


def one_of(*choices: str) -> Parse:
    """One of the choices, in any case (`info` is INFO)."""

    def parse(text: str) -> str:
        if text.upper() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text.upper()

    return parse


def setting(default: object = None, *, parse: Parse = str, secret: bool = False) -> Any:
    """A field of Settings: its default, how its text is read, and whether it is a secret
    (never shown in a repr or an error)."""
    return field(default=default, repr=not secret, metadata={"parse": parse})


@dataclass(frozen=True)
class Settings:
    """Every setting, read from the environment and `.env` (the environment wins); see
    `.env.example`. Built directly, it holds just what it is given (tests)."""

    discord_token: str | None = setting(secret=True)
    database_url: str = setting("sqlite+aiosqlite:///data/crossroads.db")
    dev_guild_id: int | None = setting(parse=whole_number(1, 2**63 - 1))
    log_level: str = setting("INFO", parse=one_of("DEBUG", "INFO", "WARNING", "ERROR"))
    # Encrypts what members write. SQLite without it: a key file is made beside the database.
    data_key: str | None = setting(secret=True)
    # While `rotate-key` re-seals everything under a new DATA_KEY: the key it replaces, still
    # accepted for reading (never for writing) until no row is sealed with it.
    data_key_previous: str | None = setting(secret=True)
    # Testing only: the root URL of a Discord emulator (see sandbox/) to talk to instead of Discord.
    discord_emulator_url: str | None = setting()
    # Timed jobs (check-ins): a claim a crashed process held is taken over after this lease;
    # it stays well inside Discord's few-minute nonce window, so a takeover never doubles a DM.
    job_lease_seconds: int = setting(90, parse=whole_number(5, 240))
    # Requests per second this bot allows itself across all its processes (Discord's global
    # limit is 50 unless Discord raised yours).
    discord_rate_limit: float = setting(50.0, parse=positive_number(10_000))
    # The sandbox's own database; by default data/sandbox.db with its own key, never the bot's.
    sandbox_database_url: str | None = setting()
    # Sharding: SHARD_COUNT shards in all, and which of them this process runs (SHARD_IDS, for
    # example `0,1`; every shard when unset). Neither set: Discord's recommended count, all here.
    shard_count: int | None = setting(parse=whole_number(1, 10_000))
    shard_ids: str | None = setting()
    # Prometheus' /metrics and a /healthz over HTTP, off unless a port is given; on this
    # machine only unless METRICS_HOST says otherwise (0.0.0.0: every interface).
    metrics_port: int | None = setting(parse=whole_number(1, 65_535))
    metrics_host: str = setting(DEFAULT_METRICS_HOST)


class ConfigError(Exception):
    """A setting the operator must fix; the message is the one line they will see."""


def load_settings(env_file: Path = Path(".env")) -> Settings:
    """The environment over `.env`. A blank value counts as unset, so `.env.example` copied
    as it is leaves the optional settings at their defaults."""
    try:
        from_file = dotenv_values(env_file, encoding="utf-8") if env_file.is_file() else {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{env_file} cannot be read: {exc}") from None
    given = {name.upper(): value for name, value in from_file.items()}
    given.update((name.upper(), value) for name, value in os.environ.items() if value.strip())
    values: dict[str, object] = {}
    for each in fields(Settings):
        name = each.name.upper()
        text = (given.get(name) or "").strip()
        if not text:
            continue
        try:
            values[each.name] = each.metadata["parse"](text)
        except ValueError as exc:
            shown = "" if not each.repr else f" (not {text[:40]!r})"
            raise ConfigError(f"{name} is invalid: {exc}{shown}") from None
    return Settings(**values)  # type: ignore[arg-type]


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # At DEBUG these log every request body and gateway event, i.e. members' reflections.
    for noisy in ("discord.http", "discord.gateway"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
    # Crossroads has no voice features; discord.py's warning about voice libraries is noise.
    logging.getLogger("discord.client").addFilter(
        lambda record: "voice will NOT be supported" not in record.getMessage()
    )
