"""Reflections, decisions and a member's data, on SQLite and PostgreSQL."""

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from advice.clock import ManualClock
from advice.errors import NotFound
from advice.journey import PromptKind
from advice.progress import Leaning
from db import Database
from db.crypto import TextCipher, generate_key, parse_key
from db.decisions import add_decision, decision_history
from db.journal import add_reflection, delete_entry, edit_entry, get_entry, list_page, marks
from db.models import Base
from db.mydata import export, forget, summarize
from db.progress import progress_data

ALICE, BOB = 1001, 2002


@pytest.fixture
def cipher() -> TextCipher:
    return TextCipher(parse_key(generate_key()))


async def _add(database: Database, cipher: TextCipher, clock: ManualClock, **kwargs: object):
    fields: dict[str, object] = {
        "user_id": ALICE,
        "point": "purpose",
        "text": "because",
        "comfort": 3,
        "submission_key": None,
    }
    fields.update(kwargs)
    async with database.transaction() as session:
        return await add_reflection(session, cipher, now=clock.now(), **fields)  # type: ignore[arg-type]


async def test_first_then_revisit_kind_and_journey_start(
    database: Database, cipher: TextCipher, clock: ManualClock
) -> None:
    first, _ = await _add(database, cipher, clock)
    clock.advance(timedelta(days=91))
    again, _ = await _add(database, cipher, clock, text="still because")
    assert (first.kind, again.kind) == (PromptKind.FIRST, PromptKind.REVISIT)
    async with database.read() as session:
        summary = await summarize(session, user_id=ALICE)
    assert summary.reflections == 2 and summary.points_covered == 1
    assert summary.journey_started_at == first.created_at == summary.first_at
    assert summary.last_at == again.created_at


async def test_same_submission_saved_once(
    database: Database, cipher: TextCipher, clock: ManualClock
) -> None:
    one, created_one = await _add(database, cipher, clock, submission_key="modal-1")
    two, created_two = await _add(database, cipher, clock, submission_key="modal-1")
    assert (created_one, created_two) == (True, False)
    assert one.id == two.id
    async with database.read() as session:
        assert len(await marks(session, user_id=ALICE)) == 1


async def test_paging_newest_first_and_point_filter(
    database: Database, cipher: TextCipher, clock: ManualClock
) -> None:
    for index in range(7):
        clock.advance(timedelta(hours=1))
        await _add(
            database,
            cipher,
            clock,
            text=f"entry {index}",
            point="purpose" if index % 2 else "money",
        )
    async with database.read() as session:
        first = await list_page(session, cipher, user_id=ALICE, point=None, page=0, per_page=5)
        last = await list_page(session, cipher, user_id=ALICE, point=None, page=99, per_page=5)
        money = await list_page(session, cipher, user_id=ALICE, point="money", page=0, per_page=5)
    assert [e.text for e in first.entries] == [f"entry {i}" for i in (6, 5, 4, 3, 2)]
    assert (first.count, first.total, last.number) == (2, 7, 1)
    assert [e.text for e in last.entries] == ["entry 1", "entry 0"]
    assert [e.text for e in money.entries] == ["entry 6", "entry 4", "entry 2", "entry 0"]


async def test_a_member_only_reaches_their_own_entries(
    database: Database, cipher: TextCipher, clock: ManualClock
) -> None:
    entry, _ = await _add(database, cipher, clock, user_id=ALICE, text="alice's secret")
    async with database.transaction() as session:
        with pytest.raises(NotFound):
            await get_entry(session, cipher, user_id=BOB, entry_id=entry.id)
        with pytest.raises(NotFound):
            await edit_entry(
                session,
                cipher,
                user_id=BOB,
                entry_id=entry.id,
                text="x",
                comfort=None,
                now=clock.now(),
            )
        with pytest.raises(NotFound):
            await delete_entry(session, user_id=BOB, entry_id=entry.id)
        bobs = await list_page(session, cipher, user_id=BOB, point=None, page=0, per_page=5)
    assert bobs.entries == []
    async with database.read() as session:
        assert (
            await get_entry(session, cipher, user_id=ALICE, entry_id=entry.id)
        ).text == "alice's secret"


async def test_edit_keeps_creation_time_and_records_edit(
    database: Database, cipher: TextCipher, clock: ManualClock
) -> None:
    entry, _ = await _add(database, cipher, clock)
    clock.advance(timedelta(days=2))
    async with database.transaction() as session:
        edited = await edit_entry(
            session,
            cipher,
            user_id=ALICE,
            entry_id=entry.id,
            text="new",
            comfort=None,
            now=clock.now(),
        )
    assert (edited.text, edited.comfort, edited.created_at) == ("new", 3, entry.created_at)
    assert edited.edited_at == clock.now()


async def test_edit_after_delete_is_not_found(
    database: Database, cipher: TextCipher, clock: ManualClock
) -> None:
    entry, _ = await _add(database, cipher, clock)
    async with database.transaction() as session:
        await delete_entry(session, user_id=ALICE, entry_id=entry.id)
    async with database.transaction() as session:
        with pytest.raises(NotFound):
            await edit_entry(
                session,
                cipher,
                user_id=ALICE,
                entry_id=entry.id,
                text="x",
                comfort=1,
                now=clock.now(),
            )


