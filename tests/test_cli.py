"""The `prepbot` command line: bank validation, listing, migrations and settings errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import FIXTURE_BANK


def test_bank_validate_accepts_a_good_track(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bank", "validate", str(FIXTURE_BANK / "mini.toml")]) == 0
    assert "is valid" in capsys.readouterr().out


def test_bank_validate_lists_every_problem_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "mini.toml"
    bad.write_text((FIXTURE_BANK / "mini.toml").read_text().replace("difficulty = 1", "difficulty = 0").replace('kind = "behavioral"', 'kind = "x"'))
    assert main(["bank", "validate", str(bad)]) == 1
    out = capsys.readouterr()
    assert out.out.count("difficulty: must be 1, 2 or 3, got 0") == 3
    assert "kind: must be one of behavioral, situational, technical, got 'x'" in out.out
    assert "problem(s) found" in out.err


def test_bank_list_names_tracks_and_counts(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("QUESTION_BANK_DIR", str(FIXTURE_BANK))
    assert main(["bank", "list"]) == 0
    out = capsys.readouterr().out
    assert "mini: Mini track for tests — 6 questions in 3 categories" in out
    assert "data: Data & Technical (2 questions, 3 probes)" in out


def test_db_upgrade_and_downgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    assert main(["db", "upgrade"]) == 0
    assert main(["db", "downgrade", "base"]) == 0
    assert "downgraded to base" in capsys.readouterr().out


def test_a_bad_setting_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PREP_LATENESS_MINUTES", "soon")
    assert main(["bank", "list"]) == 2
    assert "PREP_LATENESS_MINUTES must be a number, got 'soon'" in capsys.readouterr().err


def test_asking_for_a_platform_without_credentials_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert main(["run", "--platform", "discord"]) == 2
    assert "--platform discord needs DISCORD_TOKEN" in capsys.readouterr().err
