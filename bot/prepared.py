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
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: tuple[tuple[str, Processor], ...]  # each bind parameter in the statement's order, with its processor
    fixed: Mapping[str, Any]  # values the statement carries itself (e.g. a LIMIT)
    positional: bool


class Prepared:
    """One statement; `build(dialect_name)` makes it, e.g. with the dialect's `ON CONFLICT` insert."""

    def __init__(self, build: Callable[[str], ClauseElement]) -> None:
        self._build = build
        self._compiled: dict[tuple[str, str], _Compiled] = {}  # by dialect and driver: their placeholders differ

    def rows(self, session: Session, params: Mapping[str, Any]) -> Sequence[Any]:
        """Run the statement in the session's transaction and return its rows (values as the driver gives them)."""
        session.flush()  # the statement must see the session's changes (a no-op when there are none)
        connection = session.connection()
        dialect = connection.dialect
        compiled = self._compiled.get((dialect.name, dialect.driver)) or self._compile(dialect)
        values = {**compiled.fixed, **params} if compiled.fixed else params
        processed = [(name, process(values[name]) if process else values[name]) for name, process in compiled.order]
        cursor = connection.connection.cursor()
        try:
            cursor.execute(compiled.sql, [value for _, value in processed] if compiled.positional else dict(processed))
            return cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()

    def run(self, session: Session, params: Mapping[str, Any]) -> None:
        self.rows(session, params)

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self._build(dialect.name).compile(dialect=dialect)
        binds = compiled.binds  # type: ignore[attr-defined]
        names: list[str] = list(compiled.positiontup or ()) if dialect.positional else list(binds)  # type: ignore[attr-defined]
        order = tuple((name, binds[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in names)
        fixed = {name: bind.effective_value for name, bind in binds.items() if not bind.required}
        # Columns the statement leaves out but whose Python-side default SQLAlchemy would fill in.
        for column in [*compiled.insert_prefetch, *compiled.update_prefetch]:  # type: ignore[attr-defined]
            default = column.default if column in compiled.insert_prefetch else column.onupdate  # type: ignore[attr-defined]
            if default is None or not default.is_scalar:
                raise TypeError(f"{column} needs a default computed per row, which a prepared statement cannot give")
            fixed[column.key] = default.arg
        self._compiled[dialect.name, dialect.driver] = made = _Compiled(compiled.string, order, fixed, dialect.positional)
        return made
