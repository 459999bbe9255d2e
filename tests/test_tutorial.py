"""The tutorial (docs/pages/tutorial.md) is checked by executing it.

Every fenced code block that carries a file name (``python title="mypipe/target.py"``) is
written into a fresh project directory, and every ``console`` / ``bash`` block's commands
(lines starting with ``$ ``) run there, in document order, in this virtual environment
(``pip install`` lines are skipped: mlprop is already installed here). A command ends with
the exit code it declares (``# exits N`` at the end of its line, else 0), and every output
line the tutorial shows that starts with ``FAILED `` or ``mlprop check:`` appears in the
command's real output. So a tutorial whose code no longer runs, whose planted bug is no longer
named, or whose expected-failure declaration stops working fails here instead of misleading
a new user.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "pages" / "tutorial.md"
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,})(?P<info>[^`]*)$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
PIP_INSTALL = re.compile(r"^(python3? -m )?pip install ")
EXITS = re.compile(r"#\s*exits\s+(?P<code>\d+)\s*$")
CHECKED_OUTPUT = ("FAILED ", "mlprop check:")
SHELL_LANGUAGES = {"console", "bash", "shell", "sh"}
COMMAND_TIMEOUT_S = 180


@dataclass
class Command:
    """One ``$ `` line of a shell block: what runs, its expected exit code and shown output."""

    line: str
    exit_code: int = 0
    shown_output: list[str] = field(default_factory=list)


@dataclass
class Step:
    """A block of the tutorial: a file to write (``path``) or commands to run."""

    line_number: int
    path: str | None = None
    text: str = ""
    commands: list[Command] = field(default_factory=list)


def parse_blocks(markdown: str) -> list[tuple[int, str, str]]:
    """The fenced code blocks of ``markdown`` as (line number, info string, body).

    A block may be indented (inside an admonition or a list); its body is dedented by the
    fence's indentation. An unclosed fence is an error, not a silently dropped block.
    """
    blocks: list[tuple[int, str, str]] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, fence, info = len(match["indent"]), match["fence"], match["info"].strip()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            line = lines[index]
            body.append(line[indent:] if not line[:indent].strip() else line)
            index += 1
        if index == len(lines):
            raise ValueError(f"tutorial.md:{start + 1}: unclosed code fence")
        blocks.append((start + 1, info, "\n".join(body) + "\n"))
        index += 1
    return blocks


def parse_commands(body: str) -> list[Command]:
    """The ``$ `` commands of a shell block (a trailing backslash continues a command), each
    with the output lines shown under it."""
    commands: list[Command] = []
    pending: str | None = None
    for raw in body.splitlines():
        if pending is not None:
            pending += "\n" + raw
            if not raw.endswith("\\"):
                commands.append(Command(pending))
                pending = None
            continue
        if raw.startswith("$ "):
            if raw.endswith("\\"):
                pending = raw[2:]
            else:
                commands.append(Command(raw[2:]))
        elif commands:
            commands[-1].shown_output.append(raw)
    if pending is not None:
        raise ValueError(f"a command continues past the end of its block: {pending!r}")
    for command in commands:
        declared = EXITS.search(command.line)
        if declared:
            command.exit_code = int(declared["code"])
    return commands


def tutorial_steps(markdown: str) -> list[Step]:
    """Files and commands of the tutorial, in document order."""
    steps: list[Step] = []
    for line_number, info, body in parse_blocks(markdown):
        title = TITLE.search(info)
        language = info.split()[0] if info.split() else ""
        if title:
            steps.append(Step(line_number, path=title["title"], text=body))
        elif language in SHELL_LANGUAGES:
            commands = [c for c in parse_commands(body) if not PIP_INSTALL.match(c.line)]
            if commands:
                steps.append(Step(line_number, commands=commands))
    return steps


def test_parser_reads_titles_commands_exit_codes_and_shown_output() -> None:
    """The parser itself: a wrong parse would let a broken tutorial pass (a block never
    written, a command never run, a declared failure read as success)."""
    markdown = (
        "Intro\n\n"
        '```python title="pkg/a.py"\nX = 1\n```\n\n'
        "```console\n$ pip install mlprop\n$ mlprop check \\\n    -- -q  # exits 1\n"
        "...\nFAILED x.py::test_y - boom\n$ echo ok\nok\n```\n\n"
        "!!! note\n    ```bash\n    $ true\n    ```\n"
        "```python\nnot_a_file = True\n```\n"
    )
    steps = tutorial_steps(markdown)
    assert [s.path for s in steps] == ["pkg/a.py", None, None]
    assert steps[0].text == "X = 1\n"
    first, second = steps[1].commands
    assert first.line == "mlprop check \\\n    -- -q  # exits 1" and first.exit_code == 1
    assert "FAILED x.py::test_y - boom" in first.shown_output
    assert second.line == "echo ok" and second.exit_code == 0
    assert [c.line for c in steps[2].commands] == ["true"]
    with pytest.raises(ValueError, match="unclosed"):
        parse_blocks("```python\nx = 1\n")


def _environment(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MLPROP_", "PYTEST_", "HYPOTHESIS_"))
           and key not in ("PYTHONPATH", "MUTANT_UNDER_TEST")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLPROP_CACHE_DIR"] = str(tmp_path / "mlprop-cache")
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    env["CI"] = "true"  # mlprop's derandomized profile: the same examples on every run
    return env


def test_tutorial_runs_as_written(tmp_path: Path) -> None:
    """Write the tutorial's files and run its commands in order, as a reader would.

    Catches a tutorial that no longer works: a file that does not import, a Target the
    suite refuses, a property that now fails (or no longer fails) where the tutorial says
    otherwise, an expected-failure declaration that stopped turning a failure into an xfail.
    """
    steps = tutorial_steps(TUTORIAL.read_text(encoding="utf-8"))
    assert any(s.path for s in steps) and any(s.commands for s in steps), (
        f"{TUTORIAL} has no titled code block or no command: nothing would be checked")
    project = tmp_path / "project"
    project.mkdir()
    env = _environment(tmp_path)
    for step in steps:
        if step.path is not None:
            destination = project / step.path
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_text(step.text, encoding="utf-8")
            continue
        for command in step.commands:
            where = f"tutorial.md:{step.line_number}: `{command.line}`"
            try:
                result = subprocess.run(["bash", "-c", command.line], cwd=project, env=env,
                                        capture_output=True, text=True,
                                        timeout=COMMAND_TIMEOUT_S)
            except subprocess.TimeoutExpired as exc:
                pytest.fail(f"{where} ran over {COMMAND_TIMEOUT_S} s (the tutorial promises "
                            f"seconds)\n{str(exc.stdout or '')[-4000:]}")
            output = result.stdout + result.stderr
            assert result.returncode == command.exit_code, (
                f"{where} exited {result.returncode}, the tutorial says {command.exit_code}"
                f"\n{output[-4000:]}")
            for shown in command.shown_output:
                if shown.startswith(CHECKED_OUTPUT):
                    assert shown.strip() in output, (
                        f"{where}: the tutorial shows {shown!r}, the command did not print it"
                        f"\n{output[-4000:]}")
