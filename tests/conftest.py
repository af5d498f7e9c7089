"""Shared fixtures: a migrated database per test (a SQLite file, and again on PostgreSQL), a fake clock, a recording chat and a core."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import bank, db
from bot.core import PrepBot
from bot.fake_chat import FakeChat

FIXTURE_BANK = Path(__file__).parent / "fixtures" / "bank"
POSTGRES_URL = os.environ.get("PREPBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


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


class Databases:
    """Hands out fresh, empty databases on one backend and drops them after the test."""

    def __init__(self, backend: str, tmp_path: Path) -> None:
        self.backend = backend
        self._tmp_path = tmp_path
        self._created: list[str] = []

    async def new(self) -> str:
        """The URL of a new empty database."""
        name = f"prepbot_test_{uuid.uuid4().hex[:16]}"
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self._tmp_path / f'{name}.db'}"
        admin = await asyncpg.connect(postgres_dsn(POSTGRES_URL))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        self._created.append(name)
        return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)

    async def drop_all(self) -> None:
        if not self._created:
            return
        admin = await asyncpg.connect(postgres_dsn(POSTGRES_URL))
        try:
            for name in self._created:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def postgres_dsn(url: str) -> str:
    """asyncpg's own DSN for a SQLAlchemy `postgresql+asyncpg://` URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_available() -> str | None:
    """None when the test PostgreSQL server answers, else why not; under CI its absence is a failure."""
    url = make_url(POSTGRES_URL)
    try:
        socket.create_connection((url.host or "127.0.0.1", url.port or 5432), timeout=2).close()
    except OSError as error:
        reason = f"PostgreSQL is not reachable at {url.host}:{url.port} ({error}); set PREPBOT_TEST_POSTGRES_URL"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}. Under CI=true the PostgreSQL tests must run.")
        return reason
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def databases(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Databases]:
    """Every database test runs on SQLite and on PostgreSQL."""
    if request.param == "postgresql":
        reason = request.getfixturevalue("postgres_available")
        if reason is not None:
            pytest.skip(reason)
    factory = Databases(request.param, tmp_path)
    yield factory
    await factory.drop_all()


@pytest.fixture
async def database_url(databases: Databases) -> str:
    return await databases.new()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """For the few tests of SQLite's own tuning."""
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
