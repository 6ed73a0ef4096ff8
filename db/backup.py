"""A consistent copy of an SQLite database while the bot writes to it.

SQLite's online backup API copies every page inside one read transaction: in WAL mode
writers carry on meanwhile, and the copy holds exactly what was committed when it began,
WAL included. The copy is made under a temporary name beside the target, switched to a
single self-contained file (no -wal beside it), checked, flushed to disk and only then
renamed into place, so a backup that exists is a whole one.
"""

import contextlib
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from db.crypto import DecryptionFailed, TextCipher
from db.files import sync_directory

BUSY_TIMEOUT_S = 30


class BackupFailed(Exception):
    """The copy could not be made or failed its check; the message is one line."""


_SEALED = (("reflections", "body"), ("decisions", "reason"))


@dataclass(frozen=True)
class Contents:
    """What a copy holds, as far as restoring it is concerned."""

    revision: str | None  # the schema's Alembic revision; None for an empty database
    reflections: int
    decisions: int
    # Sealed rows by the id of the key that sealed them (None: unrecorded, from before 0008).
    keys: dict[str | None, int]
    # The newest unrecorded sealed value and its owner, to tell which key opens those.
    unrecorded_sample: tuple[bytes, int] | None


@dataclass(frozen=True)
class BackupReport:
    target: Path
    size: int
    seconds: float
    check: str  # PRAGMA quick_check's answer: "ok"
    contents: Contents


def backup_sqlite(source: Path, target: Path) -> BackupReport:
    """Copy `source` to `target` (which must not exist); blocking, so run it in a thread."""
    started = time.monotonic()
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        # Private from the start, as the database's key file is: the copy is the members'.
        os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        with contextlib.closing(sqlite3.connect(source, timeout=BUSY_TIMEOUT_S)) as origin:
            origin.execute("PRAGMA query_only = ON")
            with contextlib.closing(sqlite3.connect(temporary)) as copy:
                origin.backup(copy)  # every page in one step: one consistent snapshot
                copy.execute("PRAGMA journal_mode = DELETE")  # one file, no -wal beside it
                check = str(copy.execute("PRAGMA quick_check").fetchone()[0])
                contents = describe(copy)
        if check != "ok":
            raise BackupFailed(f"the copy failed SQLite's check ({check}); nothing was kept")
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        _move_into_place(temporary, target)
    except sqlite3.Error as exc:
        raise BackupFailed(f"SQLite could not copy {source} ({exc}); nothing was kept") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return BackupReport(
        target=target,
        size=target.stat().st_size,
        seconds=time.monotonic() - started,
        check=check,
        contents=contents,
    )


def describe(copy: sqlite3.Connection) -> Contents:
    tables = {row[0] for row in copy.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    revision = None
    if "alembic_version" in tables:
        row = copy.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    counts: dict[str, int] = {}
    keys: dict[str | None, int] = {}
    sample: tuple[bytes, int] | None = None
    for table, column in _SEALED:
        if table not in tables:
            counts[table] = 0
            continue
        counts[table] = copy.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        has_key_id = any(
            info[1] == "key_id" for info in copy.execute(f"PRAGMA table_info({table})")
        )
        key = "key_id" if has_key_id else "NULL"
        for kid, n in copy.execute(
            f"SELECT {key}, count(*) FROM {table} WHERE {column} IS NOT NULL GROUP BY 1"
        ):
            keys[kid] = keys.get(kid, 0) + n
        newest = copy.execute(
            f"SELECT {column}, user_id FROM {table} WHERE {key} IS NULL AND {column} IS NOT NULL "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if newest is not None and sample is None:
            sample = (bytes(newest[0]), int(newest[1]))
    return Contents(
        revision=revision,
        reflections=counts["reflections"],
        decisions=counts["decisions"],
        keys=keys,
        unrecorded_sample=sample,
    )


def unrecorded_key(contents: Contents, keys: Mapping[str, TextCipher]) -> str | None:
    """Which of `keys` (id -> a cipher of that key alone) opens the copy's unrecorded rows."""
    if contents.unrecorded_sample is None:
        return None
    blob, owner = contents.unrecorded_sample
    for kid, cipher in keys.items():
        try:
            cipher.decrypt(blob, owner_id=owner)
        except DecryptionFailed:
            continue
        return kid
    return None


def _move_into_place(temporary: Path, target: Path) -> None:
    """Rename without ever replacing a file that appeared at `target` meanwhile."""
    try:
        os.link(temporary, target)  # atomic, and refuses an existing target
    except FileExistsError:
        raise BackupFailed(f"{target} appeared meanwhile; nothing was overwritten") from None
    except OSError:  # a filesystem without hard links
        if target.exists():
            raise BackupFailed(f"{target} appeared meanwhile; nothing was overwritten") from None
        os.replace(temporary, target)
    sync_directory(target.parent)
