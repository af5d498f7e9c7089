"""Prepared statements bind values exactly as SQLAlchemy's own execution would, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, bindparam, insert, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bot import db, models
from bot.models import UTCDateTime
from bot.prepared import Prepared, PreparedRows
from bot.store import dialect_insert

INBOX = models.Base.metadata.tables["inbox_events"]
ON_THE_SECOND = datetime(2026, 3, 2, 9, 0, 0, tzinfo=UTC)  # no microseconds: where formats can differ

_ADD_EVENT = Prepared(lambda dialect: dialect_insert(dialect, models.InboxEvent).values(
    event_id=bindparam("event_id"), kind=bindparam("kind"), received_at=bindparam("at", type_=UTCDateTime()),
).on_conflict_do_nothing().returning(INBOX.c.event_id))
_EVENTS_OF_KIND = Prepared(lambda dialect: select(INBOX.c.event_id).where(INBOX.c.kind == "prepared").order_by(INBOX.c.event_id).limit(2))


async def in_sync(sessions: async_sessionmaker[AsyncSession], work: object) -> object:
    return await db.transactions(sessions).run(work)  # type: ignore[arg-type]


async def test_a_datetime_is_stored_as_sqlalchemy_stores_it(sessions: async_sessionmaker[AsyncSession]) -> None:
    def write(session: Session) -> list[object]:
        session.execute(insert(INBOX).values(event_id="by-sqlalchemy", kind="prepared", received_at=ON_THE_SECOND))
        return list(_ADD_EVENT.rows(session, {"event_id": "prepared", "kind": "prepared", "at": ON_THE_SECOND}))

    assert await in_sync(sessions, write) == [("prepared",)]
    async with sessions() as session:
        # The raw column, not a parsed value: SQLite compares these as text, so the two must match.
        raw = (await session.execute(text("SELECT event_id, CAST(received_at AS TEXT) FROM inbox_events WHERE kind = 'prepared'"))).all()
        parsed = set((await session.scalars(select(models.InboxEvent.received_at).where(models.InboxEvent.kind == "prepared"))).all())
    assert len({stored for _, stored in raw}) == 1, raw
    assert parsed == {ON_THE_SECOND}


async def test_values_the_statement_carries_itself_are_bound(sessions: async_sessionmaker[AsyncSession]) -> None:
    def write(session: Session) -> list[object]:
        for n in range(3):
            _ADD_EVENT.run(session, {"event_id": f"e{n}", "kind": "prepared", "at": ON_THE_SECOND})
        _ADD_EVENT.run(session, {"event_id": "other", "kind": "other", "at": ON_THE_SECOND})
        return list(_EVENTS_OF_KIND.rows(session, {}))  # a literal in WHERE and a LIMIT

    assert await in_sync(sessions, write) == [("e0",), ("e1",)]


async def test_a_conflicting_insert_returns_no_row(sessions: async_sessionmaker[AsyncSession]) -> None:
    def write(session: Session) -> tuple[object, object]:
        first = _ADD_EVENT.rows(session, {"event_id": "once", "kind": "prepared", "at": ON_THE_SECOND})
        again = _ADD_EVENT.rows(session, {"event_id": "once", "kind": "prepared", "at": ON_THE_SECOND})
        return list(first), list(again)

    assert await in_sync(sessions, write) == ([("once",)], [])


async def test_python_side_defaults_are_filled_in(sessions: async_sessionmaker[AsyncSession]) -> None:
    # `Member.is_bot` has a Python-side default; leaving it out must not write NULL.
    members = models.Base.metadata.tables["members"]
    workspaces = models.Base.metadata.tables["workspaces"]
    add = Prepared(lambda dialect: dialect_insert(dialect, models.Member).values(
        workspace_id=bindparam("workspace"), external_id="U-default", display_name=None,
        created_at=bindparam("at", type_=UTCDateTime())))

    def write(session: Session) -> object:
        workspace = session.execute(insert(workspaces).values(platform="test", external_id="T-prepared", created_at=ON_THE_SECOND)
                                    .returning(workspaces.c.id)).scalar_one()
        add.run(session, {"workspace": workspace, "at": ON_THE_SECOND})
        return session.execute(select(members.c.is_bot).where(members.c.external_id == "U-default")).scalar_one()

    assert await in_sync(sessions, write) is False


def test_a_default_computed_per_row_is_refused_when_compiled() -> None:
    stamped = Table("stamped", MetaData(), Column("id", Integer, primary_key=True),
                    Column("at", DateTime, default=lambda: datetime.now(UTC)))
    statement = Prepared(lambda dialect: insert(stamped).values(id=bindparam("id")))
    with pytest.raises(TypeError, match="default computed per row"):
        statement._compile(sqlite.dialect())


_ADD_EVENTS = PreparedRows(lambda dialect, rows: dialect_insert(dialect, models.InboxEvent).values([
    {"event_id": bindparam(f"event_id_{i}"), "kind": bindparam(f"kind_{i}"),
     "received_at": bindparam(f"at_{i}", type_=UTCDateTime())} for i in range(rows)
]).on_conflict_do_nothing().returning(INBOX.c.event_id))


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8, 9, 256])
async def test_many_rows_in_one_statement_each_land_once_whatever_the_padding(
    sessions: async_sessionmaker[AsyncSession], count: int,
) -> None:
    def write(session: Session) -> tuple[list[str], list[str]]:
        rows = [{"event_id": f"many-{n}", "kind": "prepared", "at": ON_THE_SECOND} for n in range(count)]
        first = sorted(event_id for (event_id,) in _ADD_EVENTS.rows(session, rows))
        again = [event_id for (event_id,) in _ADD_EVENTS.rows(session, [*rows[:1], {**rows[0], "event_id": "late"}])]
        return first, again

    first, again = await in_sync(sessions, write)  # type: ignore[misc]
    assert first == sorted(f"many-{n}" for n in range(count))
    assert again == ["late"]  # the row already there returns nothing, and padding added nothing
    async with sessions() as session:
        stored = (await session.scalars(select(models.InboxEvent.event_id).where(models.InboxEvent.kind == "prepared"))).all()
    assert sorted(stored) == sorted([*first, "late"])


async def test_one_id_twice_in_a_statement_is_written_and_returned_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    def write(session: Session) -> list[object]:
        row = {"event_id": "twice", "kind": "prepared", "at": ON_THE_SECOND}
        return list(_ADD_EVENTS.rows(session, [row, {**row, "event_id": "other"}, row]))

    assert sorted(await in_sync(sessions, write)) == [("other",), ("twice",)]  # type: ignore[type-var]


def test_a_parameter_the_statement_uses_twice_is_processed_once() -> None:
    calls: list[object] = []

    class Counted(UTCDateTime):
        cache_ok = True

        def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
            calls.append(value)
            return super().process_bind_param(value, dialect)

    at = bindparam("at", type_=Counted())
    statement = Prepared(lambda dialect: select(INBOX.c.event_id).where(INBOX.c.received_at == at, INBOX.c.received_at >= at))
    compiled = statement._compile(sqlite.dialect())
    assert compiled.bind({"at": ON_THE_SECOND}) == ["2026-03-02 09:00:00.000000"] * 2
    assert calls == [ON_THE_SECOND]


@pytest.mark.parametrize("moment", [
    ON_THE_SECOND, datetime(2026, 3, 2, 9, 0, 0, 7, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC),
    datetime(2026, 3, 2, 10, 30, tzinfo=timezone(timedelta(hours=1, minutes=30))),
])
def test_sqlite_datetimes_are_the_text_sqlalchemys_own_processor_writes(moment: datetime) -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    theirs = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None and theirs is not None
    assert ours(moment) == theirs(moment.astimezone(UTC).replace(tzinfo=None))
    assert ours(None) is None
    with pytest.raises(ValueError, match="naive"):
        ours(datetime(2026, 3, 2, 9, 0))


async def test_each_transaction_of_a_session_runs_its_statements_on_its_own_connection(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    def on_the_transactions_connection(session: Session) -> bool:
        used, _ = _ADD_EVENT._prepare(session)
        return used is session.connection().connection

    engine = sessions.kw["bind"]
    async with sessions() as session:
        async with session.begin():
            assert await session.run_sync(on_the_transactions_connection)
        async with engine.connect():  # holds the connection the first transaction gave back
            async with session.begin():
                assert await session.run_sync(on_the_transactions_connection)
