"""The `lab` command lines written in README.md and docs/*.md are ones the command
takes: each is run as written with --help added, which makes Click check the command
path and every option name, and print the help instead of doing the work (a chaos run
or a benchmark is too long, and `lab up examples/quickstart.yaml` would make a lab of
a name tests must not use). The examples that need no lab run for real in
test_cli_surface (validate, graph, chaos runs and report, the service help)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .clirun import command_tree, lab

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


def test_every_documented_command_line_is_one_lab_takes():
    cases = documented_commands()

    def check(argv: list[str]):
        if "--" in argv:  # lab exec NODE -- CMD: racklab's options come before --
            i = argv.index("--")
            return lab(*argv[:i], "--help", *argv[i:])
        return lab(*argv, "--help")

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: check(c[1]), cases))
    bad = [
        f"{where}: lab {' '.join(argv)}: {r.stderr.strip()}"
        for (where, argv), r in zip(cases, results, strict=True)
        if r.returncode != 0
    ]
    assert bad == []
