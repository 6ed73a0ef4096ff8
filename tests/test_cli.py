"""`python bot.py` as an operator runs it: real entry point, settings from the environment."""

import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from sandbox import Emulator
from tests.conftest import TEST_DATABASE_URL, reset_postgres_schema

if TYPE_CHECKING:
    from db import Database

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
    from advice.content import load_content
    from cogs.core.operator import startup

    broken = tmp_path / "points.yaml"
    broken.write_text("frame: {title: x}\npoints: []\n", encoding="utf-8")
    monkeypatch.setattr(startup, "load_content", lambda: load_content(broken))
    with pytest.raises(startup.ConfigError) as caught:
        startup.load_shipped_content()
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


# Rotating the key and backups ----------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"DATA_KEY_PREVIOUS": "too-short"},
        {"DATA_KEY_PREVIOUS": "SAME"},
        {"DATA_KEY_PREVIOUS": "NEW", "DATA_KEY": ""},
    ],
)
async def test_bad_previous_key_settings_are_one_line_naming_it(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    from db.crypto import generate_key

    key = generate_key()
    given = {"DATA_KEY": key, "DISCORD_TOKEN": TOKEN} | settings
    given = {k: {"SAME": key, "NEW": generate_key()}.get(v, v) for k, v in given.items()}
    for command in ("run", "rotate-key"):
        code, _, err = await run_cli(tmp_path, command, **given)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith("crossroads: DATA_KEY_PREVIOUS"), err


class Rotation:
    """A database with sealed writing and the keys around it, for `python bot.py rotate-key`:
    on SQLite with its key file, or with DATA_KEY and DATA_KEY_PREVIOUS (SQLite or
    PostgreSQL)."""

    def __init__(self, tmp_path: Path, mode: str) -> None:
        from db.crypto import generate_key, parse_key

        self.tmp_path, self.mode = tmp_path, mode
        self.url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
        if mode == "postgresql":
            if not TEST_DATABASE_URL:
                pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL case was skipped")
            self.url = TEST_DATABASE_URL
        self.key_file = tmp_path / "cli.key"
        self.old = parse_key(generate_key())
        self.new = parse_key(generate_key())

    @property
    def settings(self) -> dict[str, str]:
        if self.mode == "key file":
            return {"DATABASE_URL": self.url}
        return {
            "DATABASE_URL": self.url,
            "DATA_KEY": _encoded(self.new),
            "DATA_KEY_PREVIOUS": _encoded(self.old),
        }

    async def open(self) -> "Database":
        from db import Database
        from db.crypto import write_key_file
        from db.migrate import upgrade

        if self.mode == "postgresql":
            await reset_postgres_schema(self.url)
        if self.mode == "key file":
            write_key_file(self.key_file, self.old)
        database = Database(self.url)
        await upgrade(database)
        return database

    def finish_keys(self) -> None:
        """Key-file mode: the new key is whatever rotate-key wrote."""
        from db.crypto import read_key_file

        if self.mode == "key file":
            self.new = read_key_file(self.key_file)

    def start(self, *args: str) -> "Coroutine[Any, Any, asyncio.subprocess.Process]":
        return asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "bot.py"),
            "rotate-key",
            *args,
            cwd=self.tmp_path,
            env=cli_env(self.tmp_path, **self.settings),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )


