"""`python bot.py backup PATH`: a consistent copy of the SQLite database while the bot writes
(db.backup does the copy), and which keys it will need to be read; PostgreSQL is pg_dump's.
"""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from cogs.core.operator.settings import ConfigError, Settings
from cogs.core.operator.startup import database_url, explicit_data_key, previous_data_key
from db.crypto import (
    DataKeyError,
    TextCipher,
    key_id,
    previous_key_file,
    read_key_file,
)


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
