"""Helpers for the reliability tests: a database reset between examples and snapshots by natural keys."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import ids, models

# The bank's own tables survive a reset: every example sees the same questions with the same ids.
KEEP = {"tracks", "questions"}


async def reset(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Empty every table but the question bank's, with ids starting again from 1 (and forget cached ids)."""
    ids.forget(sessions.kw["info"])
    tables = [t for t in reversed(models.Base.metadata.sorted_tables) if t.name not in KEEP]
    async with sessions() as session, session.begin():
        if session.bind.dialect.name == "postgresql":
            # Table names come from the models, never from input.
            await session.execute(text(f"TRUNCATE TABLE {', '.join(t.name for t in tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await session.execute(delete(table))


async def all_rows(sessions: async_sessionmaker[AsyncSession], *, skip: frozenset[str] = frozenset()) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but `skip`), sorted, for before/after comparisons."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    async with sessions() as session:
        for table in models.Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            found = (await session.execute(select(table))).all()
            rows[table.name] = sorted((tuple(row) for row in found), key=repr)
    return rows


def examples(default: int) -> int:
    """Hypothesis' example count, scaled by PREPBOT_FUZZ_SCALE (e.g. 10 for a long hunt before a release)."""
    return max(1, round(default * float(os.environ.get("PREPBOT_FUZZ_SCALE", "1"))))
