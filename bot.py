"""Crossroads: `python bot.py [run|sandbox|migrate|sync|rotate-key|backup PATH]`.

The entry point reads the settings, wires the database, content and clock into the bot,
and runs it. Nothing else lives here.
"""

import argparse
import asyncio
import errno
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

import discord
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from advice.clock import Clock, OffsetClock, SystemClock
from advice.content import Content, ContentError, load_content
from cogs.core.bot import CrossroadsBot, SyncPolicy
from cogs.core.metrics import DEFAULT_HOST as DEFAULT_METRICS_HOST
from cogs.core.metrics import MetricsServer
from db import Database, DatabaseConfigError, StorageUnavailable
from db.crypto import (
    KEY_FILE_CHECK_SECONDS,
    DataKeyError,
    KeyFileCipher,
    TextCipher,
    finish_key_file_rotation,
    key_id,
    load_or_create_key_file,
    parse_key,
    previous_key_file,
    read_key_file,
    start_key_file_rotation,
)
from db.database import parse_database_url
from db.migrate import MigrationError, upgrade
from db.mydata import has_encrypted_text
from db.rotation import KeyCheck, RotationReport, check_keys, rotate

log = logging.getLogger("crossroads")

SHUTDOWN_GRACE_SECONDS = 5
SANDBOX_TOKEN = "sandbox-token"


class Settings(BaseSettings):
    """Every setting, read from the environment and `.env`; see `.env.example`."""

    # env_ignore_empty: `.env.example` copied as it is leaves optional settings blank.
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True
    )

    discord_token: SecretStr | None = None
    database_url: str = "sqlite+aiosqlite:///data/crossroads.db"
    dev_guild_id: int | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Encrypts what members write. SQLite without it: a key file is made beside the database.
    data_key: SecretStr | None = None
    # While `rotate-key` re-seals everything under a new DATA_KEY: the key it replaces, still
    # accepted for reading (never for writing) until no row is sealed with it.
    data_key_previous: SecretStr | None = None
    # Testing only: the root URL of a Discord emulator (see sandbox/) to talk to instead of Discord.
    discord_emulator_url: str | None = None
    # Timed jobs (check-ins): a claim a crashed process held is taken over after this lease;
    # it stays well inside Discord's few-minute nonce window, so a takeover never doubles a DM.
    job_lease_seconds: Annotated[int, Field(ge=5, le=240)] = 90
    # Requests per second this bot allows itself across all its processes (Discord's global
    # limit is 50 unless Discord raised yours).
    discord_rate_limit: Annotated[float, Field(gt=0, le=10_000)] = 50
    # The sandbox's own database; by default data/sandbox.db with its own key, never the bot's.
    sandbox_database_url: str | None = None
    # Sharding: SHARD_COUNT shards in all, and which of them this process runs (SHARD_IDS, for
    # example `0,1`; every shard when unset). Neither set: Discord's recommended count, all here.
    shard_count: Annotated[int, Field(ge=1, le=10_000)] | None = None
    shard_ids: str | None = None
    # Prometheus' /metrics and a /healthz over HTTP, off unless a port is given; on this
    # machine only unless METRICS_HOST says otherwise (0.0.0.0: every interface).
    metrics_port: Annotated[int, Field(ge=1, le=65_535)] | None = None
    metrics_host: str = DEFAULT_METRICS_HOST


