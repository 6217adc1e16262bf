"""The skill lint: AGENTS.md and skills/*/SKILL.md must agree with the code they describe.

Rules (each a function below, each proven able to fail by a broken copy of the pack in `tmp_path`):
- frontmatter: YAML with `name` (lowercase-hyphen, at most 64 characters, equal to the folder) and
  `description` (at most 1024 characters); only the Agent Skills keys; the body ends with one `## Verify`
  section that runs `migrate check`; under 500 lines.
- commands: every `migrate ...` command shown (inline code, fenced blocks, AGENTS.md's table) names a real
  subcommand of `scripts.cli.build_parser()` and only its flags; fenced blocks and the table's cells must
  parse completely (required flags present, choices respected; `<PLACEHOLDERS>` stand for any value).
- links: every relative Markdown link resolves to a file; AGENTS.md's skill column links to real skills.
- finding codes: every code the source can emit (string constants like `SRC001` in scripts/ and checks/) is
  explained in exactly one skill, as the first cell of a table row; no skill explains a code that does not
  exist.
- the table: AGENTS.md has one table whose command cells cover every registered step.
- neutrality: no assistant-specific tool names (the main flow must work in any assistant).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from scripts.cli import build_parser
from scripts.steps import COMMANDS

REPO = Path(__file__).resolve().parent.parent
CODE_PATTERN = re.compile(r"^[A-Z]{2,4}[0-9]{3}$")
PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*>")
NAME_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
FRONTMATTER_KEYS = {"name", "description", "license", "allowed-tools", "metadata", "compatibility"}
MAX_NAME, MAX_DESCRIPTION, MAX_LINES = 64, 1024, 500
# Tool names of one assistant; the main flow names actions ("ask", "keep a task list") instead.
ASSISTANT_TOOL_NAMES = ("AskUserQuestion", "TaskCreate", "TodoWrite", "TaskUpdate", "Bash(", "run_terminal_cmd")
# A table cell marked like this needs a real Databricks workspace; the walkthrough skips it.
WORKSPACE_ONLY = "(workspace only)"


# ------------------------------------------------------------------------------------------------ reading the pack


@dataclass(frozen=True)
class Doc:
    path: Path
    text: str

    @property
    def is_skill(self) -> bool:
        return self.path.name == "SKILL.md"


def pack_docs(root: Path) -> list[Doc]:
    """AGENTS.md, every SKILL.md and every skill reference file under `root`."""
    paths = [root / "AGENTS.md", *sorted((root / "skills").glob("*/SKILL.md")),
             *sorted((root / "skills").glob("*/references/*.md"))]
    return [Doc(path, path.read_text(encoding="utf-8")) for path in paths if path.is_file()]


def split_frontmatter(text: str) -> tuple[str | None, str]:
    if not text.startswith("---\n"):
        return None, text
    end = text.find("\n---\n", 4)
    if end == -1:
        return None, text
    return text[4:end], text[end + 5:]


def fenced_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)


def without_fences(text: str) -> str:
    return re.sub(r"^```[a-z]*\n.*?^```", "", text, flags=re.S | re.M)


def inline_spans(text: str) -> list[str]:
    return re.findall(r"`([^`\n]+)`", without_fences(text))


def table_rows(text: str) -> list[list[str]]:
    """Cells of every Markdown table row outside fenced blocks (separator rows left out)."""
    rows = []
    for line in without_fences(text).splitlines():
        line = line.strip()
        if not (line.startswith("|") and line.endswith("|")):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])]
        if all(re.fullmatch(r":?-{3,}:?", cell) for cell in cells):
            continue
        rows.append(cells)
    return rows


@dataclass(frozen=True)
class StepRow:
    """One row of AGENTS.md's table: step, skill link, command cell, check cell."""

    step: str
    skill: str
    command: str
    check: str

    @property
    def workspace_only(self) -> bool:
        return WORKSPACE_ONLY in self.step


def code_in_cell(cell: str) -> str:
    """The shell command in a table cell: the text of its one code span."""
    spans = re.findall(r"`([^`]+)`", cell)
    return spans[0] if len(spans) == 1 else ""


