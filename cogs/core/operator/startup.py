"""Starting the bot the way an operator runs it: the database migrated, the key checked against what
is already sealed, the bot wired from the settings, metrics served when asked, and a clean
stop on SIGINT or SIGTERM. Whatever the operator must fix is one ConfigError naming it.
"""

import asyncio
import errno
import logging
import signal
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from advice.clock import Clock, SystemClock
from advice.content import Content, ContentError, load_content
from cogs.core.bot import CrossroadsBot, SyncPolicy
from cogs.core.metrics import Metrics
from cogs.core.operator.settings import ConfigError, Settings
from db import Database, DatabaseConfigError, StorageUnavailable
from db.crypto import (
    DataKeyError,
    KeyFileCipher,
    TextCipher,
    load_or_create_key_file,
    parse_key,
    previous_key_file,
)
from db.database import parse_database_url
from db.migrate import MigrationError, upgrade
from db.mydata import has_encrypted_text
from db.rotation import KeyCheck, check_keys

log = logging.getLogger("crossroads")

SHUTDOWN_GRACE_SECONDS = 5


def shard_plan(settings: Settings) -> tuple[int | None, list[int] | None]:
    """(shard count, this process's shard ids): (None, None) lets Discord recommend the count."""
    if settings.shard_ids is None:
        return settings.shard_count, None
    if settings.shard_count is None:
        raise ConfigError("SHARD_IDS needs SHARD_COUNT: the number of shards across every process")
    try:
        ids = [int(part) for part in settings.shard_ids.split(",")]
    except ValueError:
        raise ConfigError(
            f"SHARD_IDS must list shard numbers separated by commas, like 0,1 "
            f"(not {settings.shard_ids!r})"
        ) from None
    if len(set(ids)) != len(ids) or not all(0 <= i < settings.shard_count for i in ids):
        raise ConfigError(
            f"SHARD_IDS must be distinct numbers from 0 to {settings.shard_count - 1} "
            f"(SHARD_COUNT is {settings.shard_count}), not {settings.shard_ids}"
        )
    return settings.shard_count, sorted(ids)


def require_token(settings: Settings) -> str:
    token = (settings.discord_token or "").strip()
    if not token:
        raise ConfigError(
            "DISCORD_TOKEN is not set: put your bot's token in .env (see .env.example), "
            "or try Crossroads offline with `python bot.py sandbox`."
        )
    return token


def load_shipped_content() -> Content:
    try:
        return load_content()
    except ContentError as exc:
        raise ConfigError(str(exc)) from None


