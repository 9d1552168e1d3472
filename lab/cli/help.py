"""lab help [TOPIC | COMMAND...]: the guide pages (docs/*.md) by topic, or a command's
--help, so that `lab help chaos` reads what docs/CHAOS.md says."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from lab.cli.common import UserError, app

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _topics() -> dict[str, Path]:
    return {p.stem.lower(): p for p in sorted(DOCS.glob("*.md"))} if DOCS.is_dir() else {}


@app.command("help", context_settings={"ignore_unknown_options": True})
def help_(words: list[str] = typer.Argument(None, help="A topic, or a command (chaos run).")):
    """A guide page by topic (lab help chaos), or a command's help (lab help chaos run).

    \b
    Examples:
      lab help
      lab help topology
      lab help chaos run
    """
    topics = _topics()
    words = words or []
    if not words:
        sys.stdout.write("Topics (lab help TOPIC):\n")
        for name, path in topics.items():
            first = next((line for line in path.read_text().splitlines() if line.strip()), "")
            sys.stdout.write(f"  {name:<14} {first.lstrip('# ')[:62]}\n")  # 80 columns
        if not topics:
            sys.stdout.write("  (none: the guide pages are not installed with this copy)\n")
        sys.stdout.write("\nCommands (lab help COMMAND, or lab COMMAND --help): lab --help\n")
        return
    if len(words) == 1 and words[0].lower() in topics:
        sys.stdout.write(topics[words[0].lower()].read_text())
        return
    from typer.main import get_command

    if words[0].startswith("-"):
        raise UserError(f"lab help: {words[0]} is neither a topic nor a command")
    code = get_command(app).main([*words, "--help"], prog_name="lab", standalone_mode=False)
    raise typer.Exit(code or 0)
