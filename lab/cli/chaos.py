"""lab chaos: run a workload under a nemesis, list runs, show a report, heal."""

from __future__ import annotations

from pathlib import Path

import typer

from lab.cli.common import (
    JSON,
    LAB,
    UserError,
    _emit,
    _fail,
    _need_root,
    _progress,
    chaos_app,
    out,
    which_lab,
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
    """Run a workload with real clients under a nemesis; judge the history.

    Exit codes: 0 valid, 1 invalid, 3 unknown (a checker ran out of budget, or the run
    was interrupted: faults are healed first), 2 a mistake in the command.

    \b
    Examples:
      lab chaos run --workload zk-register --nemesis partition-majority --time 60
      lab chaos run --workload kafka-queue --nemesis kill-leader,delay --seed 7
    """
    from lab.chaos import runner

    _need_root()
    opts = {}
    for kv in option:
        if "=" not in kv:
            raise UserError(f"--option needs key=value, got {kv!r}")
        k, v = kv.split("=", 1)
        opts[k] = v
    try:
        run_dir = runner.run(lab, workload, nemesis, time_s=time_s, rate=rate, seed=seed,
                             interval=interval, schedule=schedule, concurrency=concurrency,
                             options=opts, progress=_progress(as_json))  # fmt: skip
    except KeyboardInterrupt as e:
        # docs/CHAOS.md: an interrupted run is exit code 3 (unknown), not the shell's 130
        where = getattr(e, "run_dir", None)
        _fail(
            "interrupted: every fault was healed; the verdict is unknown"
            + (f"; report: {Path(where) / 'report.html'}" if where else ""),
            VERDICT_EXIT["unknown"],
        )
    summary = runner.summary(run_dir)
    if not _emit(summary, as_json):
        for line in summary["lines"]:
            out.print(line, highlight=False, soft_wrap=True, markup=False)
        out.print(f"verdict: {summary['verdict_word']}", highlight=False)
        out.print(f"report: {summary['report']}", highlight=False, soft_wrap=True)
    raise typer.Exit(VERDICT_EXIT.get(summary["valid"], 3))


@chaos_app.command("runs")
def chaos_runs(as_json: bool = JSON):
    """The chaos runs made on this machine, newest first.

    Each run's full name is what `lab chaos report` takes (a unique prefix works too).

    \b
    Example:
      lab chaos runs
    """
    from lab.chaos import runner

    runs = runner.list_runs()
    if not _emit(runs, as_json):
        if not runs:
            out.print("no chaos runs yet: start one with `lab chaos run`")
            return
        # the name says when, lab, workload, nemeses and seed; it goes last and whole,
        # so that it can be pasted into `lab chaos report NAME` at any terminal width
        out.print("verdict  anomalies  run", highlight=False)
        for r in runs:
            n = r.get("anomalies")
            out.print(f"{r['verdict']:<8} {'-' if n is None else n:>9}  {r['name']}",
                      highlight=False, soft_wrap=True)  # fmt: skip


@chaos_app.command("report")
def chaos_report(
    run: str = typer.Argument(None, help="A run folder, name or prefix (default: the latest)."),
    as_json: bool = JSON,
):
    """Where a run's HTML report is (made again from its history if missing).

    \b
    Examples:
      lab chaos report
      lab chaos report 20261205T101500-quickstart-zk-register
    """
    from lab.chaos import runner

    path = runner.report(run)
    if not _emit({"report": str(path), "run_dir": str(path.parent)}, as_json):
        out.print(str(path), highlight=False, soft_wrap=True)


@chaos_app.command("heal")
def chaos_heal(
    name: str = typer.Argument(None, help="The lab (default: the only one up)."),
    lab: str = LAB,
    as_json: bool = JSON,
):
    """Undo every fault a chaos run may have left (after the runner crashed).

    \b
    Example:
      lab chaos heal quickstart     (or: lab chaos heal --lab quickstart)
    """
    from lab.chaos import runner

    _need_root()
    done = runner.heal(which_lab(name, lab))
    if not _emit({"healed": done}, as_json):
        for line in done:
            out.print(line, highlight=False, soft_wrap=True, markup=False)
        if not done:
            out.print("nothing to heal")