def database_url(settings: Settings) -> URL:
    try:
        return parse_database_url(settings.database_url)
    except DatabaseConfigError as exc:
        raise ConfigError(str(exc)) from None


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """Connect, migrate to the newest schema, and dispose on the way out."""
    try:
        database = Database(database_url(settings))
    except OSError as exc:
        raise ConfigError(f"DATABASE_URL: cannot create the database ({exc})") from None
    try:
        try:
            await upgrade(database)
        except MigrationError as exc:
            raise ConfigError(
                f"DATABASE_URL: migrating {database.display_url} failed: {exc}"
            ) from None
        except (SQLAlchemyError, OSError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise ConfigError(
                f"DATABASE_URL: cannot use the database at {database.display_url} ({reason})"
            ) from None
        log.info("database: %s", database.display_url)
        yield database
    finally:
        await database.dispose()


def explicit_data_key(settings: Settings) -> bytes | None:
    """DATA_KEY when set; checked (with DATA_KEY_PREVIOUS) before anything else so a bad key
    fails fast."""
    raw = (settings.data_key or "").strip()
    key = None
    if raw:
        try:
            key = parse_key(raw)
        except DataKeyError as exc:
            raise ConfigError(str(exc)) from None
    elif database_url(settings).get_backend_name() != "sqlite":
        raise ConfigError(
            "DATA_KEY is not set: with PostgreSQL the encryption key must come from the "
            "environment; make one with: python -c 'import db.crypto as c; "
            "print(c.generate_key())'"
        )
    previous = previous_data_key(settings)
    if previous is not None and key is None:
        raise ConfigError(
            "DATA_KEY_PREVIOUS is set but DATA_KEY is not: it names the key a rotation moves "
            "away from, beside the new DATA_KEY (with the key file beside an SQLite database, "
            "`python bot.py rotate-key` keeps the previous key itself)"
        )
    if previous is not None and previous == key:
        raise ConfigError(
            "DATA_KEY_PREVIOUS is the same key as DATA_KEY: it must be the key that DATA_KEY "
            "replaces (or unset)"
        )
    return key


def previous_data_key(settings: Settings) -> bytes | None:
    raw = (settings.data_key_previous or "").strip()
    if not raw:
        return None
    try:
        return parse_key(raw, setting="DATA_KEY_PREVIOUS")
    except DataKeyError as exc:
        raise ConfigError(str(exc)) from None


async def load_cipher(settings: Settings, database: Database) -> TextCipher:
    """DATA_KEY (and DATA_KEY_PREVIOUS), or on SQLite the key file beside the database (made
    on first run only; with the previous key beside it while a rotation runs); checked
    against the writing already stored, so a wrong or missing key stops the bot at once."""
    key = explicit_data_key(settings)
    if key is not None:
        previous = previous_data_key(settings)
        cipher = TextCipher(key, previous=[previous] if previous else [])
        source = KeySource(
            "DATA_KEY", "DATA_KEY_PREVIOUS", previous_set=previous is not None, files=False
        )
    else:
        key_file = sqlite_key_file(database)
        cipher = await key_file_cipher(database, key_file)
        previous_file = previous_key_file(key_file)
        source = KeySource(
            f"DATA_KEY: the key file {key_file}",
            str(previous_file),
            previous_set=previous_file.exists(),
            files=True,
        )
    try:
        async with database.read() as session:
            check = await check_keys(session, cipher)
    except StorageUnavailable:
        raise ConfigError(f"DATABASE_URL: cannot read {database.display_url}") from None
    if not check.ok:
        raise ConfigError(source.problem(check, cipher, database.display_url))
    current, *older = cipher.key_ids
    log.info(
        "data key: sealing with key %s%s",
        current,
        f", also opening key {older[0]} until rotate-key has re-sealed what it sealed"
        if older
        else "",
    )
    if older and older[0] in check.unused and not check.unrecorded:
        log.warning(
            "%s (key %s) seals nothing any more: remove it; see `python bot.py rotate-key`",
            source.previous,
            older[0],
        )
    return cipher


@dataclass(frozen=True)
class KeySource:
    """Where the keys came from, for one-line messages that name what to fix."""

    current: str  # "DATA_KEY", or "DATA_KEY: the key file <path>"
    previous: str  # "DATA_KEY_PREVIOUS", or the previous key file's path
    previous_set: bool
    files: bool

    def problem(self, check: KeyCheck, cipher: TextCipher, where: str) -> str:
        ids = ", ".join(f"key {kid} ({n:,} rows)" for kid, n in sorted(check.missing.items()))
        if not check.some_open:
            sealed = f"it was sealed with {ids}" if ids else "it was written with another key"
            rotating = (
                ""
                if self.files
                else (" (or, to rotate to this key, set DATA_KEY_PREVIOUS to that one)")
            )
            return (
                f"{self.current} does not decrypt the writing already stored in {where} "
                f"({sealed}, and this is key {cipher.key_id}); set DATA_KEY to that key"
                f"{rotating}. Nothing was changed."
            )
        what = (
            f"some writing stored in {where} is sealed with {ids}"
            if ids
            else (f"writing stored in {where} before key ids were recorded")
        )
        if self.files:
            return (
                f"{self.current}: {what}, which neither it nor {self.previous} opens (a "
                "rotation was cut short and the previous key file lost); restore "
                f"{self.previous} from your backup, then run `python bot.py rotate-key`. "
                "Nothing was changed."
            )
        current = f"DATA_KEY (key {cipher.key_id})"
        opens = (
            f"neither {current} nor DATA_KEY_PREVIOUS opens"
            if self.previous_set
            else f"{current} does not open"
        )
        return (
            f"DATA_KEY_PREVIOUS: {what}, which {opens} (a rotation is unfinished); set "
            "DATA_KEY_PREVIOUS to that key, then run `python bot.py rotate-key`. "
            "Nothing was changed."
        )


def sqlite_key_file(database: Database) -> Path:
    if not database.url.database:  # parse_database_url refuses such a URL on SQLite
        raise ConfigError("DATABASE_URL names no SQLite file")
    return Path(database.url.database).with_suffix(".key")


async def key_file_cipher(database: Database, key_file: Path) -> TextCipher:
    if not key_file.exists():  # noqa: ASYNC240 (start-up: nothing else is running yet)
        try:
            async with database.read() as session:
                holds_writing = await has_encrypted_text(session)
        except StorageUnavailable:
            raise ConfigError(f"DATABASE_URL: cannot read {database.display_url}") from None
        if holds_writing:
            # A new key would make every existing entry unreadable, silently.
            raise ConfigError(
                f"DATA_KEY: the key file {key_file} is missing but the database holds "
                "encrypted reflections; restore the key file from your backup "
                "(or set DATA_KEY to the key)"
            )
    try:
        load_or_create_key_file(key_file)
        return KeyFileCipher(key_file)
    except DataKeyError as exc:
        raise ConfigError(f"DATA_KEY: the key file {key_file}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"DATA_KEY: cannot read or create the key file ({exc})") from None


def build_bot(
    settings: Settings,
    database: Database,
    cipher: TextCipher,
    *,
    sync: SyncPolicy = SyncPolicy.AUTO,
    clock: Clock | None = None,
) -> CrossroadsBot:
    shard_count, shard_ids = shard_plan(settings)
    return CrossroadsBot(
        database=database,
        content=load_shipped_content(),
        cipher=cipher,
        clock=clock or SystemClock(),
        dev_guild_id=settings.dev_guild_id,
        sync=sync,
        job_lease=timedelta(seconds=settings.job_lease_seconds),
        requests_per_second=settings.discord_rate_limit,
        shard_count=shard_count,
        shard_ids=shard_ids,
        metrics=counted_metrics(settings),
    )


def counted_metrics(settings: Settings) -> Metrics | None:
    """Prometheus' registry when METRICS_PORT is set; otherwise nothing is counted, and its
    client and HTTP server are never loaded."""
    if settings.metrics_port is None:
        return None
    from cogs.core.prometheus import PrometheusMetrics

    return PrometheusMetrics()


async def run_until_signalled(main: Coroutine[Any, Any, None], bot: CrossroadsBot) -> None:
    """Run `main` until it ends or SIGINT/SIGTERM arrives; then close within the grace period."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(main)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if not runner.done():
        log.info("shutting down")
        try:
            await asyncio.wait_for(bot.close(), SHUTDOWN_GRACE_SECONDS)
        except TimeoutError:
            log.warning("shutdown took longer than %ss; stopping anyway", SHUTDOWN_GRACE_SECONDS)
        runner.cancel()
    try:
        await runner
    except asyncio.CancelledError:
        pass
    except discord.LoginFailure:
        raise ConfigError(
            "DISCORD_TOKEN was rejected by Discord: copy a fresh token from the Developer "
            "Portal (Bot > Reset Token) into .env."
        ) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            "Discord refused the connection's intents; Crossroads needs none "
            "privileged, so check the application's settings."
        ) from None


@asynccontextmanager
async def metrics_endpoint(settings: Settings, bot: CrossroadsBot) -> AsyncIterator[None]:
    """/metrics and /healthz while the bot runs, when METRICS_PORT is set."""
    if settings.metrics_port is None:
        yield
        return
    from cogs.core.prometheus import MetricsServer

    host, port = settings.metrics_host, settings.metrics_port
    server = MetricsServer(bot, host=host, port=port)
    try:
        await server.start()
    except OSError as exc:
        taken = exc.errno in (errno.EADDRINUSE, errno.EACCES)
        raise ConfigError(
            f"{'METRICS_PORT' if taken else 'METRICS_HOST'}: cannot serve metrics on "
            f"{host}:{port} ({exc.strerror or exc})"
        ) from None
    try:
        yield
    finally:
        await server.stop()
