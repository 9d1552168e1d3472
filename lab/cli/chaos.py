"""lab chaos: run a workload under a nemesis, list runs, show a report, heal."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from lab.cli.common import (
    JSON,
    LAB,
    UserError,
    _emit,
    _need_root,
    _progress,
    chaos_app,
    out,
)

VERDICT_EXIT = {True: 0, False: 1, "unknown": 3}


@chaos_app.command("run")
def chaos_run(
    workload: str = typer.Option(
        ..., help="zk-register, zk-lock, kafka-queue, hdfs-files, yarn-jobs"
    ),
    nemesis: str = typer.Option("partition-majority", help="One or several, comma-separated."),
    time_s: float = typer.Option(60.0, "--time", help="Seconds of faults and load."),
    rate: float = typer.Option(10.0, help="Operations per second, all clients together."),
    seed: int = typer.Option(None, help="Repeat a run's schedule exactly."),
    interval: float = typer.Option(10.0, help="Seconds between fault changes."),
    schedule: str = typer.Option("fixed", help="fixed or random"),
    concurrency: int = typer.Option(None, help="Client processes."),
    option: list[str] = typer.Option([], "--option", help="Workload option k=v (repeatable)."),
    lab: str = LAB,
    as_json: bool = JSON,
):
    """Run a workload with real clients under a nemesis; judge the history. Exit 0 valid,
    1 invalid, 3 unknown."""
    from lab.chaos import runner

    _need_root()
    opts = {}
    for kv in option:
        if "=" not in kv:
            raise UserError(f"--option needs key=value, got {kv!r}")
        k, v = kv.split("=", 1)
        opts[k] = v
    run_dir = runner.run(lab, workload, nemesis, time_s=time_s, rate=rate, seed=seed,
                         interval=interval, schedule=schedule, concurrency=concurrency,
                         options=opts, progress=_progress(as_json))  # fmt: skip
    summary = runner.summary(run_dir)
    if not _emit(summary, as_json):
        for line in summary["lines"]:
            out.print(line, highlight=False, soft_wrap=True)
        out.print(f"verdict: {summary['valid']}  report: {summary['report']}", highlight=False)
    raise typer.Exit(VERDICT_EXIT.get(summary["valid"], 3))


@chaos_app.command("runs")
def chaos_runs(as_json: bool = JSON):
    """The chaos runs made on this machine, newest first."""
    from lab.chaos import runner

    runs = runner.list_runs()
    if not _emit(runs, as_json):
        t = Table(box=None)
        for col in ("run", "lab", "workload", "nemesis", "seed", "verdict", "anomalies"):
            t.add_column(col)
        for r in runs:
            t.add_row(Path(r["dir"]).name, str(r.get("lab")), str(r.get("workload")),
                      str(r.get("nemesis")), str(r.get("seed")), str(r.get("valid")),
                      str(r.get("anomalies", "")))  # fmt: skip
        out.print(t)


@chaos_app.command("report")
def chaos_report(
    run: str = typer.Argument(None, help="A run folder, name or prefix (default: the latest)."),
):
    """Where a run's HTML report is (made again from its history if missing)."""
    from lab.chaos import runner

    out.print(str(runner.report(run)))


@chaos_app.command("heal")
def chaos_heal(lab: str = typer.Argument(None, help="The lab (default: the only one up).")):
    """Undo every fault a chaos run may have left (after the runner crashed)."""
    from lab.chaos import runner

    _need_root()
    for line in runner.heal(lab):
        out.print(line)
