"""Group commit for the API's inserts.

Every acknowledged write must survive a crash, so each commit waits for the disk (SQLite: fsync of the
WAL with synchronous=FULL). Committing each request on its own caps throughput at one fsync per write,
and concurrent SQLite writers queue on the database lock. One writer task takes whatever inserts are
waiting, writes them in one transaction and acknowledges them together after the commit: one fsync for
the whole batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from llm_feedback_loop.storage.tables import Base, check_column_names

log = logging.getLogger(__name__)


@dataclass
class _PendingInsert:
    table: type[Base]
    values: dict[str, Any]
    done: asyncio.Future[int] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class BatchedWriter:
    """Inserts rows for concurrent callers, several per transaction. `insert` returns after the commit."""

    def __init__(self, engine: AsyncEngine, max_batch: int = 512) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_PendingInsert] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="batched-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def insert(self, table: type[Base], values: dict[str, Any]) -> int:
        """Insert one row; returns its id once it is committed."""
        if self._task is None:
            raise RuntimeError("BatchedWriter.start() was not called")
        check_column_names(table, values)
        pending = _PendingInsert(table, values)
        self._queue.put_nowait(pending)
        return await pending.done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write_batch(batch)
            except Exception:
                # One bad row must not fail its neighbours: retry each on its own.
                log.warning("batched insert of %d rows failed; retrying one by one", len(batch), exc_info=True)
                for pending in batch:
                    if pending.done.done():
                        continue
                    try:
                        await self._write_batch([pending])
                    except Exception as error:
                        pending.done.set_exception(error)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write_batch(self, batch: list[_PendingInsert]) -> None:
        by_table: dict[type[Base], list[_PendingInsert]] = {}
        for pending in batch:
            by_table.setdefault(pending.table, []).append(pending)
        ids: list[tuple[_PendingInsert, int]] = []
        async with self._engine.begin() as connection:
            for table, items in by_table.items():
                statement = insert(table).returning(table.id, sort_by_parameter_order=True)  # type: ignore[attr-defined]
                result = await connection.execute(statement, [item.values for item in items])
                ids.extend(zip(items, result.scalars().all(), strict=True))
        for pending, row_id in ids:
            if not pending.done.done():
                pending.done.set_result(row_id)
