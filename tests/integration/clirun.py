"""Run the real `lab` command as a user would, and walk its command tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def lab(*args: str, env: dict | None = None, timeout: float = 120, **kw):
    """`lab ARGS...` on an 80-column terminal; returns the CompletedProcess."""
    e = {**os.environ, "COLUMNS": "80", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lab", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=e,
        **kw,
    )


def one_error(res) -> str:
    """The one sentence on stderr of a failed command (asserting there is just one)."""
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith("error: "), res.stderr
    return lines[0]


def json_of(res):
    try:
        return json.loads(res.stdout)
    except ValueError as e:
        raise AssertionError(f"not JSON: {e}\nstdout: {res.stdout!r}\nstderr: {res.stderr}") from e


def command_tree(own_words_only: bool = False) -> list[tuple[list[str], bool]]:
    """Every command path under `lab` (groups too) and whether it is a group, read from
    the app itself, so that a command added later is walked too. With `own_words_only`,
    only the commands that parse their own words (lab kafka ...): Click answers --help
    of every other one while parsing, before the command can look for a lab."""
    import typer

    from lab.cli import app

    out = []

    def walk(cmd, path):
        if not own_words_only or (cmd.context_settings or {}).get("ignore_unknown_options"):
            out.append((path, hasattr(cmd, "commands")))
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return out


def command_modules() -> dict[str, str]:
    """'chaos run' -> the module that defines the command (lab.cli.chaos)."""
    import typer

    from lab.cli import app

    out = {}

    def walk(cmd, path):
        if hasattr(cmd, "commands"):
            for name, sub in cmd.commands.items():
                walk(sub, [*path, name])
        elif getattr(cmd, "callback", None) is not None:
            fn = getattr(cmd.callback, "__wrapped__", cmd.callback)
            out[" ".join(path)] = fn.__module__

    walk(typer.main.get_command(app), [])
    return out
