"""The core stays platform-neutral: nothing in bot/ imports a platform library or an adapter."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).parent.parent / "bot"
FORBIDDEN = ("slack_bolt", "slack_sdk", "discord", "adapters", "aiohttp")
# The composition root builds the adapters, importing each lazily inside a function.
COMPOSITION_ROOT = {"app.py"}


def imports_of(path: Path, top_level_only: bool) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_bot_never_imports_platform_code() -> None:
    offences = [
        f"bot/{path.name}:{line} imports {module}"
        for path in sorted(BOT.rglob("*.py"))
        for line, module in imports_of(path, top_level_only=path.name in COMPOSITION_ROOT)
        if module.split(".")[0] in FORBIDDEN
    ]
    assert offences == []


def test_the_check_would_catch_an_offending_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom slack_bolt.async_app import AsyncApp\n")
    assert [module for _, module in imports_of(sample, top_level_only=False)] == ["os", "slack_bolt.async_app"]


def test_every_module_has_a_docstring() -> None:
    missing = [
        str(path.relative_to(BOT.parent))
        for folder in (BOT, BOT.parent / "adapters")
        for path in sorted(folder.rglob("*.py"))
        if path.stat().st_size and ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None
    ]
    assert missing == []
