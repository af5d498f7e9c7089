"""A malformed question bank at start-up is reported with file, question id and field, and leaves the database as it was."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import app, bank, db
from bot.cli import main
from bot.settings import Settings
from tests.conftest import FIXTURE_BANK
from tests.reliability.support import all_rows

MINI = (FIXTURE_BANK / "mini.toml").read_text(encoding="utf-8")


def broken_bank(folder: Path) -> Path:
    """A bank whose good parts would change the database: a new track, a retired question, a revised one."""
    folder.mkdir()
    cut = MINI.index('[[questions]]\nid = "behavior-q2"')
    mini = MINI[:cut].replace("Question 1 about data", "Question 1 about data, revised")
    mini = mini.replace('id = "strategy-q2"\ntext = "Question 2 about strategy: walk me through it."\ncategory = "strategy"\n'
                        'pillars = ["ops"]\ndifficulty = 2', 'id = "strategy-q2"\ntext = "Question 2 about strategy: walk me through it."\n'
                        'category = "strategy"\npillars = ["ops"]\ndifficulty = 9')
    (folder / "mini.toml").write_text(mini, encoding="utf-8")
    (folder / "extra.toml").write_text(MINI.replace('id = "mini"', 'id = "extra"', 1), encoding="utf-8")
    return folder


async def test_prepare_database_refuses_a_bad_bank_and_changes_nothing(engine: AsyncEngine, database_url: str, tmp_path: Path) -> None:
    good = Settings(database_url=database_url, question_bank_dir=FIXTURE_BANK)
    report = await app.prepare_database(good, engine)
    assert report.added == 6
    sessions = db.session_factory(engine)
    before = await all_rows(sessions)

    bad = Settings(database_url=database_url, question_bank_dir=broken_bank(tmp_path / "bank"))
    with pytest.raises(bank.BankError) as raised:
        await app.prepare_database(bad, engine)
    [problem] = raised.value.problems
    assert (Path(problem.file).name, problem.where, problem.field) == ("mini.toml", "question strategy-q2", "difficulty")
    assert "mini.toml: question strategy-q2: difficulty: must be 1, 2 or 3, got 9" in str(raised.value)
    assert await all_rows(sessions) == before


async def test_a_bank_that_cannot_be_parsed_names_the_file_and_the_line(engine: AsyncEngine, database_url: str, tmp_path: Path) -> None:
    await app.prepare_database(Settings(database_url=database_url, question_bank_dir=FIXTURE_BANK), engine)
    before = await all_rows(db.session_factory(engine))
    folder = tmp_path / "bank"
    folder.mkdir()
    (folder / "mini.toml").write_text(MINI.replace('difficulty = 1', 'difficulty = = 1', 1), encoding="utf-8")
    with pytest.raises(bank.BankError) as raised:
        await app.prepare_database(Settings(database_url=database_url, question_bank_dir=folder), engine)
    [problem] = raised.value.problems
    assert problem.file.endswith("mini.toml") and problem.field == "file" and "line" in problem.message
    assert await all_rows(db.session_factory(engine)) == before


def tables_in(path: Path) -> list[str]:
    with sqlite3.connect(path) as connection:
        return [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def test_prepbot_run_with_a_bad_bank_exits_with_the_problem_and_leaves_a_new_database_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "fresh.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{path}")
    monkeypatch.setenv("QUESTION_BANK_DIR", str(broken_bank(tmp_path / "bank")))
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--platform", "console"]) == 2
    err = capsys.readouterr().err
    assert "mini.toml: question strategy-q2: difficulty: must be 1, 2 or 3, got 9" in err
    assert "Nothing was changed." in err
    assert not path.exists() or tables_in(path) == []


def test_prepbot_run_with_a_bad_bank_leaves_an_existing_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'existing.db'}"

    async def prepared() -> dict[str, list[tuple[object, ...]]]:
        engine = db.create_engine(url)
        try:
            await app.prepare_database(Settings(database_url=url, question_bank_dir=FIXTURE_BANK), engine)
            return await all_rows(db.session_factory(engine))
        finally:
            await engine.dispose()

    async def rows() -> dict[str, list[tuple[object, ...]]]:
        engine = db.create_engine(url)
        try:
            return await all_rows(db.session_factory(engine))
        finally:
            await engine.dispose()

    before = asyncio.run(prepared())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("QUESTION_BANK_DIR", str(broken_bank(tmp_path / "bank")))
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_CLIENT_ID", "DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--platform", "console"]) == 2
    assert "question strategy-q2: difficulty" in capsys.readouterr().err
    assert asyncio.run(rows()) == before


async def test_a_track_id_longer_than_the_database_column_is_a_named_bank_problem_on_every_backend(
    engine: AsyncEngine, database_url: str, tmp_path: Path,
) -> None:
    """The validator, not the database, must refuse it: PostgreSQL would fail the sync with a raw error, SQLite would store it."""
    await app.prepare_database(Settings(database_url=database_url, question_bank_dir=FIXTURE_BANK), engine)
    before = await all_rows(db.session_factory(engine))
    folder = tmp_path / "bank"
    folder.mkdir()
    long_id = "a-track-whose-id-runs-on-well-past-the-sixty-four-characters-a-column-holds"
    (folder / f"{long_id}.toml").write_text(MINI.replace('id = "mini"', f'id = "{long_id}"', 1), encoding="utf-8")
    with pytest.raises(bank.BankError) as raised:
        await app.prepare_database(Settings(database_url=database_url, question_bank_dir=folder), engine)
    [problem] = raised.value.problems
    assert (problem.where, problem.field) == ("track", "id") and "at most 64" in problem.message
    assert await all_rows(db.session_factory(engine)) == before
