"""`python bot.py` as an operator runs it: real entry point, settings from the environment."""

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox import Emulator

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "smoke-test-token-3f9a"
CANARY = "cli-canary-reflection-8e2d"


def cli_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """A clean environment: nothing from this machine's .env or shell leaks in."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env.update(settings)
    return env


async def run_cli(
    tmp_path: Path, *args: str, stdin: bytes = b"", seconds: float = 60, **settings: str
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bot.py"),
        *args,
        cwd=tmp_path,  # no .env there, and ./data must not be the repo's
        env=cli_env(tmp_path, **settings),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), seconds)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_no_token_is_one_line_naming_the_setting_and_the_sandbox(tmp_path: Path) -> None:
    code, _, err = await run_cli(tmp_path)
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "DISCORD_TOKEN" in err and "python bot.py sandbox" in err


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:9/none"}, "DATABASE_URL"),
        ({"DEV_GUILD_ID": "abc"}, "DEV_GUILD_ID"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"DATA_KEY": "too-short", "DISCORD_TOKEN": TOKEN}, "DATA_KEY"),
        ({"SHARD_COUNT": "0", "DISCORD_TOKEN": TOKEN}, "SHARD_COUNT"),
        ({"SHARD_COUNT": "two", "DISCORD_TOKEN": TOKEN}, "SHARD_COUNT"),
        ({"SHARD_IDS": "0", "DISCORD_TOKEN": TOKEN}, "SHARD_IDS needs SHARD_COUNT"),
        ({"SHARD_IDS": "0;1", "SHARD_COUNT": "2", "DISCORD_TOKEN": TOKEN}, "SHARD_IDS"),
        ({"SHARD_IDS": "1,2", "SHARD_COUNT": "2", "DISCORD_TOKEN": TOKEN}, "SHARD_IDS"),
        ({"SHARD_IDS": "1,1", "SHARD_COUNT": "2", "DISCORD_TOKEN": TOKEN}, "SHARD_IDS"),
    ],
)
async def test_bad_settings_are_one_line_naming_the_setting(
    tmp_path: Path, settings: dict[str, str], names: str
) -> None:
    command = "run" if "DISCORD_TOKEN" in settings else "migrate"
    code, _, err = await run_cli(tmp_path, command, **settings)
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert names in err


async def test_postgres_without_data_key_refuses_to_start(tmp_path: Path) -> None:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL case was skipped")
    code, _, err = await run_cli(tmp_path, DISCORD_TOKEN=TOKEN, DATABASE_URL=url)
    assert code == 2 and "DATA_KEY is not set" in err and err.count("\n") == 1


async def test_migrate_creates_the_sqlite_file_under_data(tmp_path: Path) -> None:
    code, out, _ = await run_cli(tmp_path, "migrate", DATABASE_URL="sqlite+aiosqlite:///data/x.db")
    assert code == 0 and "up to date" in out
    assert (tmp_path / "data" / "x.db").is_file()


async def run_against_emulator(
    tmp_path: Path, *args: str, **settings: str
) -> tuple[int, str, str, Emulator]:
    """`python bot.py` pointed at a fresh emulator (stopped again when the process ends)."""
    emulator = Emulator()
    await emulator.start()
    try:
        url = emulator.api_base.removesuffix("/api/v10")
        code, out, err = await run_cli(tmp_path, *args, DISCORD_EMULATOR_URL=url, **settings)
    finally:
        await emulator.stop()
    return code, out, err, emulator


async def test_rejected_token_is_one_line(tmp_path: Path) -> None:
    code, _, err, _ = await run_against_emulator(tmp_path, DISCORD_TOKEN="invalid-token")
    # Start-up logs come first; the failure itself is the last, single line.
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("crossroads: DISCORD_TOKEN was rejected")


async def test_smoke_run_answers_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The real entry point against the emulator: a command works, SIGTERM ends it in 5 s."""
    emulator = Emulator()
    await emulator.start()
    guild = emulator.add_guild()
    channel = emulator.add_text_channel(guild)
    member = emulator.add_user("smoke")
    emulator.add_member(guild, member)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bot.py"),
        cwd=tmp_path,
        env=cli_env(
            tmp_path,
            DISCORD_TOKEN=TOKEN,
            DISCORD_EMULATOR_URL=emulator.api_base.removesuffix("/api/v10"),
            LOG_LEVEL="DEBUG",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await emulator.wait_until_ready(timeout=30)
        ix = await emulator.slash(member, "advice purpose", guild_id=guild, channel_id=channel)
        message = await ix.message()
        assert message["embeds"][0]["title"].startswith("1.")
        modal = await (await emulator.click(member, message, "cr:reflect:purpose")).modal()
        saved = await (await emulator.submit_modal(member, modal, {"text": CANARY})).message()
        assert "Saved" in saved["content"]
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(process.communicate(), 5)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await emulator.stop()
    logs = err.decode()
    assert process.returncode == 0, logs[-2000:]
    assert "shutting down" in logs
    assert TOKEN not in logs  # even at DEBUG
    assert CANARY not in logs  # nor what members write
    assert (tmp_path / "cli.key").is_file()  # the data key was made beside the database
    assert oct((tmp_path / "cli.key").stat().st_mode & 0o777) == "0o600"
    assert emulator.violations == []


async def test_sandbox_console_is_scriptable(tmp_path: Path) -> None:
    code, out, err = await run_cli(tmp_path, "sandbox", stdin=b"/advice purpose\n")
    assert code == 0, err[-2000:]
    assert "Know why you want it" in out
    assert "Determine the reason you want to be an AI researcher" in out
    assert "Reflect" in out
    assert "⚠ The bot broke Discord's rules" not in out  # the console shows each violation


def test_a_corrupted_points_file_is_one_line_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot
    from advice.content import load_content

    broken = tmp_path / "points.yaml"
    broken.write_text("frame: {title: x}\npoints: []\n", encoding="utf-8")
    monkeypatch.setattr(bot, "load_content", lambda: load_content(broken))
    with pytest.raises(bot.ConfigError) as caught:
        bot.load_shipped_content()
    message = str(caught.value)
    assert "points.yaml" in message and "frame" in message and "\n" not in message


async def test_env_example_copied_as_it_is_works(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text(encoding="utf-8"))
    code, _, err = await run_cli(tmp_path, "migrate", DATABASE_URL="")
    assert code == 0, err
    assert (tmp_path / "data" / "crossroads.db").is_file()  # the documented default


async def write_under_another_key(url: str) -> None:
    """A database holding a reflection and a decision reason sealed with a key now lost."""
    from advice.progress import Leaning
    from db import Database
    from db.crypto import TextCipher, generate_key, parse_key
    from db.decisions import add_decision
    from db.journal import add_reflection
    from db.migrate import upgrade

    database = Database(url)
    await upgrade(database)
    lost = TextCipher(parse_key(generate_key()))
    async with database.transaction() as session:
        await add_reflection(
            session,
            lost,
            user_id=7,
            point="purpose",
            text="sealed with the old key",
            comfort=None,
            submission_key=None,
            now=datetime.now(UTC),
        )
        await add_decision(
            session, lost, user_id=7, leaning=Leaning.NO, reason="also", now=datetime.now(UTC)
        )
    await database.dispose()


async def test_a_lost_key_file_stops_start_up_instead_of_minting_a_new_key(
    tmp_path: Path,
) -> None:
    """A new key would make every existing entry unreadable, without a word."""
    await write_under_another_key(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    code, _, err = await run_cli(tmp_path, DISCORD_TOKEN=TOKEN)
    assert code == 2 and "key file" in err and "missing" in err
    assert err.strip().splitlines()[-1].startswith("crossroads: DATA_KEY")
    assert not (tmp_path / "cli.key").exists()


async def test_sync_registers_the_commands_and_exits(tmp_path: Path) -> None:
    code, _, err, emulator = await run_against_emulator(tmp_path, "sync", DISCORD_TOKEN=TOKEN)
    names = {command["name"] for command in emulator.registered_commands()}
    assert code == 0, err[-2000:]
    assert {"advice", "reflect", "journal", "decide", "progress", "mydata", "help"} <= names
    assert emulator.violations == []


async def test_a_key_file_of_non_ascii_bytes_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "cli.key").write_bytes(b"\xff\xfe not a key \xe9\n")
    code, _, err = await run_cli(tmp_path, DISCORD_TOKEN=TOKEN)
    assert code == 2 and "Traceback" not in err, err[-2000:]
    # Start-up logs (the migration) come first; the failure itself is one line, the last.
    [line] = [line for line in err.splitlines() if line.startswith("crossroads:")]
    assert line == err.strip().splitlines()[-1]
    assert line.startswith("crossroads: DATA_KEY: the key file") and "ASCII" in line


@pytest.mark.parametrize(
    ("backend", "key"), [("sqlite", "DATA_KEY"), ("sqlite", "file"), ("postgresql", "DATA_KEY")]
)
async def test_a_wrong_data_key_stops_start_up_with_one_line(
    tmp_path: Path, backend: str, key: str
) -> None:
    """Before the bot connects to Discord: a token Discord would reject is never tried."""
    from db.crypto import generate_key
    from tests.conftest import TEST_DATABASE_URL, reset_postgres_schema

    if backend == "postgresql":
        if not TEST_DATABASE_URL:
            pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL case was skipped")
        await reset_postgres_schema(TEST_DATABASE_URL)
        url = TEST_DATABASE_URL
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    await write_under_another_key(url)
    settings = {"DATA_KEY": generate_key()} if key == "DATA_KEY" else {}
    if key == "file":  # a valid key, but not the one the database was written with
        (tmp_path / "cli.key").write_text(generate_key() + "\n", encoding="ascii")
    code, _, err, _ = await run_against_emulator(
        tmp_path, DISCORD_TOKEN="invalid-token", DATABASE_URL=url, **settings
    )
    assert code == 2 and "Traceback" not in err, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("crossroads: DATA_KEY") and "does not decrypt" in last, last
