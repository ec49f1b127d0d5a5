"""The front page stays short and true: its test command is CI's, its links resolve, its model
list is the generic path's."""
import os
import re

from test_generic import SERVED

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def test_readme_is_a_front_page():
    assert len(_read("README.md").splitlines()) <= 250


def test_ci_runs_exactly_the_readmes_test_command():
    readme = _read("README.md")
    commands = [line for line in readme.splitlines() if line.startswith("python3 -m venv") and "pytest" in line]
    assert len(commands) == 1
    assert commands[0] in _read(".ci", "run").splitlines()


def test_readmes_relative_links_resolve():
    readme = _read("README.md")
    links = [target for target in re.findall(r"\]\(([^)#]+)[^)]*\)", readme) if "://" not in target]
    assert links
    missing = [link for link in links if not os.path.exists(os.path.join(ROOT, link))]
    assert missing == []


def test_readme_lists_the_models_the_generic_path_serves():
    row = next(line for line in _read("README.md").splitlines() if line.startswith("| generic path"))
    assert row.split("|")[2].strip().split(", ") == SERVED