async def test_export_matches_the_database_and_forget_leaves_no_row(
    database: Database, cipher: TextCipher, clock: ManualClock
) -> None:
    await _add(database, cipher, clock, text="mine")
    await _add(database, cipher, clock, user_id=BOB, text="bob's")
    async with database.transaction() as session:
        await add_decision(
            session,
            cipher,
            user_id=ALICE,
            leaning=Leaning.LEANING_YES,
            reason="why",
            now=clock.now(),
        )
    async with database.read() as session:
        data = await export(session, cipher, user_id=ALICE, now=clock.now())
        history = await decision_history(session, cipher, user_id=ALICE)
    assert [r["text"] for r in data["reflections"]] == ["mine"]
    [decision] = data["decisions"]
    assert {k: v for k, v in decision.items() if k != "id"} == {
        "leaning": "leaning yes",
        "reason": "why",
        "created_at": history[0].created_at.isoformat(),
    }
    async with database.transaction() as session:
        removed = await forget(session, user_id=ALICE)
    assert removed == 3  # the reflection, the decision, the user
    async with database.read() as session:
        for table in Base.metadata.sorted_tables:
            column = (
                "user_id" if "user_id" in table.c else ("id" if table.name == "users" else None)
            )
            if column:
                left = await session.scalar(
                    text(f"SELECT COUNT(*) FROM {table.name} WHERE {column} = :u"), {"u": ALICE}
                )
                assert left == 0, table.name
        assert (await summarize(session, user_id=BOB)).reflections == 1


CANARY = "canary-7f3a9c-do-not-store-in-clear"


async def test_canary_text_is_never_stored_in_clear(
    database: Database, cipher: TextCipher, clock: ManualClock, tmp_path: Path
) -> None:
    await _add(database, cipher, clock, text=f"my reflection {CANARY}")
    async with database.transaction() as session:
        await add_decision(
            session, cipher, user_id=ALICE, leaning=Leaning.NO, reason=CANARY, now=clock.now()
        )
    if database.is_sqlite:
        files = [p for p in tmp_path.iterdir() if p.name.startswith("crossroads.db")]
        assert any(p.name.endswith("-wal") for p in files)  # the write is still in the WAL
        for path in files:
            assert CANARY.encode() not in path.read_bytes(), path.name
    else:
        async with database.read() as session:
            for table in ("reflections", "decisions"):
                dump = await session.scalar(text(f"SELECT string_agg(t::text, '|') FROM {table} t"))
                assert dump and CANARY not in dump
                assert CANARY.encode().hex() not in dump
    async with database.read() as session:
        assert await marks(session, user_id=ALICE)


async def test_progress_data_reads_marks_then_vs_now_texts_and_decisions(
    database: Database, cipher: TextCipher, clock: ManualClock
) -> None:
    async with database.read() as session:
        nobody = await progress_data(session, cipher, user_id=ALICE)
    assert nobody.empty and nobody.journey_started_at is None and nobody.timezone is None
    texts = ["first purpose", "middle purpose", "latest purpose"]
    written = []
    for words in texts:
        written.append((await _add(database, cipher, clock, text=words))[0])
        clock.advance(timedelta(days=30))
    once, _ = await _add(database, cipher, clock, point="money", text="only once", comfort=None)
    await _add(database, cipher, clock, user_id=BOB, text="not alice's")
    async with database.read() as session:
        no_decisions = await progress_data(session, cipher, user_id=ALICE)
    assert no_decisions.stances == [] and not no_decisions.empty
    for leaning in (Leaning.NO, Leaning.LEANING_YES):
        clock.advance(timedelta(days=1))
        async with database.transaction() as session:
            await add_decision(
                session, cipher, user_id=ALICE, leaning=leaning, reason="why", now=clock.now()
            )
    async with database.read() as session:
        data = await progress_data(session, cipher, user_id=ALICE)
    assert [m.id for m in data.marks] == [e.id for e in (*written, once)]
    assert [m.comfort for m in data.marks] == [3, 3, 3, None]
    # Then vs now: only the first and latest of a point written more than once is decrypted.
    assert data.texts == {written[0].id: texts[0], written[2].id: texts[2]}
    assert [s.leaning for s in data.stances] == [Leaning.NO, Leaning.LEANING_YES]
    assert all(s.reason is None for s in data.stances)
    assert data.journey_started_at == written[0].created_at


async def test_the_years_summary_reads_every_points_first_and_latest_and_the_reasons(
    database: Database, cipher: TextCipher, clock: ManualClock
) -> None:
    texts = ["first purpose", "middle purpose", "latest purpose"]
    written = []
    for words in texts:
        written.append((await _add(database, cipher, clock, text=words))[0])
        clock.advance(timedelta(days=30))
    once, _ = await _add(database, cipher, clock, point="money", text="only once")
    await _add(database, cipher, clock, user_id=BOB, point="fame", text="not alice's")
    async with database.transaction() as session:
        for leaning, reason in ((Leaning.NO, "not yet"), (Leaning.YES, None)):
            await add_decision(
                session, cipher, user_id=ALICE, leaning=leaning, reason=reason, now=clock.now()
            )
    async with database.read() as session:
        data = await progress_data(session, cipher, user_id=ALICE, every_point=True, reasons=True)
    assert data.texts == {
        written[0].id: "first purpose",
        written[2].id: "latest purpose",
        once.id: "only once",
    }
    assert [(s.leaning, s.reason) for s in data.stances] == [
        (Leaning.NO, "not yet"),
        (Leaning.YES, None),
    ]
