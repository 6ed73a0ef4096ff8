"""Key rotation on SQLite and PostgreSQL: re-sealing under a new key while others write."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, select, update

from db import Database
from db.crypto import DecryptionFailed, TextCipher, generate_key, key_id, parse_key
from db.journal import edit_entry
from db.models import Reflection
from db.rotation import MAX_PASSES, RotationReport, check_keys, rotate
from tests.db.sealing import Elsewhere, numbered_rows, read_back, seed

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def new_key() -> bytes:
    return parse_key(generate_key())


@pytest.fixture
def elsewhere(database: Database) -> Iterator[Elsewhere]:
    other = Elsewhere(database.url.render_as_string(hide_password=False))
    yield other
    other.close()


async def test_every_row_ends_sealed_with_the_new_key_alone(database: Database) -> None:
    old, new = new_key(), new_key()
    written = await seed(database, TextCipher(old), 600)
    await seed(database, TextCipher(old), 200, recorded=False, first=600, written=written)
    await seed(database, TextCipher(new), 100, first=800, written=written)
    under_new = 100 + 5  # the last seed's reflections, and its reasons (#800, #820, ...)
    cipher = TextCipher(new, previous=[old])

    report = await rotate(database, cipher, batch_size=128)

    assert report.finished and report.passes == 1
    assert report.rotated == report.to_rotate == written.total - under_new
    found = await read_back(database, TextCipher(new), key_id=key_id(new))
    assert found.reflections == written.reflections and found.reasons == written.reasons
    assert found.rows == written.total
    async with database.read() as session:  # still bound to its member
        body, owner = (await session.execute(select(Reflection.body, Reflection.user_id))).first()
    with pytest.raises(DecryptionFailed):
        TextCipher(new).decrypt(body, owner_id=owner + 1)


async def test_a_stopped_rotation_is_finished_by_the_next(database: Database) -> None:
    old, new = new_key(), new_key()
    written = await seed(database, TextCipher(old), 1000)
    cipher = TextCipher(new, previous=[old])
    batches: list[int] = []

    first = await rotate(
        database,
        cipher,
        batch_size=100,
        progress=lambda report: batches.append(report.rotated),
        should_stop=lambda: len(batches) >= 3,
    )

    assert first.stopped and not first.finished
    assert first.rotated == 300 and first.remaining == written.total - 300
    # Halfway, the bot reads both kinds of rows: each names its key.
    assert (await read_back(database, cipher)).reflections == written.reflections
    with pytest.raises(DecryptionFailed):
        await read_back(database, TextCipher(new))

    second = await rotate(database, cipher, batch_size=100)

    assert second.finished and second.to_rotate == written.total - 300
    found = await read_back(database, TextCipher(new), key_id=key_id(new))
    assert found.reflections == written.reflections and found.rows == written.total


async def test_an_edit_between_reading_and_writing_a_batch_wins(
    database: Database, elsewhere: Elsewhere
) -> None:
    """The member's edit lands after the rotation read the row and before it wrote it back:
    the rotation must not put the old text back."""
    old, new = new_key(), new_key()
    written = await seed(database, TextCipher(old), 300)
    rows = await numbered_rows(database, TextCipher(old))
    bot = TextCipher(new, previous=[old])  # the running bot, already writing with the new key

    async def edit(number: int) -> None:
        row_id, owner = rows[number]
        async with elsewhere.database.transaction() as session:
            await edit_entry(
                session,
                bot,
                user_id=owner,
                entry_id=row_id,
                text=f"#{number} edited",
                comfort=None,
                now=NOW,
            )

    class EditedWhileRotating(TextCipher):
        def decrypt(self, blob: bytes, *, owner_id: int, key_id: str | None = None) -> str:
            words = super().decrypt(blob, owner_id=owner_id, key_id=key_id)
            if words.startswith("#150 "):
                elsewhere.run(edit(150))
            return words

    report = await rotate(database, EditedWhileRotating(new, previous=[old]), batch_size=64)

    assert report.finished
    found = await read_back(database, TextCipher(new), key_id=key_id(new))
    assert found.reflections == written.reflections | {150: "#150 edited"}


async def test_what_an_old_key_process_writes_meanwhile_is_swept_by_another_pass(
    database: Database, elsewhere: Elsewhere
) -> None:
    old, new = new_key(), new_key()
    written = await seed(database, TextCipher(old), 400)
    rows = await numbered_rows(database, TextCipher(old))
    straggler = TextCipher(old)  # a bot process not yet restarted with the new key
    edits: list[int] = []

    async def edit_first_entry(number: int) -> None:
        row_id, owner = rows[0]
        async with elsewhere.database.transaction() as session:
            await edit_entry(
                session,
                straggler,
                user_id=owner,
                entry_id=row_id,
                text=f"#0 edit {number}",
                comfort=None,
                now=NOW,
            )

    def once(report: RotationReport) -> None:
        if not edits:
            elsewhere.run(edit_first_entry(len(edits)))
            edits.append(report.rotated)

    report = await rotate(database, TextCipher(new, previous=[old]), batch_size=100, progress=once)

    assert report.finished and report.passes == 2
    found = await read_back(database, TextCipher(new), key_id=key_id(new))
    assert found.reflections == written.reflections | {0: "#0 edit 0"}

    def always(report: RotationReport) -> None:
        elsewhere.run(edit_first_entry(len(edits)))
        edits.append(report.rotated)

    # One that keeps writing with the old key is reported, not chased for ever.
    await seed(database, straggler, 300, first=400)
    report = await rotate(
        database, TextCipher(new, previous=[old]), batch_size=100, progress=always
    )
    assert report.passes == MAX_PASSES and report.remaining == 1 and not report.finished


async def test_rows_no_key_opens_are_reported_and_left_as_they_are(database: Database) -> None:
    old, new, lost = new_key(), new_key(), new_key()
    written = await seed(database, TextCipher(old), 200)
    lost_ones = await seed(database, TextCipher(lost), 3, first=200)  # and a reason, #200
    rows = await numbered_rows(database, TextCipher(old, previous=[lost]))
    damaged_id = rows[7][0]
    async with database.transaction() as session:
        body = await session.scalar(select(Reflection.body).where(Reflection.id == damaged_id))
        assert body is not None
        flipped = body[:-1] + bytes([body[-1] ^ 1])
        await session.execute(
            update(Reflection).where(Reflection.id == damaged_id).values(body=flipped)
        )

    report = await rotate(database, TextCipher(new, previous=[old]), batch_size=50)

    assert not report.finished and report.remaining == 0
    assert report.rotated == written.total - 1
    unreadable = sorted(row for what, row in report.unreadable if what == "reflections")
    assert unreadable == sorted([damaged_id, *(rows[n][0] for n in (200, 201, 202))])
    assert len(report.unreadable) == len(unreadable) + len(lost_ones.reasons)
    async with database.transaction() as session:
        stored = await session.scalar(select(Reflection.body).where(Reflection.id == damaged_id))
        assert stored == flipped  # left exactly as it was
        await session.execute(delete(Reflection).where(Reflection.id == damaged_id))
    found = await read_back(database, TextCipher(new, previous=[lost]))
    del written.reflections[7]
    assert found.reflections == written.reflections | lost_ones.reflections
    assert found.reasons == written.reasons | lost_ones.reasons


async def test_start_up_check_names_missing_keys_in_a_few_probes(database: Database) -> None:
    old, new = new_key(), new_key()
    async with database.read() as session:
        assert (await check_keys(session, TextCipher(new))).ok  # nothing stored yet

    await seed(database, TextCipher(old), 50, recorded=False)
    async with database.read() as session:
        unrecorded = await check_keys(session, TextCipher(new))
        both = await check_keys(session, TextCipher(new, previous=[old]))
    assert not unrecorded.ok and unrecorded.unrecorded and not unrecorded.some_open
    assert both.ok and both.unrecorded_opens

    await rotate(
        database, TextCipher(new, previous=[old]), batch_size=20, should_stop=stop_after(2)
    )
    async with database.read() as session:
        halfway_without_previous = await check_keys(session, TextCipher(new))
    assert not halfway_without_previous.ok and halfway_without_previous.some_open

    await rotate(database, TextCipher(new, previous=[old]))
    newer = new_key()
    async with database.read() as session:
        done = await check_keys(session, TextCipher(new, previous=[old]))
        wrong = await check_keys(session, TextCipher(newer))
    assert done.ok and done.unused == [key_id(old)] and not done.unrecorded
    assert not wrong.ok and wrong.missing == {key_id(new): 50 + 3} and not wrong.some_open


def stop_after(batches: int) -> "StopAfter":
    return StopAfter(batches)


class StopAfter:
    def __init__(self, batches: int) -> None:
        self.left = batches

    def __call__(self) -> bool:
        self.left -= 1
        return self.left < 0
