"""Hot-path statements: built with SQLAlchemy Core, compiled once per dialect and driver, run on the DBAPI cursor.

SQLAlchemy's `Connection.execute` costs about 60–80 µs a statement before the driver sees it
(cache-key generation, parameter construction, result set-up); the driver itself takes about 10.
The answer and reaction path runs a handful of fixed statements per event, thousands of times a
second, so those skip that layer: each is compiled the first time a dialect needs it, its bind
parameters are processed by their column types' own processors (so `UTCDateTime` still applies),
and it runs on the connection of the session's transaction, after the session has flushed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any] | None
_HELD = "prepbot.prepared.connection"  # the DBAPI connection and dialect of a session's transaction
Value = TypeVar("Value")


def per_transaction(session: Session, key: str, make: Callable[[], Value]) -> Value:
    """A value kept in `session.info[key]` while the session's current transaction lasts; `make()` makes it anew."""
    held = session.info.get(key)
    if held is not None and held[0] is not None and held[0] is session.get_transaction():
        return held[1]  # type: ignore[no-any-return]
    value = make()
    session.info[key] = (session.get_transaction(), value)
    return value


def _driver_side(connection: Connection) -> tuple[Any, Dialect]:
    return connection.connection, connection.dialect


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    processors: tuple[tuple[str, Processor], ...]  # each bind parameter once, with its type's processor
    order: tuple[str, ...] | None  # the parameters in the statement's order, if the driver takes them by position
    fixed: Mapping[str, Any]  # values the statement carries itself (e.g. a LIMIT)

    def bind(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters: each value processed by its column type, by name or in the statement's order.

        A parameter the statement uses twice (a positional driver repeats it) is processed once.
        """
        values = {**self.fixed, **params} if self.fixed else params
        named = {name: process(values[name]) if process else values[name] for name, process in self.processors}
        return named if self.order is None else [named[name] for name in self.order]


class Prepared:
    """One statement; `build(dialect_name)` makes it, e.g. with the dialect's `ON CONFLICT` insert."""

    def __init__(self, build: Callable[[str], ClauseElement]) -> None:
        self._build = build
        self._compiled: dict[tuple[str, str], _Compiled] = {}  # by dialect and driver: their placeholders differ

    def rows(self, session: Session, params: Mapping[str, Any]) -> Sequence[Any]:
        """Run the statement in the session's transaction and return its rows (values as the driver gives them)."""
        connection, compiled = self._prepare(session)
        cursor = connection.cursor()
        try:
            cursor.execute(compiled.sql, compiled.bind(params))
            return cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()

    def run(self, session: Session, params: Mapping[str, Any]) -> None:
        self.rows(session, params)

    def run_many(self, session: Session, params: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once for each set of parameters, in one call to the driver (its `executemany`)."""
        if not params:
            return
        connection, compiled = self._prepare(session)
        cursor = connection.cursor()
        try:
            cursor.executemany(compiled.sql, [compiled.bind(each) for each in params])
        finally:
            cursor.close()

    def _prepare(self, session: Session) -> tuple[Any, _Compiled]:
        session.flush()  # the statement must see the session's changes (a no-op when there are none)
        # `Session.connection()` costs more than binding the statement; a transaction keeps one
        # connection, so it is asked once per transaction.
        dbapi_connection, dialect = per_transaction(session, _HELD, lambda: _driver_side(session.connection()))
        compiled = self._compiled.get((dialect.name, dialect.driver)) or self._compile(dialect)
        return dbapi_connection, compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._build(dialect.name).compile(dialect=dialect)
        binds = compiled.binds  # type: ignore[attr-defined]
        processors = tuple((name, bind.type.dialect_impl(dialect).bind_processor(dialect)) for name, bind in binds.items())
        order = tuple(compiled.positiontup or ()) if dialect.positional else None  # type: ignore[attr-defined]
        fixed = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
        # Columns the statement leaves out but whose Python-side default SQLAlchemy would fill in.
        for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:  # type: ignore[attr-defined]
            default = column.default if column in compiled.insert_prefetch else column.onupdate  # type: ignore[attr-defined]
            if default is None or not default.is_scalar:
                raise TypeError(f"{column} needs a default computed per row, which a prepared statement cannot give")
            fixed[column.key] = default.arg
        self._compiled[dialect.name, dialect.driver] = made = _Compiled(compiled.string, processors, order, fixed)
        return made


class PreparedRows:
    """A statement of many rows at once, e.g. a multi-row INSERT: one round trip for a whole batch.

    `build(dialect_name, rows)` makes it for `rows` rows, row *i*'s parameters named `<name>_<i>`.
    Batches are padded to the next power of two by repeating their last row, so that a handful of
    statements serve every batch size; the statement must be one that a repeated row leaves
    unchanged (an `INSERT … ON CONFLICT DO NOTHING`).
    """

    def __init__(self, build: Callable[[str, int], ClauseElement]) -> None:
        self._build = build
        self._by_size: dict[int, Prepared] = {}

    def rows(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> Sequence[Any]:
        if not rows:
            return []
        size = 1 << (len(rows) - 1).bit_length()
        prepared = self._by_size.get(size)
        if prepared is None:
            prepared = self._by_size[size] = Prepared(lambda dialect: self._build(dialect, size))
        padded = [*rows, *[rows[-1]] * (size - len(rows))]
        return prepared.rows(session, {f"{name}_{i}": value for i, row in enumerate(padded) for name, value in row.items()})
