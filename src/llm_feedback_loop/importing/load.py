"""Write parsed documents to the database in one transaction: all of them, or none."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from llm_feedback_loop.importing.original import DocumentError, ParsedDocument
from llm_feedback_loop.storage.tables import Comparison, Rating, check_column_names

BATCH = 1000
TABLE_OF_KIND = {"rating": Rating, "comparison": Comparison}


@dataclass
class ImportReport:
    imported: dict[str, int] = field(default_factory=lambda: {"rating": 0, "comparison": 0})
    errors: list[DocumentError] = field(default_factory=list)

    @property
    def total_imported(self) -> int:
        return sum(self.imported.values())


def check_documents(parsed: Iterable[ParsedDocument | DocumentError]) -> ImportReport:
    """A dry run: what would be imported and which documents are bad."""
    report = ImportReport()
    for item in parsed:
        if isinstance(item, DocumentError):
            report.errors.append(item)
        else:
            report.imported[item.kind] += 1
    return report


async def load_documents(
    engine: AsyncEngine,
    parsed: Iterable[ParsedDocument | DocumentError],
    on_document: Callable[[], None] | None = None,
) -> ImportReport:
    """Insert every good document in one transaction (bad ones are counted in the report, not written)."""
    report = ImportReport()
    pending: dict[str, list[dict]] = {"rating": [], "comparison": []}
    async with engine.begin() as connection:

        async def flush(kind: str) -> None:
            if pending[kind]:
                await connection.execute(insert(TABLE_OF_KIND[kind]), pending[kind])
                pending[kind] = []

        for item in parsed:
            if isinstance(item, DocumentError):
                report.errors.append(item)
                continue
            check_column_names(TABLE_OF_KIND[item.kind], item.values)
            pending[item.kind].append(item.values)
            report.imported[item.kind] += 1
            if len(pending[item.kind]) >= BATCH:
                await flush(item.kind)
            if on_document is not None:
                on_document()
        for kind in pending:
            await flush(kind)
    return report
