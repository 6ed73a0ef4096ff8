"""`python bot.py rotate-key`: every reflection and decision reason re-sealed with the current
key while the bot runs (db.rotation does the work; this is what the operator sees). Stopped or
killed, it loses nothing, and the next run finishes; the end says when the old key can go.
"""

import asyncio
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from cogs.core.operator.settings import ConfigError, Settings
from cogs.core.operator.startup import (
    KeySource,
    explicit_data_key,
    key_file_cipher,
    open_database,
    previous_data_key,
    sqlite_key_file,
)
from db import Database
from db.crypto import (
    KEY_FILE_CHECK_SECONDS,
    DataKeyError,
    TextCipher,
    finish_key_file_rotation,
    key_id,
    previous_key_file,
    read_key_file,
    start_key_file_rotation,
)
from db.mydata import has_encrypted_text
from db.rotation import RotationReport, check_keys, rotate


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