class ConfigError(Exception):
    """A setting the operator must fix; the message is the one line they will see."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problem = exc.errors()[0]
        name = str(problem["loc"][0]).upper() if problem["loc"] else "settings"
        raise ConfigError(f"{name} is invalid: {problem['msg']}") from None


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
    token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
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


def point_at_emulator(root_url: str) -> None:
    from sandbox.redirect import point_discord_at

    root = root_url.rstrip("/")
    point_discord_at(f"{root}/api/v10", root.replace("http", "ws", 1) + "/gateway")


def explicit_data_key(settings: Settings) -> bytes | None:
    """DATA_KEY when set; checked (with DATA_KEY_PREVIOUS) before anything else so a bad key
    fails fast."""
    raw = settings.data_key.get_secret_value().strip() if settings.data_key else ""
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
    raw = (
        settings.data_key_previous.get_secret_value().strip() if settings.data_key_previous else ""
    )
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
    )


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


async def command_run(settings: Settings) -> None:
    token = require_token(settings)
    shard_plan(settings)  # a bad shard setting fails before the database is touched
    if settings.discord_emulator_url:
        point_at_emulator(settings.discord_emulator_url)
    explicit_data_key(settings)
    async with open_database(settings) as database:
        bot = build_bot(settings, database, await load_cipher(settings, database))
        async with bot, metrics_endpoint(settings, bot):
            await run_until_signalled(bot.start(token), bot)


async def command_sync(settings: Settings) -> None:
    token = require_token(settings)
    if settings.discord_emulator_url:
        point_at_emulator(settings.discord_emulator_url)
    explicit_data_key(settings)
    async with open_database(settings) as database:
        cipher = await load_cipher(settings, database)
        bot = build_bot(settings, database, cipher, sync=SyncPolicy.FORCE)
        async with bot:
            try:
                await bot.login(token)  # login() runs setup_hook, which syncs
            except discord.LoginFailure:
                raise ConfigError("DISCORD_TOKEN was rejected by Discord.") from None


async def command_migrate(settings: Settings) -> None:
    async with open_database(settings) as database:
        print(f"database at {database.display_url} is up to date")


class RotationProgress:
    """`rotated 12,000 / 50,000 rows (24%)` on stderr: one line rewritten on a terminal, a
    line every few seconds in a log."""

    def __init__(self, every: float = 5.0) -> None:
        self.tty = sys.stderr.isatty()
        self.every = 0.2 if self.tty else every
        self.started = self.last = time.monotonic()

    def __call__(self, report: RotationReport, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < self.every:
            return
        self.last = now
        total = max(report.to_rotate, report.rotated)
        share = report.rotated / total if total else 1.0
        rate = report.rotated / (now - self.started) if now > self.started else 0.0
        line = f"rotated {report.rotated:,} / {total:,} rows ({share:.0%}), {rate:,.0f} rows/s"
        if 0 < share < 1 and rate:
            line += f", about {(total - report.rotated) / rate:,.0f} s left"
        if self.tty:
            print(f"\r{line}\x1b[K", end="\n" if final else "", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)


async def command_rotate_key(settings: Settings, batch_size: int) -> int:
    """Re-seal every reflection and decision reason with the current key, online; see the
    README's "Rotating the key". The rows record their key, so a stopped or killed run loses
    nothing and the next run finishes."""
    key = explicit_data_key(settings)
    async with open_database(settings) as database:
        where = database.display_url
        key_file = None if key is not None else sqlite_key_file(database)
        if key is not None:
            previous = previous_data_key(settings)
            cipher = TextCipher(key, previous=[previous] if previous else [])
            named = {cipher.key_id: "DATA_KEY"} | (
                {key_id(previous): "DATA_KEY_PREVIOUS"} if previous else {}
            )
        else:
            assert key_file is not None
            if not key_file.exists():
                async with database.read() as session:
                    if not await has_encrypted_text(session):
                        print("rotate-key: nothing is sealed yet, and there is no key file")
                        return 0
                await key_file_cipher(database, key_file)  # refuses: writing without its key
            cipher, named = await _key_file_rotation(database, key_file)
        async with database.read() as session:
            check = await check_keys(session, cipher)
        if not check.ok:
            source = KeySource(
                "DATA_KEY" if key_file is None else f"DATA_KEY: the key file {key_file}",
                "DATA_KEY_PREVIOUS" if key_file is None else str(previous_key_file(key_file)),
                previous_set=len(cipher.key_ids) > 1,
                files=key_file is not None,
            )
            raise ConfigError(source.problem(check, cipher, where))
        print(
            "rotate-key: sealing with "
            + " and opening with ".join(f"{named[kid]} (key {kid})" for kid in cipher.key_ids)
            + f", in {where}",
            flush=True,
        )
        stop = _stop_on_signals()
        progress = RotationProgress()
        report = await rotate(
            database, cipher, batch_size=batch_size, progress=progress, should_stop=stop.is_set
        )
        if report.rotated:
            progress(report, final=True)
    return _rotation_outcome(report, cipher, named, key_file)


async def _key_file_rotation(
    database: Database, key_file: Path
) -> tuple[TextCipher, dict[str, str]]:
    """The key file beside an SQLite database: a new key is made and written over it (the
    old one kept as `<key>.previous` until the end), or a rotation under way is resumed."""
    try:
        # Before anything changes: the key file in place must open what is stored.
        current = read_key_file(key_file)
        previous_file = previous_key_file(key_file)
        if not previous_file.exists():
            async with database.read() as session:
                check = await check_keys(session, TextCipher(current))
            if not check.ok:
                raise ConfigError(
                    KeySource(
                        f"DATA_KEY: the key file {key_file}", str(previous_file), False, True
                    ).problem(check, TextCipher(current), database.display_url)
                )
        new, old, resumed = start_key_file_rotation(key_file)
    except DataKeyError as exc:
        raise ConfigError(f"DATA_KEY: the key file {key_file}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"DATA_KEY: cannot rotate the key file {key_file} ({exc})") from None
    named = {key_id(new): str(key_file), key_id(old): str(previous_key_file(key_file))}
    if resumed:
        print(f"rotate-key: resuming the rotation from key {key_id(old)} to key {key_id(new)}")
    else:
        print(
            f"rotate-key: wrote a new key {key_id(new)} to {key_file}; the old key "
            f"{key_id(old)} stays in {previous_key_file(key_file)} until every row is re-sealed"
        )
    # A running bot looks at the key files every KEY_FILE_CHECK_SECONDS: once it has seen
    # these, it writes nothing more with the old key for the rotation to chase.
    await asyncio.sleep(2 * KEY_FILE_CHECK_SECONDS)
    return TextCipher(new, previous=[old]), named


def _stop_on_signals() -> asyncio.Event:
    """SIGINT or SIGTERM: finish the batch under way, then stop (the next run resumes)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping() -> None:
        if not stop.is_set():
            print("\nrotate-key: stopping after this batch", file=sys.stderr, flush=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping)
    return stop


