"""The `lab` command lines written in README.md and docs/*.md are ones the command
takes: each is given as written, with --help added, to the command's Click entry, which
checks the command path and every option name and prints the help instead of doing
the work (a chaos run
or a benchmark is too long, and `lab up examples/quickstart.yaml` would make a lab of
a name tests must not use). The examples that need no lab run for real in
test_cli_surface (validate, graph, chaos runs and report, the service help)."""

from __future__ import annotations

import re
from pathlib import Path

from .clirun import command_tree

ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"^(?:[#$] )?(?:python -m )?lab (\S.*)$")
SPAN = re.compile(r"`lab ([^`]+)`")


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, argv) of every `lab ...` line in a code block or inline code span."""
    top = {p[0] for p, _ in command_tree() if p} | {"--help", "--version"}
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        in_fence = False
        for i, line in enumerate(doc.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
                continue
            texts = []
            if in_fence or line.startswith("    "):
                m = COMMAND.match(line.strip())
                texts += [m.group(1)] if m else []
            texts += SPAN.findall(line)
            for text in texts:
                text = re.split(r"\s{2,}#|\s#\s", text)[0].strip()  # a trailing comment
                words = text.split()
                # placeholders and prose (`lab chaos run ...`, `[--lab L]`) are no command
                if not words or words[0] not in top or re.search(r"\.\.\.|[\[|/(:]", text):
                    continue
                found.append((f"{doc.relative_to(ROOT)}:{i}", words))
    return found


def test_the_docs_have_commands_to_check():
    where = {w.split(":")[0] for w, _ in documented_commands()}
    assert {"README.md", "docs/CHAOS.md", "docs/CLI.md"} <= where


def test_every_documented_command_line_is_one_lab_takes(capsys):
    # In this process, through the same entry Click gives the `lab` command: 70-odd
    # interpreter start-ups would cost a minute on a busy machine for no more checking.
    import typer

    from lab.cli import app

    root = typer.main.get_command(app)
    bad = []
    for where, argv in documented_commands():
        if "--" in argv:  # lab exec NODE -- CMD: racklab's options come before --
            i = argv.index("--")
            args = [*argv[:i], "--help", *argv[i:]]
        else:
            args = [*argv, "--help"]
        try:
            code = root.main(args, prog_name="lab", standalone_mode=False)
        except Exception as e:  # noqa: BLE001 - Click's usage errors, named in the report
            code = f"{type(e).__name__}: {e}"
        except SystemExit as e:
            code = e.code
        out = capsys.readouterr().out
        if code not in (0, None) or not out.startswith(("Usage: lab", "racklab ")):
            bad.append(f"{where}: lab {' '.join(argv)}: {code}")
    assert bad == []
