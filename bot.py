"""Crossroads: `python bot.py [run|sandbox|migrate|sync]`.

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
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
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
from db.crypto import DataKeyError, TextCipher, load_or_create_key_file, parse_key
from db.database import parse_database_url
from db.migrate import MigrationError, upgrade
from db.mydata import has_encrypted_text, is_key_for_stored_text

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
    """DATA_KEY when set; checked before anything else so a bad key fails fast."""
    raw = settings.data_key.get_secret_value().strip() if settings.data_key else ""
    if raw:
        try:
            return parse_key(raw)
        except DataKeyError as exc:
            raise ConfigError(str(exc)) from None
    if database_url(settings).get_backend_name() != "sqlite":
        raise ConfigError(
            "DATA_KEY is not set: with PostgreSQL the encryption key must come from the "
            "environment; make one with: python -c 'import db.crypto as c; "
            "print(c.generate_key())'"
        )
    return None


async def load_cipher(settings: Settings, database: Database) -> TextCipher:
    """DATA_KEY, or on SQLite a key file beside the database (made on first run only);
    checked against the writing already stored, so a wrong key stops the bot at once."""
    key = explicit_data_key(settings)
    if key is not None:
        source = "DATA_KEY"
        cipher = TextCipher(key)
    else:
        key_file = sqlite_key_file(database)
        source = f"DATA_KEY: the key file {key_file}"
        cipher = await key_file_cipher(database, key_file)
    try:
        async with database.read() as session:
            opens = await is_key_for_stored_text(session, cipher)
    except StorageUnavailable:
        raise ConfigError(f"DATABASE_URL: cannot read {database.display_url}") from None
    if not opens:
        raise ConfigError(
            f"{source} does not decrypt the writing already stored in {database.display_url} "
            "(it was written with another key); set DATA_KEY to that key. Nothing was changed."
        )
    return cipher


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
        return TextCipher(load_or_create_key_file(key_file))
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
    return settings.model_copy(update={"database_url": SANDBOX_DATABASE_URL, "data_key": None})


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


COMMANDS = {
    "run": command_run,
    "sandbox": command_sandbox,
    "migrate": command_migrate,
    "sync": command_sync,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bot.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=COMMANDS,
        help="run the bot (default), try it offline in the sandbox console, "
        "apply database migrations, or re-sync slash commands",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        # The sandbox console is for reading the bot, not its logs, unless asked for them.
        quiet = args.command == "sandbox" and "LOG_LEVEL" not in os.environ
        configure_logging("WARNING" if quiet else settings.log_level)
        asyncio.run(COMMANDS[args.command](settings))
    except ConfigError as exc:
        print(f"crossroads: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
