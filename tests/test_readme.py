"""The README's two commands are the ones CI and a new user run, and what they name exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def shell_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)]


def test_the_readme_opens_with_an_install_and_run_command_and_a_test_command() -> None:
    run, test = shell_blocks(README)[:2]
    assert "pip install -e ." in run and run.endswith("prepbot run")
    assert "pip install -e '.[dev]'" in test and test.endswith("pytest")


def test_ci_runs_the_readmes_test_command_verbatim() -> None:
    test_command = shell_blocks(README)[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def test_the_readme_documents_every_configuration_variable_the_settings_read() -> None:
    settings = (ROOT / "bot" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r'(?:text|number|flag)\("([A-Z_]+)"', settings)) | set(re.findall(r'env\.get\("([A-Z_]+)"', settings))
    assert read, "the pattern no longer finds the settings"
    assert sorted(name for name in read if f"`{name}`" not in README) == []



def test_the_files_the_readme_links_exist() -> None:
    links = re.findall(r"\]\(([^)#]+)\)", README)
    assert links
    assert [link for link in links if not (ROOT / link).exists()] == []
