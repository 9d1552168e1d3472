"""lab bench: overhead and up/down benchmarks that print measured figures."""

from __future__ import annotations

from pathlib import Path

import typer

from lab.cli.common import (
    JSON,
    UserError,
    _emit,
    _need_root,
    _progress,
    bench_app,
    out,
)


@bench_app.command("overhead")
def bench_overhead(
    kinds: str = typer.Option("native,process,container,vm", help="Comma-separated kinds."),
    runs: int = typer.Option(3, min=1, help="Repetitions; medians and spread are reported."),
    quick: bool = typer.Option(False, help="Tiny sizes: a smoke test, not figures."),
    output: Path = typer.Option(
        None, "--out", help="Where JSON and PNG go (default: overhead/ beside the chaos runs)."
    ),
    as_json: bool = JSON,
):
    """Native vs process vs container vs VM: CPU, memory, disk, network, start, idle memory.

    \b
    Examples:
      lab bench overhead --kinds native,process --runs 3
      lab bench overhead --quick
    """
    from lab.bench import overhead

    _need_root()
    s = overhead.Settings.quick() if quick else overhead.Settings()
    s.runs = runs if not quick else 1
    if output is None:  # never the directory the user happens to stand in
        from lab.chaos.runner import runs_root

        output = runs_root() / "overhead"
    try:
        report = overhead.run(kinds.split(","), s, output, progress=_progress(as_json))
    except ValueError as e:
        raise UserError(str(e)) from None
    if not _emit(report, as_json):
        overhead.print_table(
            report,
            write=lambda line: out.print(line, highlight=False, soft_wrap=True, markup=False),
        )
        out.print(f"plot: {report['plot']}", highlight=False, soft_wrap=True)


@bench_app.command("updown")
def bench_updown(
    runs: int = typer.Option(5, min=1, help="Repetitions of each lab's up and down."),
    files: list[Path] = typer.Argument(None, help="Topology files (default: the examples)."),
    as_json: bool = JSON,
):
    """lab up / lab down times for the example labs (or the given files).

    \b
    Example:
      lab bench updown --runs 5 examples/quickstart.yaml
    """
    from lab.bench import updown

    _need_root()
    report = updown.measure(files or updown.DEFAULT_FILES, runs)
    if not _emit(report, as_json):
        updown.print_table(
            report, write=lambda line: out.print(line, highlight=False, markup=False)
        )
