"""The storage layer on SQLite and PostgreSQL: migrations, transactions, failure modes."""

import asyncio
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from db import Database, DatabaseConfigError, StorageUnavailable
from db.database import parse_database_url
from db.migrate import HEAD_REVISION, downgrade, upgrade
from db.models import Base
from db.state import get_state, set_state
from db.users import ensure_user
from tests.conftest import TEST_DATABASE_URL, reset_postgres_schema
from tests.e2e.outage import can_make_read_only, set_read_only, sqlite_files


async def test_migrations_create_every_model_table(database: Database) -> None:
    async with database.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


async def test_migrations_match_the_models(database: Database) -> None:
    """A model changed without a migration shows up as a diff here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    await downgrade(database, "base")
    await upgrade(database, run_migrations=True)  # the fixture's was made from the models
    async with database.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


# The schema as the database itself describes it: what Alembic's comparison leaves out too
# (server defaults, partial indexes' conditions, ON DELETE).
SCHEMA_QUERIES = {
    "sqlite": (
        'SELECT m.name, p.name, p.type, p."notnull", p.dflt_value, p.pk '
        "FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'",
        "SELECT name, sql FROM sqlite_master WHERE type = 'index'",
        'SELECT m.name, f."table", f."from", f."to", f.on_delete '
        "FROM sqlite_master m, pragma_foreign_key_list(m.name) f",
    ),
    "postgresql": (
        "SELECT table_name, column_name, data_type, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public'",
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    ),
}


async def schema_of(database: Database) -> set[tuple[object, ...]]:
    found: set[tuple[object, ...]] = set()
    async with database.engine.connect() as conn:
        for query in SCHEMA_QUERIES[database.url.get_backend_name()]:
            found |= {(query[:30], *row) for row in (await conn.execute(text(query))).all()}
    return found


async def test_a_new_database_made_from_the_models_is_the_migrated_one(
    database: Database,
) -> None:
    """A new database is given the newest schema from the models, without Alembic (a bot's
    first start): column for column, default for default, index for index, what running
    every migration makes."""
    from_models = await schema_of(database)
    await downgrade(database, "base")
    await upgrade(database, run_migrations=True)
    assert from_models == await schema_of(database)
    async with database.read() as session:
        stamped = await session.scalar(text("SELECT version_num FROM alembic_version"))
    assert stamped == HEAD_REVISION


async def test_downgrade_to_base_and_back(database: Database) -> None:
    await downgrade(database, "base")
    async with database.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert not set(Base.metadata.tables) & tables
    await upgrade(database)


async def test_head_revision_is_alembics_head() -> None:
    """Start-up skips Alembic when the schema is at HEAD_REVISION: it must be the newest."""
    from alembic.script import ScriptDirectory

    from db.migrate import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


@pytest.mark.parametrize("first_start", [True, False])
async def test_alembic_is_not_imported_on_a_new_or_current_database(
    tmp_path: Path, first_start: bool
) -> None:
    """Alembic costs the running bot about 12 MiB; one query decides it is not needed, on a
    bot's first start (a new database) as on every later one."""
    if not first_start:
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        await upgrade(database)
        await database.dispose()
    check = (
        "import asyncio, sys\n"
        "from db import Database\n"
        "from db.migrate import upgrade\n"
        f"database = Database('sqlite+aiosqlite:///{tmp_path / 'x.db'}')\n"
        "asyncio.run(upgrade(database))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", check, stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert out.decode().strip() == "[]"


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set: PostgreSQL only")
async def test_processes_migrating_together_wait_for_each_other() -> None:
    """Several processes starting at once on an empty PostgreSQL: the advisory lock makes
    them take turns, so every one succeeds and the schema is created once."""
    assert TEST_DATABASE_URL
    await reset_postgres_schema(TEST_DATABASE_URL)
    databases = [Database(TEST_DATABASE_URL) for _ in range(4)]
    try:
        # Without the lock they block each other's CREATE TABLE: a hang, failed here.
        await asyncio.wait_for(asyncio.gather(*(upgrade(db) for db in databases)), 60)
        async with databases[0].read() as session:
            versions = await session.scalars(text("SELECT version_num FROM alembic_version"))
            assert list(versions) == [HEAD_REVISION]
    finally:
        for database in databases:
            await database.dispose()


async def test_transaction_commits_and_rolls_back(database: Database, clock) -> None:
    async with database.transaction() as session:
        await set_state(session, "kept", "1", now=clock.now())
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await set_state(session, "dropped", "1", now=clock.now())
            await session.flush()
            raise RuntimeError("boom")
    async with database.read() as session:
        assert await get_state(session, "kept") == "1"
        assert await get_state(session, "dropped") is None


async def test_datetimes_come_back_aware_utc(database: Database, clock) -> None:
    async with database.transaction() as session:
        await ensure_user(session, 42, now=clock.now())
    async with database.read() as session:
        user = await ensure_user(session, 42, now=clock.now())
    assert user.created_at == clock.now()
    assert user.created_at.utcoffset() is not None


async def test_ensure_user_is_idempotent(database: Database, clock) -> None:
    for _ in range(2):
        async with database.transaction() as session:
            await ensure_user(session, 7, now=clock.now())
    async with database.read() as session:
        count = (await session.execute(text("SELECT COUNT(*) FROM users"))).scalar_one()
    assert count == 1


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'x.db'}")
    async with database.read() as session:
        journal = (await session.execute(text("PRAGMA journal_mode"))).scalar_one()
        foreign_keys = (await session.execute(text("PRAGMA foreign_keys"))).scalar_one()
        synchronous = (await session.execute(text("PRAGMA synchronous"))).scalar_one()
    await database.dispose()
    assert (journal, foreign_keys, synchronous) == ("wal", 1, 1)
    assert (tmp_path / "nested").is_dir()


