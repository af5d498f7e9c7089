"""The bank loader reports every problem with file, item and field; sync adds, updates and retires."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import bank, models
from tests.conftest import FIXTURE_BANK, FakeClock

MINI = FIXTURE_BANK / "mini.toml"


def write(tmp_path: Path, text: str, name: str = "mini.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_fixture_track_loads() -> None:
    track = bank.load_track(MINI)
    assert track.id == "mini"
    assert len(track.questions) == 6
    assert track.category("data") is not None and len(track.category("data").probes) == 3  # type: ignore[union-attr]


def test_every_problem_is_reported_at_once_with_file_question_and_field(tmp_path: Path) -> None:
    text = MINI.read_text()
    text = text.replace('difficulty = 1', 'difficulty = 7', 1)
    text = text.replace('category = "data"', 'category = "nonsense"', 1)
    text = text.replace('pillars = ["ops"]', 'pillars = ["ops", "moon"]', 1)
    text = text.replace('kind = "situational"', 'kind = "riddle"', 1)
    text = text.replace('pitfalls = ["pitfall a"]', 'pitfalls = []', 1)
    text = text.replace('id = "behavior-q2"', 'id = "Behavior Q2"', 1)
    path = write(tmp_path, text)
    with pytest.raises(bank.BankError) as raised:
        bank.load_track(path)
    found = {(p.where, p.field) for p in raised.value.problems}
    assert ("question strategy-q1", "difficulty") in found
    assert ("question data-q1", "category") in found
    assert ("question strategy-q1", "pillars") in found
    assert ("question strategy-q1", "kind") in found
    assert ("question strategy-q1", "pitfalls") in found
    assert ("question Behavior Q2", "id") in found
    assert all(p.file == str(path) for p in raised.value.problems)
    assert "mini.toml: question strategy-q1: difficulty: must be 1, 2 or 3, got 7" in str(raised.value)


def test_missing_follow_ups_and_rubric_are_named(tmp_path: Path) -> None:
    text = MINI.read_text().replace(
        'follow_ups = ["data-q2 follow-up 1", "data-q2 follow-up 2", "data-q2 follow-up 3"]',
        'follow_ups = ["only one"]')
    path = write(tmp_path, text)
    problems = bank.validate([path])
    assert [str(p).split(": ", 1)[1] for p in problems] == ["question data-q2: follow_ups: has 1 item(s); needs at least 3"]


def test_a_typo_in_a_field_name_is_an_unknown_field(tmp_path: Path) -> None:
    path = write(tmp_path, MINI.read_text().replace("follow_ups =", "folow_ups =", 1))
    messages = [str(p) for p in bank.validate([path])]
    assert any("folow_ups: unknown field" in m for m in messages)
    assert any("follow_ups: missing" in m for m in messages)


def test_broken_toml_is_reported_with_the_parser_position(tmp_path: Path) -> None:
    path = write(tmp_path, "[track\nid = 1")
    [problem] = bank.validate([path])
    assert problem.field == "file" and "is not valid TOML" in problem.message and "line 1" in problem.message


def test_a_track_id_must_match_its_file_name(tmp_path: Path) -> None:
    path = write(tmp_path, MINI.read_text(), name="other.toml")
    assert [p.message for p in bank.validate([path])] == ["'mini' must match the file name 'other'"]


def test_duplicate_question_ids_and_texts_are_caught(tmp_path: Path) -> None:
    text = MINI.read_text().replace('id = "data-q1"', 'id = "strategy-q1"').replace(
        "Question 2 about data: walk me through it.", "Question 1 about strategy: walk me through it!")
    messages = [str(p) for p in bank.validate([write(tmp_path, text)])]
    assert any("question strategy-q1: id: is used by an earlier question" in m for m in messages)
    assert any("question data-q2: text: repeats question strategy-q1" in m for m in messages)


def test_an_empty_folder_is_a_problem_not_an_empty_bank(tmp_path: Path) -> None:
    with pytest.raises(bank.BankError, match="no \\*.toml track files found"):
        bank.load_bank(tmp_path)


def test_the_bundled_bank_validates() -> None:
    import question_bank

    assert bank.validate([Path(question_bank.__file__).parent]) == []


async def count_active(sessions: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    async with sessions() as session:
        active = await session.scalar(select(func.count()).where(models.Question.retired_at.is_(None)))
        retired = await session.scalar(select(func.count()).where(models.Question.retired_at.is_not(None)))
        return active or 0, retired or 0


async def test_sync_updates_changed_questions_and_retires_removed_ones_without_deleting(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock, tmp_path: Path,
) -> None:
    assert await count_active(sessions) == (6, 0)
    text = MINI.read_text().replace("Question 1 about data", "Question 1 about data, revised")
    cut = text.index('[[questions]]\nid = "behavior-q2"')
    write(tmp_path, text[:cut])
    async with sessions() as session, session.begin():
        report = await bank.sync(session, bank.load_bank(tmp_path), clock.advance(days=1))
    assert (report.added, report.updated, report.retired, report.unchanged) == (0, 1, 1, 4)
    assert await count_active(sessions) == (5, 1)
    async with sessions() as session:
        revised = await session.scalar(select(models.Question).where(models.Question.slug == "data-q1"))
        assert revised is not None and "revised" in revised.text

    shutil.copy(MINI, tmp_path / "mini.toml")
    async with sessions() as session, session.begin():
        report = await bank.sync(session, bank.load_bank(tmp_path), clock.advance(days=1))
    assert (report.added, report.updated, report.retired) == (0, 2, 0)
    assert await count_active(sessions) == (6, 0)


async def test_sync_twice_changes_nothing(sessions: async_sessionmaker[AsyncSession], clock: FakeClock) -> None:
    async with sessions() as session, session.begin():
        report = await bank.sync(session, bank.load_bank(FIXTURE_BANK), clock())
    assert (report.added, report.updated, report.retired, report.unchanged) == (0, 0, 0, 6)
