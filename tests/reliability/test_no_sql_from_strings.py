"""No SQL is built from strings: no `text()`, `execute()` or `exec_driver_sql()` of an f-string, `%`-format, `+` or `.format()`.

Queries go through SQLAlchemy's expression language, which binds every value as a parameter. The
few fixed statements SQLite's tuning needs take no input and are listed here by their exact source.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent
SCANNED = ("bot", "adapters", "migrations")
SQL_METHODS = frozenset({"execute", "exec_driver_sql", "executescript", "executemany"})
# (file, statement source): fixed statements with no input in them.
ALLOWED = {
    ("bot/db.py", 'f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}"'),  # a module constant
}


def _text_names(tree: ast.Module) -> set[str]:
    """Local names bound to SQLAlchemy's `text` (e.g. `from sqlalchemy import text as sql`)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sqlalchemy":
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "text"}
    return names


def _is_built_string(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"


def _is_sql_call(node: ast.Call, text_names: set[str]) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in text_names
    if isinstance(func, ast.Attribute):
        if func.attr in SQL_METHODS:
            return True
        return func.attr == "text" and isinstance(func.value, ast.Name) and func.value.id in ("sa", "sqlalchemy")
    return False


def built_sql(path: Path, source: str) -> list[tuple[int, str]]:
    """(line, statement source) of every SQL call in `source` whose statement is built from strings."""
    tree = ast.parse(source)
    text_names = _text_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_sql_call(node, text_names):
            statement = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg in ("statement", "sql", "text")), None)
            if statement is not None and _is_built_string(statement):
                found.append((node.lineno, ast.get_source_segment(source, statement) or "?"))
    return found


def test_no_query_in_bot_adapters_or_migrations_is_built_from_strings() -> None:
    offences = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for line, statement in built_sql(path, path.read_text(encoding="utf-8")):
                if (relative, statement) not in ALLOWED:
                    offences.append(f"{relative}:{line}: {statement}")
    assert offences == [], "SQL built from strings (bind parameters instead):\n" + "\n".join(offences)


def test_the_allowed_statements_still_exist_so_the_list_does_not_go_stale() -> None:
    for relative, statement in ALLOWED:
        path = ROOT / relative
        assert statement in {s for _, s in built_sql(path, path.read_text(encoding="utf-8"))}, f"{relative} no longer has {statement}"


def test_the_scan_catches_every_way_of_building_sql_and_spares_bound_parameters() -> None:
    source = '''
from sqlalchemy import text, select
from sqlalchemy import text as sql
import sqlalchemy as sa

async def bad(session, connection, cursor, name, table):
    await session.execute(text(f"SELECT * FROM members WHERE name = '{name}'"))
    await session.execute(sql("SELECT * FROM members WHERE name = '%s'" % name))
    await connection.exec_driver_sql("DELETE FROM " + table)
    cursor.execute("SELECT {}".format(name))
    await session.execute(sa.text("SELECT " + name))
    await session.execute(statement=f"SELECT {name}")

async def good(session, cursor, name):
    await session.execute(text("SELECT * FROM members WHERE name = :name"), {"name": name})
    await session.execute(select(1))
    cursor.execute("BEGIN IMMEDIATE")
    cursor.execute(f"PRAGMA journal_mode = WAL")
    message = Message.text(f"Hello {name}")
'''
    assert sorted(line for line, _ in built_sql(Path("sample.py"), source)) == [7, 8, 9, 10, 11, 12]