def _encoded(key: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(key).decode()


async def rows_under_other_keys(database: "Database", old_id: str) -> int:
    from sqlalchemy import func, select

    from db.models import Reflection

    async with database.read() as session:
        return (
            await session.scalar(
                select(func.count()).where(
                    Reflection.key_id.is_not(None), Reflection.key_id != old_id
                )
            )
            or 0
        )


@pytest.mark.parametrize("mode", ["key file", "DATA_KEY", "postgresql"])
async def test_rotate_key_killed_mid_way_loses_nothing_and_the_next_run_finishes(
    tmp_path: Path, mode: str
) -> None:
    from db.crypto import TextCipher, key_id, previous_key_file, read_key_file
    from db.rotation import check_keys
    from tests.db.sealing import read_back, seed

    rotation = Rotation(tmp_path, mode)
    database = await rotation.open()
    try:
        written = await seed(database, TextCipher(rotation.old), 20_000, members=200)
        process = await rotation.start("--batch-size", "100")
        try:
            # Killed once at least 20 batches are in: wherever it is then, mid-batch included.
            async with asyncio.timeout(60):
                while await rows_under_other_keys(database, key_id(rotation.old)) < 2_000:
                    assert process.returncode is None, await process.stderr.read()  # type: ignore[union-attr]
                    await asyncio.sleep(0.01)
            process.kill()
            await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        assert process.returncode == -signal.SIGKILL
        rotation.finish_keys()
        halfway = await rows_under_other_keys(database, key_id(rotation.old))
        assert 2_000 <= halfway < len(written.reflections)
        if mode == "key file":
            assert read_key_file(previous_key_file(rotation.key_file)) == rotation.old
        both = TextCipher(rotation.new, previous=[rotation.old])
        async with database.read() as session:  # the bot starts and reads everything meanwhile
            assert (await check_keys(session, both)).ok
            assert not (await check_keys(session, TextCipher(rotation.new))).ok
        assert (await read_back(database, both)).reflections == written.reflections

        out, err = await asyncio.wait_for((await rotation.start()).communicate(), 120)
        report = out.decode()
        assert "rotate-key: done" in report, report + err.decode()[-2000:]
        if mode == "key file":
            assert "resuming the rotation" in report
            assert not previous_key_file(rotation.key_file).exists()
            assert read_key_file(rotation.key_file) == rotation.new
            assert "destroy that copy" in report
        else:
            assert "Remove DATA_KEY_PREVIOUS" in report and "destroy it" in report
        assert "rotated " in err.decode()  # progress, on stderr

        alone = TextCipher(rotation.new)
        found = await read_back(database, alone, key_id=key_id(rotation.new))
        assert found.reflections == written.reflections and found.reasons == written.reasons
        assert found.rows == written.total
        async with database.read() as session:
            assert (await check_keys(session, alone)).ok
    finally:
        await database.dispose()


@pytest.mark.parametrize("mode", ["key file", "postgresql"])
async def test_rotate_key_while_the_bot_writes_and_edits(tmp_path: Path, mode: str) -> None:
    """The bot keeps running: it reads what rotate-key re-sealed and what it wrote itself,
    and its own writes (with the new key, on SQLite as soon as it sees the new key file)
    are never undone."""
    from advice.progress import Leaning
    from db.crypto import KeyFileCipher, TextCipher, key_id
    from db.decisions import add_decision
    from db.journal import add_reflection, edit_entry, recent_entries
    from tests.db.sealing import numbered_rows, read_back, seed

    rotation = Rotation(tmp_path, mode)
    database = await rotation.open()
    try:
        written = await seed(database, TextCipher(rotation.old), 5_000, members=20)
        rows = await numbered_rows(database, TextCipher(rotation.old))
        if mode == "key file":
            bot: TextCipher = KeyFileCipher(rotation.key_file)
        else:  # restarted with DATA_KEY and DATA_KEY_PREVIOUS before rotate-key runs
            bot = TextCipher(rotation.new, previous=[rotation.old])
        process = await rotation.start("--batch-size", "200")
        finished = asyncio.create_task(process.wait())
        number = 10_000
        while not finished.done():
            now = datetime.now(UTC)
            owner = 5000 + number % 20
            async with database.transaction() as session:
                words = f"#{number} written while rotating"
                await add_reflection(
                    session,
                    bot,
                    user_id=owner,
                    point="money",
                    text=words,
                    comfort=2,
                    submission_key=None,
                    now=now,
                )
                reason = f"#{number} why: rotating"
                await add_decision(
                    session, bot, user_id=owner, leaning=Leaning.YES, reason=reason, now=now
                )
                row_id, edited_owner = rows[number % 5_000]
                edit = f"#{number % 5_000} edited at {number}"
                await edit_entry(
                    session,
                    bot,
                    user_id=edited_owner,
                    entry_id=row_id,
                    text=edit,
                    comfort=None,
                    now=now,
                )
            written.reflections[number] = words
            written.reasons[number] = reason
            written.reflections[number % 5_000] = edit
            async with database.read() as session:  # and reads, each row with its own key
                await recent_entries(session, bot, user_id=owner, limit=20)
            number += 1
            await asyncio.sleep(0.005)
        out, err = await process.communicate()
        assert process.returncode == 0, out.decode() + err.decode()[-2000:]
        assert number > 10_050  # the bot wrote all along
        rotation.finish_keys()
        found = await read_back(database, TextCipher(rotation.new), key_id=key_id(rotation.new))
        assert found.reflections == written.reflections and found.reasons == written.reasons
        if mode == "key file":  # it lets go of the old key too, at its next look
            for _ in range(50):
                if bot.key_ids == (key_id(rotation.new),):
                    break
                await asyncio.sleep(0.1)
            assert bot.key_ids == (key_id(rotation.new),)
    finally:
        await database.dispose()


async def test_backup_under_concurrent_writes_restores_every_entry(tmp_path: Path) -> None:
    """`python bot.py backup` while the bot writes; the copy, put in a fresh place with its
    key, starts the bot's database layer and every entry in it opens: one consistent
    moment, all of it (each write's reflection and decision together, none after a gap)."""
    import shutil

    from advice.progress import Leaning
    from cogs.core.operator import startup
    from db import Database
    from db.crypto import KeyFileCipher, load_or_create_key_file
    from db.decisions import add_decision, decision_history
    from db.journal import add_reflection, recent_entries
    from db.migrate import upgrade
    from tests.db.sealing import MARK, seed

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    await upgrade(database)
    load_or_create_key_file(tmp_path / "cli.key")
    cipher = KeyFileCipher(tmp_path / "cli.key")
    written = await seed(database, cipher, 5_000, members=20)
    committed: list[int] = []

    async def write_until(done: asyncio.Event) -> None:
        number = 10_000
        while not done.is_set():
            now = datetime.now(UTC)
            async with database.transaction() as session:
                await add_reflection(
                    session,
                    cipher,
                    user_id=5000 + number % 20,
                    point="fame",
                    text=f"#{number} during the backup",
                    comfort=4,
                    submission_key=None,
                    now=now,
                )
                await add_decision(
                    session,
                    cipher,
                    user_id=5000 + number % 20,
                    leaning=Leaning.NO,
                    reason=f"#{number} why",
                    now=now,
                )
            committed.append(number)
            if len(committed) == 5:
                writing.set()
            number += 1
            await asyncio.sleep(0.002)

    done, writing = asyncio.Event(), asyncio.Event()
    writer = asyncio.create_task(write_until(done))
    try:
        await asyncio.wait_for(writing.wait(), 30)
        before = len(committed)
        (tmp_path / "backups").mkdir()
        code, out, err = await run_cli(tmp_path, "backup", str(tmp_path / "backups"))
        after = len(committed)
    finally:
        done.set()
        await writer
    await database.dispose()
    assert code == 0, err[-2000:]
    assert "checked: ok" in out and f"key {cipher.key_id} ({tmp_path / 'cli.key'})" in out
    [copy] = (tmp_path / "backups").iterdir()
    assert oct(copy.stat().st_mode & 0o777) == "0o600"
    assert not list((tmp_path / "backups").glob("*partial*"))

    fresh = tmp_path / "restored"
    fresh.mkdir()
    shutil.copy(copy, fresh / "crossroads.db")
    shutil.copy(tmp_path / "cli.key", fresh / "crossroads.key")
    settings = startup.Settings(database_url=f"sqlite+aiosqlite:///{fresh / 'crossroads.db'}")
    async with startup.open_database(settings) as restored:
        opened = await startup.load_cipher(settings, restored)  # the bot's own start-up check
        reflections: dict[int, str] = {}
        reasons: dict[int, str] = {}
        async with restored.read() as session:
            for owner in range(5000, 5020):
                for entry in await recent_entries(session, opened, user_id=owner, limit=None):
                    match = MARK.match(entry.text)
                    assert match
                    reflections[int(match[1])] = entry.text
                for stance in await decision_history(session, opened, user_id=owner):
                    if stance.reason:
                        match = MARK.match(stance.reason)
                        assert match
                        reasons[int(match[1])] = stance.reason
    during = sorted(n for n in reflections if n >= 10_000)
    assert during == list(range(10_000, 10_000 + len(during)))  # no gap: one moment
    assert before <= len(during) <= after and before < after  # taken while the bot wrote
    assert sorted(n for n in reasons if n >= 10_000) == during  # each write whole
    assert {n: reflections[n] for n in written.reflections} == written.reflections
    assert {n: reasons[n] for n in written.reasons} == written.reasons
    assert all(reflections[n] == f"#{n} during the backup" for n in during)


async def test_backup_on_postgresql_is_one_line_naming_pg_dump(tmp_path: Path) -> None:
    from db.crypto import generate_key

    code, out, err = await run_cli(
        tmp_path,
        "backup",
        "x.dump",
        DATABASE_URL="postgresql+asyncpg://crossroads:secret@db.example:5432/crossroads",
        DATA_KEY=generate_key(),
    )
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "pg_dump" in err and "secret" not in err
    assert not (tmp_path / "x.dump").exists()


async def test_the_readmes_pg_dump_and_pg_restore_restore_every_entry(tmp_path: Path) -> None:
    """The commands the README gives for PostgreSQL, under concurrent writes."""
    import shutil

    from sqlalchemy.engine import make_url

    from cogs.core.operator import startup
    from db import Database
    from db.crypto import TextCipher, generate_key, parse_key
    from db.journal import add_reflection
    from db.migrate import upgrade
    from tests.db.sealing import read_back, seed

    if not TEST_DATABASE_URL:
        pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL case was skipped")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.skip("pg_dump and pg_restore are not installed")
    await reset_postgres_schema(TEST_DATABASE_URL)
    encoded = generate_key()
    cipher = TextCipher(parse_key(encoded))
    database = Database(TEST_DATABASE_URL)
    await upgrade(database)
    written = await seed(database, cipher, 3_000, members=20)
    done, writing, committed = asyncio.Event(), asyncio.Event(), 0

    async def write_until() -> None:
        nonlocal committed
        while not done.is_set():
            async with database.transaction() as session:
                await add_reflection(
                    session,
                    cipher,
                    user_id=5000,
                    point="fame",
                    text=f"#{10_000 + committed} during the dump",
                    comfort=None,
                    submission_key=None,
                    now=datetime.now(UTC),
                )
            committed += 1
            if committed == 5:
                writing.set()
            await asyncio.sleep(0.002)

    dsn = make_url(TEST_DATABASE_URL).set(drivername="postgresql").render_as_string(False)
    dump = tmp_path / "crossroads.dump"
    writer = asyncio.create_task(write_until())
    try:
        await asyncio.wait_for(writing.wait(), 30)
        pg_dump = await asyncio.create_subprocess_exec(
            "pg_dump", "--format=custom", f"--file={dump}", dsn, stderr=asyncio.subprocess.PIPE
        )
        _, err = await asyncio.wait_for(pg_dump.communicate(), 120)
        assert pg_dump.returncode == 0, err.decode()
    finally:
        done.set()
        await writer
    await database.dispose()
    await reset_postgres_schema(TEST_DATABASE_URL)  # the fresh place to restore into
    pg_restore = await asyncio.create_subprocess_exec(
        "pg_restore", "--no-owner", f"--dbname={dsn}", str(dump), stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(pg_restore.communicate(), 120)
    assert pg_restore.returncode == 0, err.decode()

    settings = startup.Settings(database_url=TEST_DATABASE_URL, data_key=encoded)
    async with startup.open_database(settings) as restored:
        opened = await startup.load_cipher(settings, restored)
        found = await read_back(restored, opened)
    during = sorted(n for n in found.reflections if n >= 10_000)
    assert during == list(range(10_000, 10_000 + len(during))) and 5 <= len(during) <= committed
    assert {n: found.reflections[n] for n in written.reflections} == written.reflections
    assert found.reasons == written.reasons


async def test_rotate_key_stops_on_sigterm_and_the_bot_then_needs_the_previous_key(
    tmp_path: Path,
) -> None:
    from db.crypto import TextCipher, key_id
    from tests.db.sealing import seed

    rotation = Rotation(tmp_path, "DATA_KEY")
    database = await rotation.open()
    try:
        await seed(database, TextCipher(rotation.old), 20_000, members=200)
        process = await rotation.start("--batch-size", "100")
        async with asyncio.timeout(60):
            while await rows_under_other_keys(database, key_id(rotation.old)) < 1_000:
                assert process.returncode is None
                await asyncio.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 1, err.decode()[-2000:]
        assert "stopping after this batch" in err.decode()
        assert "rotate-key: stopped with" in out.decode() and "again to finish" in out.decode()
        assert 1_000 <= await rows_under_other_keys(database, key_id(rotation.old)) < 20_000
    finally:
        await database.dispose()

    # DATA_KEY_PREVIOUS dropped too early: the bot refuses before it connects, naming it.
    without_previous = rotation.settings | {"DATA_KEY_PREVIOUS": ""}
    code, _, err, _ = await run_against_emulator(
        tmp_path, DISCORD_TOKEN="invalid-token", **without_previous
    )
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("crossroads: DATA_KEY_PREVIOUS: "), last
    assert f"key {key_id(rotation.old)}" in last and "rotate-key" in last