async def test_a_sqlite_lock_held_elsewhere_is_waited_for_off_the_event_loop(
    tmp_path: Path, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process writing holds SQLite's lock: a write waits for it (the busy timeout),
    while the event loop keeps serving everything else; past the timeout, the member is told
    storage is unavailable."""
    import sqlite3

    import db.database

    monkeypatch.setattr(db.database, "SQLITE_BUSY_TIMEOUT_MS", 600)
    path = tmp_path / "locked.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(database)
    other = sqlite3.connect(path, isolation_level=None)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    running = asyncio.create_task(ticker())
    try:
        other.execute("BEGIN IMMEDIATE")
        asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
        async with database.transaction() as session:  # waits ~0.3 s, then writes
            await set_state(session, "k", "v", now=clock.now())
        assert ticks >= 10  # the loop ran meanwhile
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageUnavailable):
            async with database.transaction() as session:
                await set_state(session, "k", "w", now=clock.now())
        other.execute("ROLLBACK")
        async with database.read() as session:
            assert await get_state(session, "k") == "v"
    finally:
        running.cancel()
        other.close()
        await database.dispose()


async def test_read_only_sqlite_database_gives_storage_unavailable(tmp_path: Path, clock) -> None:
    """SQLite's read-only mode stands in for a read-only file: CI runs as root, which can
    write any file whatever its permissions."""
    path = tmp_path / "ro.db"
    writable = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(writable)
    await writable.dispose()
    read_only = Database(f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true")
    with pytest.raises(StorageUnavailable) as caught:
        async with read_only.transaction() as session:
            await set_state(session, "k", "v", now=clock.now())
    await read_only.dispose()
    assert "nothing was saved" in caught.value.message


async def test_an_sqlite_file_read_only_for_a_while_is_written_again_after(
    tmp_path: Path, clock
) -> None:
    """SQLite opens a file it cannot write read-only, for the connection's whole life: a
    connection opened while the file was read-only must not keep the bot from writing once
    it is writable again, nor must one whose write failed meanwhile."""
    why_not = can_make_read_only(tmp_path)
    if why_not:
        pytest.skip(f"an SQLite file cannot be made read-only under open connections: {why_not}")
    path = tmp_path / "flaky.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    await upgrade(database)
    files = sqlite_files(path)
    set_read_only(files, True)
    try:
        await database.engine.dispose()  # the next connections open while it is read-only
        async with database.read() as session:  # reads go on meanwhile
            assert await get_state(session, "k") is None
        for _ in range(2):
            with pytest.raises(StorageUnavailable):
                async with database.transaction() as session:
                    await set_state(session, "k", "during", now=clock.now())
        async with database.read() as session:  # a connection opened read-only, pooled
            assert await get_state(session, "k") is None
    finally:
        set_read_only(files, False)
    for value in ("after", "again"):
        async with database.transaction() as session:
            await set_state(session, "k", value, now=clock.now())
    async with database.read() as session:
        assert await get_state(session, "k") == "again"
    await database.dispose()


async def test_unreachable_postgres_gives_storage_unavailable() -> None:
    database = Database("postgresql+asyncpg://nobody@127.0.0.1:9/none")
    with pytest.raises(StorageUnavailable):
        async with database.read() as session:
            await session.execute(text("SELECT 1"))
    await database.dispose()


async def test_a_read_past_its_bound_is_storage_unavailable(database: Database) -> None:
    """A read that must end before an interaction is answered gives up in time."""
    with pytest.raises(StorageUnavailable):
        async with database.read(within=0.05) as session:
            await session.execute(text("SELECT 1"))
            await asyncio.sleep(0.5)  # stands in for a query stuck behind a lock
    async with database.read(within=5) as session:  # a bound that is met changes nothing
        assert (await session.execute(text("SELECT 1"))).scalar_one() == 1


@pytest.mark.parametrize("error", [TimeoutError("discord was slow"), OSError("disk full")])
async def test_the_callers_own_errors_inside_a_transaction_are_not_storage_errors(
    database: Database, clock, error: Exception
) -> None:
    """A Discord request timing out, or a file failing, inside a transaction is not the
    database being down: the member must not be told storage is unavailable."""
    with pytest.raises(type(error)) as caught:
        async with database.transaction() as session:
            await set_state(session, "k", "v", now=clock.now())
            raise error
    assert caught.value is error
    async with database.read() as session:
        assert await get_state(session, "k") is None  # rolled back all the same


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("not a url", "not a database URL"),
        ("mysql://x@y/z", "must start with sqlite+aiosqlite"),
        ("sqlite+aiosqlite://", "names no SQLite file"),
    ],
)
def test_bad_database_urls_name_the_setting(url: str, fragment: str) -> None:
    with pytest.raises(DatabaseConfigError) as caught:
        parse_database_url(url)
    message = str(caught.value)
    assert message.startswith("DATABASE_URL") and fragment in message
    assert "\n" not in message


async def test_writes_begin_immediate_and_reads_do_not(tmp_path: Path, clock) -> None:
    """Writers take SQLite's write lock up front instead of failing halfway on upgrade."""
    from sqlalchemy import event

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'begin.db'}")
    await upgrade(database)
    issued: list[str] = []
    event.listen(
        database.engine.sync_engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_: issued.append(statement),
    )
    async with database.transaction() as session:
        await set_state(session, "k", "v", now=clock.now())
    async with database.read() as session:
        await get_state(session, "k")
    await database.dispose()
    begins = [statement.strip() for statement in issued if statement.startswith("BEGIN")]
    assert begins == ["BEGIN IMMEDIATE", "BEGIN"]


