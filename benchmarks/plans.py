"""Query plans of what a piece of code runs: capture its statements, then EXPLAIN each on the same connection kind."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

Query = Callable[[AsyncSession], Awaitable[object]]
TALLY_TABLES = re.compile(r"\bFROM (answers|ratings)\b")


async def explain(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], query: Query, *, forbid_seqscan: bool) -> list[str]:
    """The plan of every statement `query` runs against answers or ratings.

    `forbid_seqscan` (PostgreSQL) shows whether an index can serve at all, for databases too small
    for the planner to prefer one.
    """
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if TALLY_TABLES.search(statement):
            captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with sessions() as session:
            await query(session)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    plans = []
    async with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            if forbid_seqscan:
                await connection.exec_driver_sql("SET enable_seqscan = off")
            prefix = "EXPLAIN "
        else:
            prefix = "EXPLAIN QUERY PLAN "
        for statement, parameters in captured:
            rows = (await connection.exec_driver_sql(prefix + statement, parameters)).all()
            plans.append("\n".join(" ".join(str(part) for part in row) for row in rows))
    return plans


def full_scans(plan: str) -> list[str]:
    """Full scans of the tally tables in a SQLite or PostgreSQL plan."""
    return re.findall(r"(?:\bSCAN (?:answers|ratings)\b(?! USING)|Seq Scan on (?:answers|ratings))", plan)


def indexes(plans: list[str]) -> list[str]:
    """The indexes the plans use, in order of first use."""
    return list(dict.fromkeys(name for plan in plans for name in re.findall(r"\b(?:ix|uq|pk)_\w+", plan)))