def _rotation_outcome(
    report: RotationReport, cipher: TextCipher, named: dict[str, str], key_file: Path | None
) -> int:
    current, *older = cipher.key_ids
    old = older[0] if older else None
    keep = (
        f"keep {key_file and previous_key_file(key_file)} where it is"
        if key_file
        else "keep DATA_KEY_PREVIOUS set in every bot process"
    )
    if report.stopped:
        print(
            f"rotate-key: stopped with {report.rotated:,} rows re-sealed and "
            f"{report.remaining:,} to go; run `python bot.py rotate-key` again to finish, "
            f"and until it says so {keep}."
        )
        return 1
    if report.unreadable:
        listed = ", ".join(f"{what} #{row}" for what, row in report.unreadable[:10])
        more = f" and {len(report.unreadable) - 10:,} more" if len(report.unreadable) > 10 else ""
        print(
            f"rotate-key: {len(report.unreadable):,} rows open with none of the keys "
            f"(damaged, or sealed with a key not given) and were left as they are: {listed}"
            f"{more}. Everything else is re-sealed; {keep} until you know why."
        )
        return 1
    if report.remaining:
        print(
            f"rotate-key: {report.remaining:,} rows were sealed with an older key while it ran: "
            f"a bot process still writes with it. Restart every process with {named[current]} "
            f"(key {current}) as its key, then run `python bot.py rotate-key` again; {keep}."
        )
        return 1
    until = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    if report.rotated:
        print(
            f"rotate-key: done: {report.rotated:,} rows re-sealed in {report.seconds:,.1f} s; "
            f"every reflection and decision reason is sealed with key {current}."
        )
    else:
        print(f"rotate-key: every reflection and decision reason is sealed with key {current}.")
    if key_file is not None:
        finish_key_file_rotation(key_file)
        print(
            f"Removed {previous_key_file(key_file)}: the bot opens with the new key alone. "
            f"The old key {old} is no longer on this machine; backups made before {until} "
            "still need it (your copy of the key file from before then): destroy that copy "
            "when you no longer keep those backups."
        )
    elif old is not None:
        print(
            f"Remove DATA_KEY_PREVIOUS (key {old}) from every bot process's settings and "
            f"restart them. The old key then opens nothing of this database: destroy it once "
            f"you no longer keep backups made before {until}, which need it."
        )
    else:
        print(
            "To rotate to a new key: set DATA_KEY to a new key (python -c 'import db.crypto "
            "as c; print(c.generate_key())') and DATA_KEY_PREVIOUS to this one, restart every "
            "bot process, then run `python bot.py rotate-key`."
        )
    return 0


