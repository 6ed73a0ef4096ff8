"""Who is to be told, after their next command, why their check-ins stopped.

A command used to cost a read after its answer to find out; now it is a set lookup. The set
holds the members with a delivery problem they were not told about (db.checkins,
``notice_pending``): read at start, added to by the problems this process records, and read
again every few seconds for those other processes recorded (shards share one database, and a
member's commands may reach another process than their check-in's). Telling takes the notice
in one UPDATE ... RETURNING, so however many processes know, the member is told once.
"""

import asyncio
import contextlib
import logging

from db import Database
from db import checkins as store

log = logging.getLogger(__name__)


class Notices:
    def __init__(self, database: Database, *, every: float | None) -> None:
        self._database = database
        self._every = every  # None: read at start only (tests tick by hand)
        self._pending: set[int] = set()
        self._added: set[int] = set()  # since the last read began: it may not have seen them
        self._task: asyncio.Task[None] | None = None

    def __contains__(self, user_id: int) -> bool:
        return user_id in self._pending

    def add(self, user_id: int) -> None:
        """This process recorded a problem for the member (after its commit)."""
        self._pending.add(user_id)
        self._added.add(user_id)

    async def take(self, user_id: int) -> str | None:
        """The problem to tell the member about, once; None when there is none (any more)."""
        if user_id not in self._pending:
            return None
        async with self._database.transaction() as session:
            problem = await store.take_notice(session, user_id)
        self._pending.discard(user_id)
        self._added.discard(user_id)
        return problem

    async def refresh(self) -> None:
        self._added = set()
        async with self._database.read() as session:
            pending = await store.members_with_notices(session)
        self._pending = pending | self._added

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="notices")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as error:  # storage away: the next read catches up
                log.warning("could not read pending check-in notices: %s", error)
            if self._every is None:
                return
            await asyncio.sleep(self._every)