def agents_table(text: str) -> list[StepRow]:
    """The step table of AGENTS.md: the table whose header starts `step | skill | command | check`."""
    rows = table_rows(text)
    for index, row in enumerate(rows):
        if [cell.lower() for cell in row[:4]] == ["step", "skill", "command", "check"]:
            table = []
            for cells in rows[index + 1:]:
                if len(cells) != len(row):
                    break
                table.append(StepRow(cells[0], cells[1], code_in_cell(cells[2]), code_in_cell(cells[3])))
            return table
    return []


# ------------------------------------------------------------------------------------------------ finding codes


def emitted_codes(source_root: Path = REPO) -> dict[str, set[str]]:
    """Every finding code the harness can emit, and the files it comes from.

    A code is any string constant of the code shape in scripts/ and checks/: literal first arguments of
    `Finding(...)`, `code="..."` of `MigrateError`, and the codes passed through helpers
    (`findings.add("ANA001", ...)`) or chosen in an expression (`"SMK005" if ... else "SMK007"`), which
    a narrower match on `Finding(` calls would miss.
    """
    codes: dict[str, set[str]] = {}
    for folder in ("scripts", "checks"):
        for path in sorted((source_root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE_PATTERN.match(node.value):
                    codes.setdefault(node.value, set()).add(path.relative_to(source_root).as_posix())
    return codes


def explained_codes(doc: Doc) -> list[str]:
    """Codes a skill explains: the first cell of a table row, with or without backticks."""
    found = []
    for cells in table_rows(doc.text):
        first = cells[0].strip("`* ")
        if CODE_PATTERN.match(first):
            found.append(first)
    return found


# ------------------------------------------------------------------------------------------------ commands


def migrate_commands(text: str) -> list[str]:
    """`migrate ...` invocations (with or without `uv run`) in one piece of shell text."""
    commands = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        for segment in re.split(r"&&|\|\||;|\|", line):
            segment = segment.strip()
            match = re.match(r"^(?:uv run )?migrate(?:\s|$)", segment)
            if match:
                commands.append(segment)
    return commands


def subcommand(command: str) -> str | None:
    """The subcommand of `[uv run] migrate <subcommand> ...`."""
    words = command.split()
    words = words[2:] if words[:2] == ["uv", "run"] else words
    return words[1] if len(words) > 1 else None


def subparsers_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def placeholder_value(action: argparse.Action | None, token: str) -> str:
    """A value standing in for `<PLACEHOLDER>` that the action accepts: the first choice, a number, or text."""
    if action is not None and action.choices:
        return str(list(action.choices)[0])
    if action is not None and action.type in (int, float):
        return "1"
    return PLACEHOLDER.sub("x", token)


def command_problems(command: str, parser: argparse.ArgumentParser, complete: bool) -> list[str]:
    """What is wrong with one `migrate ...` command; `complete` also requires it to parse in full."""
    try:
        tokens = shlex.split(command)
    except ValueError as error:
        return [f"`{command}`: not a shell command ({error})"]
    if tokens[:2] == ["uv", "run"]:
        tokens = tokens[2:]
    arguments = tokens[1:]
    if not arguments or arguments[0] in ("-h", "--help"):
        return []
    commands = subparsers_of(parser)
    name = arguments[0]
    if name not in commands:
        return [f"`{command}`: `migrate {name}` is not a command (there are: {', '.join(commands)})"]
    subparser = commands[name]
    options = subparser._option_string_actions
    problems, concrete, previous = [], [], None
    for token in arguments[1:]:
        flag = token.split("=", 1)[0]
        if token.startswith("--"):
            if flag not in options:
                problems.append(f"`{command}`: `migrate {name}` has no flag {flag}")
            previous = options.get(flag)
            concrete.append(token)
            if previous is not None and previous.nargs == 0:
                previous = None
            continue
        if PLACEHOLDER.search(token):
            token = placeholder_value(previous, token)
        concrete.append(token)
        previous = None
    if problems or not complete:
        return problems
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            subparser.parse_args(concrete)
    except SystemExit:
        message = stderr.getvalue().strip().splitlines()[-1:] or ["does not parse"]
        return [f"`{command}`: {message[0]}"]
    return []


# ------------------------------------------------------------------------------------------------ the rules


def frontmatter_problems(doc: Doc) -> list[str]:
    shown = doc.path.parent.name
    header, body = split_frontmatter(doc.text)
    if header is None:
        return [f"{shown}: SKILL.md must start with a `---` YAML frontmatter block"]
    try:
        data = yaml.safe_load(header)
    except yaml.YAMLError as error:
        return [f"{shown}: the frontmatter is not valid YAML: {error}"]
    if not isinstance(data, dict):
        return [f"{shown}: the frontmatter must be a mapping"]
    problems = []
    name, description = data.get("name"), data.get("description")
    if not isinstance(name, str) or not NAME_PATTERN.match(name) or len(name) > MAX_NAME:
        problems.append(f"{shown}: `name` must be lowercase letters, digits and hyphens, at most {MAX_NAME}")
    elif name != shown:
        problems.append(f"{shown}: `name` is {name!r}, not the folder's name")
    if not isinstance(description, str) or not description.strip():
        problems.append(f"{shown}: `description` is missing")
    elif len(description) > MAX_DESCRIPTION:
        problems.append(f"{shown}: `description` has {len(description)} characters (at most {MAX_DESCRIPTION})")
    unknown = set(data) - FRONTMATTER_KEYS
    if unknown:
        problems.append(f"{shown}: unknown frontmatter keys {sorted(unknown)}")
    if len(doc.text.splitlines()) > MAX_LINES:
        problems.append(f"{shown}: SKILL.md is over {MAX_LINES} lines; move detail into references/")
    headings = re.findall(r"^## (.+)$", without_fences(body), flags=re.M)
    if headings.count("Verify") != 1 or headings[-1] != "Verify":
        problems.append(f"{shown}: the body must end with exactly one `## Verify` section")
    else:
        verify = body[body.rindex("## Verify"):]
        if not any(subcommand(command) == "check"
                   for command in migrate_commands("\n".join(fenced_blocks(verify)))):
            problems.append(f"{shown}: the Verify section must show a `migrate check` command in a code block")
    return problems


def link_problems(doc: Doc) -> list[str]:
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", without_fences(doc.text)):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (doc.path.parent / target.split("#", 1)[0]).resolve()
        if not path.exists():
            problems.append(f"{doc.path.name} in {doc.path.parent.name}: the link {target} leads nowhere")
    return problems


def doc_command_problems(doc: Doc, parser: argparse.ArgumentParser) -> list[str]:
    problems = []
    where = f"{doc.path.parent.name}/{doc.path.name}"
    for block in fenced_blocks(doc.text):
        for command in migrate_commands(block):
            problems += [f"{where}: {problem}" for problem in command_problems(command, parser, complete=True)]
    complete_cells = set()
    if doc.path.name == "AGENTS.md":
        for row in agents_table(doc.text):
            complete_cells |= {row.command, row.check}
    for span in inline_spans(doc.text):
        for command in migrate_commands(span):
            problems += [f"{where}: {problem}"
                         for problem in command_problems(command, parser, complete=span in complete_cells)]
    return problems


def neutrality_problems(doc: Doc) -> list[str]:
    return [f"{doc.path.parent.name}/{doc.path.name}: names the assistant tool {name!r}; say what to do instead"
            for name in ASSISTANT_TOOL_NAMES if name in doc.text]


def table_problems(root: Path, parser: argparse.ArgumentParser) -> list[str]:
    agents = root / "AGENTS.md"
    if not agents.is_file():
        return ["AGENTS.md is missing"]
    rows = agents_table(agents.read_text(encoding="utf-8"))
    if not rows:
        return ["AGENTS.md has no table with the header `step | skill | command | check`"]
    problems = []
    for row in rows:
        links = re.findall(r"\]\(([^)]+)\)", row.skill)
        if not links or not all(re.fullmatch(r"skills/[a-z0-9-]+/SKILL\.md", link) and (root / link).is_file()
                                for link in links):
            problems.append(f"AGENTS.md: the row {row.step!r} must link its skill as skills/<name>/SKILL.md")
        if not row.command:
            problems.append(f"AGENTS.md: the row {row.step!r} needs one shell command in backticks")
        if not row.workspace_only and not migrate_commands(row.command):
            problems.append(f"AGENTS.md: the row {row.step!r} runs no `migrate` command and is not marked "
                            f"{WORKSPACE_ONLY}")
    shown = {subcommand(command) for row in rows for command in migrate_commands(row.command)}
    missing = [command.name for command in COMMANDS if command.name != "demo" and command.name not in shown]
    if missing:
        problems.append(f"AGENTS.md: no row runs {', '.join(missing)}")
    return problems


def code_problems(docs: list[Doc], codes: set[str]) -> list[str]:
    where: dict[str, list[str]] = {}
    for doc in docs:
        if doc.is_skill:
            for code in explained_codes(doc):
                where.setdefault(code, []).append(doc.path.parent.name)
    problems = []
    for code in sorted(codes):
        skills = where.get(code, [])
        if len(skills) != 1:
            problems.append(f"finding {code} is explained in {len(skills)} skills ({', '.join(skills) or 'none'}); "
                            "explain it in exactly one")
    problems += [f"{', '.join(skills)} explains {code}, which no check or step emits"
                 for code, skills in sorted(where.items()) if code not in codes]
    return problems


def lint_pack(root: Path, codes: set[str], parser: argparse.ArgumentParser | None = None) -> list[str]:
    """Every problem of the skill pack under `root` (AGENTS.md and skills/), as readable lines."""
    parser = parser or build_parser()
    docs = pack_docs(root)
    problems = table_problems(root, parser)
    skills = [doc for doc in docs if doc.is_skill]
    if not skills:
        problems.append("skills/ holds no SKILL.md")
    for doc in docs:
        if doc.is_skill:
            problems += frontmatter_problems(doc)
        problems += link_problems(doc) + doc_command_problems(doc, parser) + neutrality_problems(doc)
    problems += code_problems(docs, codes)
    return problems


# ------------------------------------------------------------------------------------------------ the tests


@pytest.fixture(scope="module")
def codes() -> set[str]:
    return set(emitted_codes())


def test_the_pack_is_clean(codes):
    assert lint_pack(REPO, codes) == []


def test_codes_are_collected_from_every_kind_of_call(codes):
    # A literal Finding, a MigrateError code, a code passed through a helper, a code picked in an expression.
    assert {"SRC001", "ANA021", "ANA001"} <= codes
    if (REPO / "checks" / "smoke.py").exists():
        assert {"SMK005", "SMK007"} <= codes


def test_assistants_find_the_pack():
    assert "@AGENTS.md" in (REPO / "CLAUDE.md").read_text(encoding="utf-8")
    link = REPO / ".claude" / "skills"
    assert link.is_symlink() and link.resolve() == (REPO / "skills").resolve()
    assert "AGENTS.md" in (REPO / ".github" / "copilot-instructions.md").read_text(encoding="utf-8")
    rule = (REPO / ".cursor" / "rules" / "agent-migrate.mdc").read_text(encoding="utf-8")
    header, _ = split_frontmatter(rule)
    assert header is not None and "alwaysApply" in yaml.safe_load(header)
    assert "AGENTS.md" in rule


@pytest.fixture
def pack_copy(tmp_path) -> Path:
    """A copy of AGENTS.md and skills/ to break."""
    shutil.copy(REPO / "AGENTS.md", tmp_path / "AGENTS.md")
    shutil.copytree(REPO / "skills", tmp_path / "skills")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def first_skill(root: Path) -> Path:
    return sorted((root / "skills").glob("*/SKILL.md"))[0]


def skill_explaining(root: Path, code: str) -> Path:
    return next(path for path in sorted((root / "skills").glob("*/SKILL.md"))
                if code in explained_codes(Doc(path, path.read_text(encoding="utf-8"))))


def explain_again(root: Path) -> None:
    """Add a row for SRC001 to a skill other than the one that explains it."""
    owner = skill_explaining(root, "SRC001")
    other = next(path for path in sorted((root / "skills").glob("*/SKILL.md")) if path != owner)
    other.write_text(other.read_text(encoding="utf-8") + "\n| code | fix |\n|---|---|\n| SRC001 | again |\n")


BREAKAGES = {
    "name differs from the folder": (
        lambda root: edit(first_skill(root), f"name: {first_skill(root).parent.name}\n", "name: something-else\n"),
        "not the folder's name"),
    "description too long": (
        lambda root: edit(first_skill(root), "description: ", "description: " + "x" * 1100 + " "),
        "`description` has"),
    "frontmatter missing": (
        lambda root: edit(first_skill(root), "---\n", "", ),
        "must start with a `---` YAML frontmatter block"),
    "no Verify section": (
        lambda root: edit(first_skill(root), "## Verify", "## Check"),
        "exactly one `## Verify` section"),
    "unknown command": (
        lambda root: first_skill(root).write_text(
            first_skill(root).read_text(encoding="utf-8") + "\nThen run `uv run migrate frobnicate`.\n"),
        "`migrate frobnicate` is not a command"),
    "unknown flag": (
        lambda root: first_skill(root).write_text(
            first_skill(root).read_text(encoding="utf-8") + "\nOr `migrate download --endpoints <ENDPOINT>`.\n"),
        "has no flag --endpoints"),
    "table command missing a required flag": (
        lambda root: edit(root / "AGENTS.md", "code --mode <MODE>", "code"),
        "the following arguments are required: --mode"),
    "table command with a bad choice": (
        lambda root: edit(root / "AGENTS.md", "code --mode <MODE>", "code --mode turbo"),
        "invalid choice: 'turbo'"),
    "broken link": (
        lambda root: first_skill(root).write_text(
            first_skill(root).read_text(encoding="utf-8") + "\nSee [this](../no-such-skill/SKILL.md).\n"),
        "leads nowhere"),
    "a step without a row": (
        lambda root: (root / "AGENTS.md").write_text("\n".join(
            line for line in (root / "AGENTS.md").read_text(encoding="utf-8").splitlines()
            if "migrate resources" not in line)),
        "no row runs resources"),
    "code explained twice": (explain_again, "finding SRC001 is explained in 2 skills"),
    "code not explained": (
        lambda root: skill_explaining(root, "SRC001").write_text("\n".join(
            line for line in skill_explaining(root, "SRC001").read_text(encoding="utf-8").splitlines()
            if not re.match(r"^\|\s*`?SRC001", line))),
        "finding SRC001 is explained in 0 skills"),
    "a code that does not exist": (
        lambda root: first_skill(root).write_text(
            first_skill(root).read_text(encoding="utf-8") + "\n| code | fix |\n|---|---|\n| XYZ999 | none |\n"),
        "explains XYZ999, which no check or step emits"),
    "an assistant's tool name": (
        lambda root: (root / "AGENTS.md").write_text(
            (root / "AGENTS.md").read_text(encoding="utf-8") + "\nUse AskUserQuestion for the three questions.\n"),
        "names the assistant tool 'AskUserQuestion'"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_lint_catches(breakage, pack_copy, codes):
    assert lint_pack(pack_copy, codes) == [], "the copy must start clean"
    damage, expected = BREAKAGES[breakage]
    damage(pack_copy)
    problems = lint_pack(pack_copy, codes)
    assert any(expected in problem for problem in problems), problems


def test_a_placeholder_stands_for_any_value_but_a_flag_must_exist():
    parser = build_parser()
    assert command_problems("uv run migrate code --mode <MODE> --workdir <WORKDIR>", parser, complete=True) == []
    assert command_problems("migrate smoke --port <PORT>", parser, complete=False) == []
    assert command_problems("migrate check --app <WORKDIR>/<APP_NAME> code setup", parser, complete=True) == []
    assert command_problems("migrate scaffold --workdir <WORKDIR>", parser, complete=True)
    assert command_problems("migrate scaffold --app-nam <APP_NAME>", parser, complete=False)