async def test_a_batch_rebuild_of_users_keeps_every_reflection(tmp_path: Path, clock) -> None:
    """SQLite rebuilds tables to alter them; with foreign keys on, that would cascade."""
    import sqlalchemy as sa
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    from db.crypto import TextCipher, generate_key, parse_key
    from db.journal import add_reflection, marks
    from db.migrate import run_migration

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'batch.db'}")
    await upgrade(database)
    cipher = TextCipher(parse_key(generate_key()))
    async with database.transaction() as session:
        await add_reflection(
            session,
            cipher,
            user_id=1,
            point="purpose",
            text="keep me",
            comfort=3,
            submission_key=None,
            now=clock.now(),
        )

    def rebuild_users(conn: object) -> None:
        operations = Operations(MigrationContext.configure(conn))  # type: ignore[arg-type]
        with operations.batch_alter_table("users", recreate="always") as batch:
            batch.add_column(sa.Column("nickname", sa.String(20)))

    await run_migration(database, rebuild_users)
    async with database.read() as session:
        assert len(await marks(session, user_id=1)) == 1
        assert (await session.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    await database.dispose()


async def test_a_failed_migration_leaves_foreign_keys_on(tmp_path: Path) -> None:
    from db.migrate import run_migration

    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'failed.db'}")
    await upgrade(database)

    def half_done(conn: object) -> None:
        conn.exec_driver_sql("CREATE TABLE scratch (id INTEGER)")  # type: ignore[attr-defined]
        raise RuntimeError("migration failed halfway")

    with pytest.raises(RuntimeError):
        await run_migration(database, half_done)
    async with database.engine.connect() as conn:  # the same pooled connection comes back
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert "scratch" not in tables
    await database.dispose()


async def test_sqlite_writers_of_one_process_queue_instead_of_timing_out(
    tmp_path: Path, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's busy-wait is not first come, first served: with more writers than its busy
    timeout covers, some lost every retry ("database is locked"). They queue in order now.
    The busy timeout is shortened so a few slow writes outlast it in well under a second."""
    import db.database

    monkeypatch.setattr(db.database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}")
    await upgrade(database)

    async def write(n: int) -> None:
        async with database.transaction() as session:
            await set_state(session, f"k{n}", "v", now=clock.now())
            await asyncio.sleep(0.1)  # a slow write: six outlast the 0.2 s busy timeout

    await asyncio.gather(*(write(n) for n in range(6)))
    async with database.read() as session:
        assert all([await get_state(session, f"k{n}") == "v" for n in range(6)])
    await database.dispose()


@pytest.mark.skipif(not TEST_DATABASE_URL, reason="TEST_DATABASE_URL is not set: PostgreSQL only")
async def test_a_pooled_connection_the_server_closed_is_replaced_unseen() -> None:
    """No ping per transaction: a connection the server ended (a restart, an administrator)
    is known closed at checkout and replaced, so the next command does not fail."""
    assert TEST_DATABASE_URL
    database = Database(TEST_DATABASE_URL)
    try:
        async with database.read() as session:
            pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        other = Database(TEST_DATABASE_URL)
        async with other.transaction() as session:
            await session.execute(text(f"SELECT pg_terminate_backend({int(pid)})"))
        await other.dispose()
        await asyncio.sleep(0.2)  # the server's goodbye reaches the pooled connection
        async with database.read() as session:
            new_pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert new_pid != pid
    finally:
        await database.dispose()
