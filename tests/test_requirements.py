"""The one requirements.txt reader: every line pip accepts gets the right treatment and a true reason."""

from __future__ import annotations

import textwrap

import pytest

from scripts.model.requirements import parse_requirements
from scripts.model.requirement_lines import read_requirement_lines
from scripts.setup import decide_dependencies, scaffold_dependencies

HASH = "sha256:" + "a" * 64


def read(text: str) -> list[tuple[str, str | None, str | None]]:
    """(kind, requirement as pyproject.toml would list it, reason) per logical line."""
    return [(line.kind, str(line.requirement) if line.requirement else None, line.reason)
            for line in read_requirement_lines(textwrap.dedent(text))]


def test_a_hashed_pin_is_kept_without_its_hashes():
    [(kind, requirement, _)] = read(f"requests==2.32.3 --hash={HASH} --hash {HASH}\n")
    assert (kind, requirement) == ("package", "requests==2.32.3")
    assert "uv.lock" in read_requirement_lines(f"requests==2.32.3 --hash={HASH}")[0].note


def test_a_hashed_pin_continued_over_lines_is_one_requirement():
    lines = read_requirement_lines(f"requests==2.32.3 \\\n    --hash={HASH} \\\n    --hash={HASH}\nidna==3.7\n")
    assert [(line.number, str(line.requirement)) for line in lines] == [(1, "requests==2.32.3"), (4, "idna==3.7")]


@pytest.mark.parametrize("line, expected", [
    ("git+https://github.com/org/tool.git@v1.2#egg=my_tool", "my_tool @ git+https://github.com/org/tool.git@v1.2"),
    ("git+https://github.com/org/mono.git#egg=sub&subdirectory=pkgs/sub",
     "sub @ git+https://github.com/org/mono.git#subdirectory=pkgs/sub"),
    ("https://example.com/wheels/my_pkg-1.0-py3-none-any.whl",
     "my-pkg @ https://example.com/wheels/my_pkg-1.0-py3-none-any.whl"),
    ("https://example.com/my-pkg-2.0.tar.gz", "my-pkg @ https://example.com/my-pkg-2.0.tar.gz"),
    ("-e git+https://github.com/org/tool.git#egg=tool", "tool @ git+https://github.com/org/tool.git"),
])
def test_a_bare_url_becomes_a_direct_reference_when_its_name_is_in_the_link(line, expected):
    [(kind, requirement, _)] = read(line)
    assert (kind, requirement) == ("package", expected)


def test_a_bare_url_without_a_name_asks_for_the_name():
    [(kind, requirement, reason)] = read("git+https://github.com/org/tool.git@main\n")
    assert (kind, requirement) == ("url", None)
    assert "NAME @ URL" in reason and "not a requirement pip or uv can read" not in reason


@pytest.mark.parametrize("line, kind, words", [
    ("-r other.txt", "option", "other.txt"),
    ("--requirement=base.txt", "option", "base.txt"),
    ("-c constraints.txt", "option", "constraints file constraints.txt"),
    ("--index-url https://pypi.example.com/simple", "option", "tool.uv.index"),
    ("--extra-index-url https://pypi.example.com/simple", "option", "tool.uv.index"),
    ("--pre", "option", "pip install option"),
    ("-e ./my_pkg", "path", "editable install of a local folder"),
    ("./wheels/local-1.0-py3-none-any.whl", "path", "machine the model was logged on"),
    ("not a requirement !!", "invalid", "not a requirement pip or uv can read"),
])
def test_lines_that_are_not_packages_say_what_they_are(line, kind, words):
    [(found, requirement, reason)] = read(line)
    assert (found, requirement) == (kind, None)
    assert words in reason


def test_comments_and_blank_lines_are_not_lines():
    assert read("# header\n\n  # indented\nmlflow==3.17.2  # pinned\nurl#fragment-is-not-a-comment\n") == [
        ("package", "mlflow==3.17.2", None), ("invalid", None, read("url#fragment-is-not-a-comment")[0][2])]


def test_setup_keeps_a_hashed_pin_and_a_named_git_line():
    decisions = {decision.requirement: (decision.action, decision.result) for decision in decide_dependencies(
        [f"requests==2.32.3 --hash={HASH}", "git+https://github.com/org/tool.git#egg=tool",
         "git+https://github.com/org/other.git"], scaffold_dependencies())}
    assert decisions[f"requests==2.32.3 --hash={HASH}"] == ("kept", "requests==2.32.3")
    assert decisions["git+https://github.com/org/tool.git#egg=tool"] == (
        "kept", "tool @ git+https://github.com/org/tool.git")
    assert decisions["git+https://github.com/org/other.git"] == ("unsupported", None)


def test_analyze_and_setup_read_the_same_packages():
    text = f"requests==2.32.3 --hash={HASH}\n-r more.txt\ngit+https://github.com/org/tool.git#egg=tool\n"
    analyzed = [entry["name"] for entry in parse_requirements(text) if entry["kind"] == "package"]
    decided = [decision.package for decision in decide_dependencies(text.splitlines(), scaffold_dependencies())
               if decision.package]
    assert analyzed == decided == ["requests", "tool"]
