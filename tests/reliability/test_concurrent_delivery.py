"""Concurrent delivery: a session's events handled all at once, each by two cores on their own engines, end as one clean delivery.

Two processes behind a load balancer (or two handlers in one process) can handle a post and its
deletion, or two reactions by one rater, at the same moment. Each is handled in its own
transaction; on PostgreSQL neither sees the other's uncommitted rows unless the core serializes
them. Scheduling is not deterministic, so each script runs several rounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from bot import bank, db, ids
from bot.core import PrepBot
from tests.conftest import FIXTURE_BANK, Databases, FakeClock
from tests.reliability.test_redelivery import READDED, SCRIPTED, SHORTENED, Practice, Step, materialise, outcome

RATER_CHURN = [
    Step("answer", "alice", "a1", "prompt-1", "alice's answer"),
    Step("react", "bob", "a1", emoji="four"),
    Step("react", "bob", "a1", emoji="five"),
    Step("unreact", "bob", "a1", emoji="five"),
    Step("unreact", "bob", "a1", emoji="four"),
    Step("react", "bob", "a1", emoji="two"),
    Step("answer", "carol", "a2", "prompt-1", "carol's answer"),
    Step("edit", "carol", "a2", "prompt-1", "carol's answer, edited", with_author=False),
    Step("delete", message="a2", place="prompt-1"),
]
SCRIPTS = {"scripted": SCRIPTED, "re-added": READDED, "shortened": SHORTENED, "rater churn": RATER_CHURN}
ROUNDS = 3


@pytest.fixture
async def two_processes(databases: Databases, clock: FakeClock) -> AsyncIterator[tuple[Practice, Practice]]:
    url = await databases.new()
    engines = [db.create_engine(url, pool_size=5, max_overflow=5) for _ in range(2)]
    try:
        await db.upgrade(engines[0])
        async with db.session_factory(engines[0])() as session, session.begin():
            await bank.sync(session, bank.load_bank(FIXTURE_BANK), clock())
        yield Practice(db.session_factory(engines[0]), clock), Practice(db.session_factory(engines[1]), clock)
    finally:
        for engine in engines:
            await engine.dispose()


@pytest.mark.parametrize("script", sorted(SCRIPTS))
async def test_events_handled_concurrently_by_two_processes_end_where_one_clean_delivery_ends(
    two_processes: tuple[Practice, Practice], script: str,
) -> None:
    first, second = two_processes
    steps = SCRIPTS[script]
    core, prompts = await first.start()
    for event in materialise(steps, prompts):
        await core.handle(event)
    expected = await outcome(first.sessions)

    for _ in range(ROUNDS):
        core, prompts = await first.start()
        ids.forget(second.sessions.kw["info"])  # the first reset deleted rows under the second process's cache
        other = PrepBot(second.sessions, first.chat, default_track="mini", clock=first.clock)
        events = materialise(steps, prompts)
        results = await asyncio.gather(*(handler.handle(event) for event in events for handler in (core, other)), return_exceptions=True)
        assert [f"{r}" for r in results if isinstance(r, BaseException)] == []
        assert await outcome(first.sessions) == expected