async def command_backup(settings: Settings, target: Path) -> int:
    """A consistent copy of the SQLite database while the bot runs; PostgreSQL: pg_dump."""
    from db.backup import BackupFailed, backup_sqlite, unrecorded_key

    url = database_url(settings)
    if url.get_backend_name() != "sqlite":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=True)
        raise ConfigError(
            "backup copies SQLite databases; for PostgreSQL use pg_dump, which copies a "
            f"running database consistently: pg_dump --format=custom --file={target} "
            f"'{dsn}' (restore with pg_restore; see the README's Backups)"
        )
    assert url.database
    source = Path(url.database)
    if not source.is_file():  # noqa: ASYNC240 (a command of its own)
        raise ConfigError(f"DATABASE_URL: there is no database at {source} to back up")
    if target.is_dir():  # noqa: ASYNC240
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        target = target / f"{source.stem}-{stamp}.db"
    if target.exists() or target.is_symlink():
        raise ConfigError(f"backup: {target} exists; name a new file (a backup never overwrites)")
    try:
        report = await asyncio.to_thread(backup_sqlite, source, target)
    except BackupFailed as exc:
        raise ConfigError(f"backup: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"backup: cannot write {target} ({exc})") from None
    contents = report.contents
    print(
        f"backed up {source} to {target}: {report.size / 2**20:,.1f} MiB, "
        f"{contents.reflections:,} reflections, {contents.decisions:,} decisions, schema "
        f"{contents.revision or 'empty'}, in {report.seconds:,.1f} s (checked: {report.check})"
    )
    known = configured_keys(settings, source)
    needed = sorted(kid for kid in contents.keys if kid is not None)
    if None in contents.keys:
        ciphers = {kid: TextCipher(key) for kid, (_, key) in known.items()}
        opener = unrecorded_key(contents, ciphers)
        if opener not in needed:
            needed.append(opener or "the key in use before key ids were recorded")
    if needed:
        print(
            "To read it you need "
            + " and ".join(
                f"key {kid} ({known[kid][0]})" if kid in known else kid for kid in needed
            )
            + ": keep the key apart from the backup, for as long as you keep the backup."
        )
    return 0


def configured_keys(settings: Settings, database_file: Path) -> dict[str, tuple[str, bytes]]:
    """Key id -> (where that key is configured, the key), read without creating anything."""
    known: dict[str, tuple[str, bytes]] = {}
    key = explicit_data_key(settings)
    if key is not None:
        known[key_id(key)] = ("DATA_KEY", key)
        previous = previous_data_key(settings)
        if previous is not None:
            known[key_id(previous)] = ("DATA_KEY_PREVIOUS", previous)
        return known
    for file in (key_file := database_file.with_suffix(".key"), previous_key_file(key_file)):
        try:
            found = read_key_file(file)
        except (OSError, DataKeyError):
            continue
        known.setdefault(key_id(found), (str(file), found))
    return known


# The sandbox keeps the same server and member from run to run, so a newcomer who comes back
# finds their journal where they left it.
SANDBOX_GUILD_ID = 1_300_000_000_000_000_001
SANDBOX_CHANNEL_ID = 1_300_000_000_000_000_002
SANDBOX_USER_ID = 1_300_000_000_000_000_003
SANDBOX_REFLECTIONS_ID = 1_300_000_000_000_000_004
SANDBOX_VOICE_ID = 1_300_000_000_000_000_005
SANDBOX_DATABASE_URL = "sqlite+aiosqlite:///data/sandbox.db"
SANDBOX_OFFSET_KEY = "sandbox:clock-offset-seconds"


def sandbox_settings(settings: Settings) -> Settings:
    """The sandbox moves time, so it never touches the real bot's data: its own database (and,
    on SQLite, its own key file beside it) unless SANDBOX_DATABASE_URL says otherwise."""
    if settings.sandbox_database_url:
        return settings.model_copy(update={"database_url": settings.sandbox_database_url})
    return settings.model_copy(
        update={"database_url": SANDBOX_DATABASE_URL, "data_key": None, "data_key_previous": None}
    )


class SandboxClock:
    """The sandbox bot's clock as the console moves it (sandbox.console.BotClock): real time
    plus an offset that is kept in the database, so time moved stays moved next session."""

    def __init__(self, bot: CrossroadsBot, database: Database, clock: OffsetClock) -> None:
        self.bot = bot
        self.database = database
        self.clock = clock

    def now(self) -> datetime:
        return self.clock.now()

    async def next_due(self, until: datetime) -> datetime | None:
        from db import checkins, weekly_posts

        async with self.database.read() as session:
            dues = [
                await checkins.next_due_at(session, until=until),
                await weekly_posts.next_due_at(session, until=until),
            ]
        return min((due for due in dues if due is not None), default=None)

    async def move_to(self, instant: datetime) -> datetime:
        from db.state import set_state

        ahead = instant - self.clock.now()
        if ahead > timedelta(0):
            self.clock.advance(ahead)
            async with self.database.transaction() as session:
                seconds = str(self.clock.offset.total_seconds())
                await set_state(session, SANDBOX_OFFSET_KEY, seconds, now=self.clock.now())
        return self.clock.now()

    async def run_due(self) -> None:
        """One tick of every timed job's loop, now, waiting for each to finish (a tick the
        loop began on its own is waited for, then this one runs)."""
        from cogs.core.jobs.cog import TimedJobCog

        for cog in list(self.bot.cogs.values()):
            if isinstance(cog, TimedJobCog):
                try:
                    await cog.loop.tick()
                except Exception:  # as the loop itself would: log it, and time goes on
                    log.exception("%s: a tick failed", cog.loop.name)


async def command_sandbox(settings: Settings) -> None:
    """The real bot against a local Discord emulator, with you as a member at a console."""
    await run_sandbox(settings)


async def run_sandbox(
    settings: Settings,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    start: datetime | None = None,
) -> None:
    """The sandbox on the given streams (the terminal by default). A fresh sandbox's clock
    starts at `start` (a future instant; tests) or now; one used before goes on from its time."""
    from db.checkins import forget_dm_channels
    from db.state import get_state
    from db.users import member_timezone
    from sandbox import DEFAULT_SPEC_PATH, GUILD_VOICE, Emulator, point_discord_at
    from sandbox.console import run_console

    settings = sandbox_settings(settings)
    if "LOG_LEVEL" not in os.environ:
        # "Back up this key" is advice for operators; the sandbox's own key guards play data.
        logging.getLogger("db.crypto").setLevel(logging.ERROR)
    # Beside a checkout the emulator checks every request against Discord's spec; an installed
    # copy has no spec beside it, and a newcomer trying the bot needs no warning about that.
    emulator = Emulator(spec_path=DEFAULT_SPEC_PATH if DEFAULT_SPEC_PATH.is_file() else None)
    await emulator.start()
    try:
        point_discord_at(emulator.api_base, emulator.gateway_url)
        guild_id = emulator.add_guild("Crossroads Sandbox", id=SANDBOX_GUILD_ID)
        channel_id = emulator.add_text_channel(guild_id, "general", id=SANDBOX_CHANNEL_ID)
        # A channel to point /config channel at, and a voice channel, which it does not offer.
        emulator.add_text_channel(guild_id, "reflections", id=SANDBOX_REFLECTIONS_ID)
        emulator.add_channel(guild_id, "Lounge", type=GUILD_VOICE, id=SANDBOX_VOICE_ID)
        user_id = emulator.add_user("you", id=SANDBOX_USER_ID)
        # You are a moderator of the sandbox server (Manage Server), so /config works too;
        # `:as <name>` in the console is an ordinary member.
        emulator.add_member(guild_id, user_id, manage_guild=True)
        explicit_data_key(settings)
        async with open_database(settings) as database:
            cipher = await load_cipher(settings, database)
            # Time moved in an earlier session stays moved: the journal lives in that future.
            async with database.transaction() as session:
                stored = await get_state(session, SANDBOX_OFFSET_KEY)
                # The emulator is new: the DM channels it opened last session are gone.
                await forget_dm_channels(session)
            if stored is not None:
                offset = timedelta(seconds=float(stored))
            elif start is not None:
                offset = max(start - datetime.now(UTC), timedelta(0))
            else:
                offset = timedelta(0)
            clock = OffsetClock(offset)
            # A fresh emulator knows no commands, so the sandbox always syncs.
            bot = build_bot(settings, database, cipher, sync=SyncPolicy.FORCE, clock=clock)
            bot_clock = SandboxClock(bot, database, clock)

            async def zone() -> str | None:
                async with database.read() as session:
                    return await member_timezone(session, user_id)

            async with bot:
                runner = asyncio.create_task(bot.start(SANDBOX_TOKEN))
                await emulator.wait_until_ready()
                await run_console(
                    emulator,
                    guild_id=guild_id,
                    channel_id=channel_id,
                    user_id=user_id,
                    stdin=stdin or sys.stdin,
                    stdout=stdout or sys.stdout,
                    clock=bot_clock,
                    member_zone=zone,
                    files_dir=sandbox_files_dir(database),
                )
                await bot.close()
                await runner
    finally:
        await emulator.stop()


def sandbox_files_dir(database: Database) -> Path:
    """Charts and exports the bot sends, saved beside the sandbox's database to open."""
    if database.is_sqlite and database.url.database:
        return Path(database.url.database).resolve().parent / "sandbox-files"
    return Path("data/sandbox-files").resolve()


def batch_size(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 10_000:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 10000, not {value!r}")
    return int(value)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bot.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("run", help="run the bot (the default)")
    commands.add_parser("sandbox", help="try it offline in the sandbox console")
    commands.add_parser("migrate", help="apply database migrations")
    commands.add_parser("sync", help="re-sync slash commands")
    rotate_key = commands.add_parser(
        "rotate-key",
        help="re-seal every reflection and decision reason with the current key, online",
        description="Re-seal every reflection and decision reason with DATA_KEY (or, on "
        "SQLite with no DATA_KEY, a new key file), reading with DATA_KEY_PREVIOUS, while the "
        "bot runs. Stopped or killed, it loses nothing: run it again to finish.",
    )
    rotate_key.add_argument(
        "--batch-size",
        type=batch_size,
        default=500,
        metavar="ROWS",
        help="rows re-sealed per transaction (default 500)",
    )
    backup = commands.add_parser(
        "backup",
        help="a consistent copy of the SQLite database, while the bot runs",
        description="Copy the SQLite database consistently while the bot writes (SQLite's "
        "backup API). With PostgreSQL, use pg_dump (see the README).",
    )
    backup.add_argument("path", type=Path, help="the new file, or a directory to put it in")
    return parser


async def run_command(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "rotate-key":
        return await command_rotate_key(settings, args.batch_size)
    if args.command == "backup":
        return await command_backup(settings, args.path)
    await COMMANDS[args.command](settings)
    return 0


COMMANDS = {
    "run": command_run,
    "sandbox": command_sandbox,
    "migrate": command_migrate,
    "sync": command_sync,
}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.command = args.command or "run"
    try:
        settings = load_settings()
        # The sandbox console is for reading the bot, not its logs, unless asked for them.
        quiet = args.command == "sandbox" and "LOG_LEVEL" not in os.environ
        configure_logging("WARNING" if quiet else settings.log_level)
        return asyncio.run(run_command(settings, args))
    except ConfigError as exc:
        print(f"crossroads: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
