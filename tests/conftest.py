"""Shared fixtures: a migrated SQLite file per test, a fake clock, a recording chat and a core."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import bank, db
from bot.core import PrepBot
from bot.fake_chat import FakeChat

FIXTURE_BANK = Path(__file__).parent / "fixtures" / "bank"


class FakeClock:
    """A clock the test moves by hand; no test sleeps in real time."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when


@pytest.fixture(autouse=True)
def no_network_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that tries to reach past this machine: fakes listen on 127.0.0.1 only."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0] if isinstance(address, tuple) else address
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise RuntimeError(f"test tried to reach {address!r}; only loopback is allowed")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))  # a Monday


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'prepbot.db'}"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_url)
    await db.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine, clock: FakeClock) -> async_sessionmaker[AsyncSession]:
    factory = db.session_factory(engine)
    async with factory() as session, session.begin():
        await bank.sync(session, bank.load_bank(FIXTURE_BANK), clock())
    return factory


@pytest.fixture
def chat() -> FakeChat:
    return FakeChat()


@pytest.fixture
def core(sessions: async_sessionmaker[AsyncSession], chat: FakeChat, clock: FakeClock) -> PrepBot:
    return PrepBot(sessions, chat, organizers=frozenset({"U-ORGANIZER"}), default_track="mini", clock=clock)
