"""Crossroads: `python bot.py [run|sandbox|migrate|sync|rotate-key|backup PATH]`.

The entry point reads the settings, wires the database, content and clock into the bot,
and runs it; the sandbox puts a local Discord emulator and a console around the same bot.
What an operator configures and runs beside it (the settings, start-up's checks, key
rotation, backups) is in cogs.core.operator: a script is compiled afresh at every start,
never cached as bytecode, and the smaller it is the less memory that costs the process.
"""

import argparse
import asyncio
import logging
import os
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import discord

from advice.clock import OffsetClock
from cogs.core.bot import CrossroadsBot, SyncPolicy
from cogs.core.operator.settings import ConfigError, Settings, configure_logging, load_settings
from cogs.core.operator.startup import (
    build_bot,
    explicit_data_key,
    load_cipher,
    metrics_endpoint,
    open_database,
    require_token,
    run_until_signalled,
    shard_plan,
)
from db import Database

log = logging.getLogger("crossroads")

SANDBOX_TOKEN = "sandbox-token"


def point_at_emulator(root_url: str) -> None:
    from sandbox.redirect import point_discord_at

    root = root_url.rstrip("/")
    point_discord_at(f"{root}/api/v10", root.replace("http", "ws", 1) + "/gateway")


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
        return replace(settings, database_url=settings.sandbox_database_url)
    return replace(
        settings, database_url=SANDBOX_DATABASE_URL, data_key=None, data_key_previous=None
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
        from cogs.core.operator.rotate_key import command_rotate_key

        return await command_rotate_key(settings, args.batch_size)
    if args.command == "backup":
        from cogs.core.operator.backup import command_backup

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
