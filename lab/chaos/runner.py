"""A chaos run from start to verdict, and the run folders it leaves.

    run(lab, workload, nemesis, time_s, rate, seed, ...) -> run folder
        history.jsonl  every operation and every fault, as it happened
        run.json       what was asked (workload, nemesis, schedule, seed, lab)
        verdict.json   valid / invalid with each anomaly / unknown, per checker
        report.html    the verdict with latency and throughput plots, faults shaded

Order of a run: attach to the lab (it must be up), check every argument and refuse an
impossible schedule before touching anything, heal whatever an earlier run left,
set the workload up, start the clients and the nemesis, and at the end (or on Ctrl-C
or SIGTERM) heal every fault, stop the clients, let the system recover, read back
what survived, and judge. Faults are healed in a ``finally``: an interrupted run
heals too, and records that it was interrupted (its verdict is then "unknown").
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from lab.orchestrator.state import State, home, lab_dir

from . import nemesis as nem
from . import workloads
from .checkers.base import UNKNOWN, Verdict, merge
from .history import NOTE, History
from .labctx import ChaosError, LabContext

Progress = Callable[[str], None]
CLIENT_LOGGERS = ("kazoo", "kafka", "urllib3", "hdfs", "requests")


def _quiet(msg: str) -> None:
    pass


def runs_root() -> Path:
    """Where run folders live: beside the labs' state, not in it (/var/lib/racklab-runs),
    because they outlive their lab, and `lab clean --all` takes every folder in the
    state directory for a lab's. RACKLAB_RUNS overrides."""
    h = home()
    return Path(os.environ.get("RACKLAB_RUNS", h.with_name(h.name + "-runs")))


def _active_file(ctx: LabContext) -> Path:
    return lab_dir(ctx.name) / "chaos-active.json"


def _kill_leftover_lines(ctx: LabContext) -> list[str]:
    """Stop the fault-line processes recorded by a run that died without healing (each
    undoes its own plumbing on SIGTERM). Returns what it stopped."""
    f = _active_file(ctx)
    try:
        active = json.loads(f.read_text())
    except (OSError, ValueError):
        return []
    done = []
    for pid in active.get("pids", []):
        try:
            if b"lab.net.faults" in Path(f"/proc/{pid}/cmdline").read_bytes():
                os.kill(pid, signal.SIGTERM)
                done.append(f"stopped fault line {pid} left by {Path(active['run']).name}")
        except (OSError, ProcessLookupError, KeyError):
            pass
    f.unlink(missing_ok=True)
    return done


def heal(lab: State | str | None = None) -> list[str]:
    """Heal every fault a chaos run can leave on a lab (after a crash of the runner)."""
    ctx = LabContext.attach(lab, require_running=False)
    done = _kill_leftover_lines(ctx)
    return done + ctx.heal_everything()


def run(
    lab: State | str | None,
    workload: str,
    nemesis: str = "partition-majority",
    time_s: float = 60.0,
    rate: float = 10.0,
    seed: int | None = None,
    interval: float = 10.0,
    schedule: str = "fixed",
    concurrency: int | None = None,
    options: dict | None = None,
    recover_s: float = 20.0,
    runs_dir: str | Path | None = None,
    progress: Progress = _quiet,
) -> Path:
    """Run ``workload`` under ``nemesis`` for ``time_s`` seconds; returns the run folder.

    Raises ChaosError (one sentence, before anything is touched) for an unknown
    workload or nemesis, an impossible schedule, or a lab that is not up."""
    if time_s <= 0:
        raise ChaosError("--time must be a positive number of seconds")
    if seed is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    wl_class = workloads.get(workload)
    names = [n.strip() for n in nemesis.split(",") if n.strip()]
    nem.make(names, None)  # unknown names are refused before the lab is looked at
    events = nem.schedule(names, time_s, interval, schedule, seed)
    ctx = LabContext.attach(lab)

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    root = Path(runs_dir) if runs_dir else runs_root()
    run_dir = root / f"{stamp}-{ctx.name}-{workload}-{'+'.join(names)}-s{seed}"
    wl = wl_class(ctx, History(), rate, seed, concurrency, options)  # validation only
    wl.validate()
    nemeses = nem.make(names, wl_class.service, wl.leader, str(run_dir))
    for n in nemeses:
        n.validate(ctx)

    run_dir.mkdir(parents=True, exist_ok=False)
    meta = {
        "lab": ctx.name,
        "workload": workload,
        "nemesis": names,
        "time_s": time_s,
        "rate": rate,
        "seed": seed,
        "interval": interval,
        "schedule_mode": schedule,
        "schedule": [e.__dict__ for e in events],
        "concurrency": wl.concurrency,
        "options": options or {},
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "nodes": {n: {"rack": ctx.racks[n], "address": ctx.addresses[n]} for n in ctx.nodes},
    }
    (run_dir / "run.json").write_text(json.dumps(meta, indent=1))

    progress("healing anything an earlier run left")
    repaired_before = _kill_leftover_lines(ctx) + ctx.heal_everything()

    history = History(run_dir / "history.jsonl")
    wl = wl_class(ctx, history, rate, seed, concurrency, options)
    thread = None
    interrupted = failed = None
    repaired_after: list[str] = []

    def persist(active: dict) -> None:
        pids = [p for f in active.values() for p in f.detail.get("pids", [])]
        _active_file(ctx).write_text(json.dumps({"run": str(run_dir), "pids": pids}))

    # the client libraries' own logs (reconnects, retries) go to the run folder, not the
    # terminal: a run under faults makes a great many of them
    client_log = logging.FileHandler(run_dir / "clients.log")
    client_log.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    loggers = {name: logging.getLogger(name) for name in CLIENT_LOGGERS}
    saved = {name: (lg.propagate, lg.level) for name, lg in loggers.items()}
    for lg in loggers.values():
        lg.addHandler(client_log)
        lg.propagate = False
        lg.setLevel(logging.INFO)

    old_term = None
    if threading.current_thread() is threading.main_thread():

        def on_term(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        old_term = signal.signal(signal.SIGTERM, on_term)
    try:
        progress(f"setting up {workload}")
        wl.setup()
        progress(f"running {workload} under {', '.join(names)} for {time_s:g} s (seed {seed})")
        history = wl.history
        thread = nem.NemesisThread(ctx, nemeses, events, history, seed, persist)
        wl.start(until=time_s)
        thread.start()
        while history.now() < time_s:
            time.sleep(min(0.5, max(0.01, time_s - history.now())))
    except KeyboardInterrupt as e:
        interrupted = str(e) or "interrupted"
        progress("interrupted: healing")
    except Exception as e:  # noqa: BLE001 - a broken run still heals and says why
        failed = f"{type(e).__name__}: {e}"
        progress(f"the run failed ({failed}): healing")
    finally:
        if thread is not None:
            thread.stop_event.set()
            thread.join(60)
            thread.heal_all()
        wl.stop()
        try:
            # the nemesis healed its own faults; anything still broken now broke by
            # itself (a service that crashed): repaired, and reported in the verdict
            repaired_after = ctx.heal_everything()
            for what in repaired_after:
                history.add("info", NOTE, "repair", what)
        finally:
            _active_file(ctx).unlink(missing_ok=True)
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)

    verdicts: list[Verdict] = []
    try:
        if interrupted is None and failed is None:
            progress(f"faults healed; letting {ctx.name} recover, then reading back what survived")
            try:
                wl.final_phase(recover_s)
            except Exception as e:  # noqa: BLE001 - recorded in the verdict
                history.add("info", NOTE, "final-error", None, error=f"{type(e).__name__}: {e}")
            progress("checking the history")
            verdicts = wl.check()
        wl.teardown()
    finally:
        history.close()
        for name, lg in loggers.items():
            lg.removeHandler(client_log)
            lg.propagate, level = saved[name]
            lg.setLevel(level)
        client_log.close()
    verdict = merge(verdicts) if verdicts else {"valid": UNKNOWN, "checkers": []}
    if interrupted is not None:
        verdict["valid"] = UNKNOWN
        verdict["reason"] = f"the run was interrupted ({interrupted}); faults were healed"
    elif failed is not None:
        verdict["valid"] = UNKNOWN
        verdict["reason"] = f"the run failed: {failed}; faults were healed"
    verdict.update(
        {
            "workload": workload,
            "nemesis": names,
            "seed": seed,
            "lab": ctx.name,
            "operations": sum(1 for op in history if op.type == "invoke"),
            "nemesis_errors": thread.errors if thread is not None else [],
            "repaired_before_run": repaired_before,
            "repaired_after_run": repaired_after,
        }
    )
    (run_dir / "verdict.json").write_text(json.dumps(verdict, indent=1, default=str))
    try:
        from .report import write_report

        write_report(run_dir)
    except Exception as e:  # noqa: BLE001 - a verdict without a report still stands
        (run_dir / "report-error.txt").write_text(f"{type(e).__name__}: {e}\n")
    if interrupted is not None:
        stop = KeyboardInterrupt(interrupted)
        stop.run_dir = run_dir  # the caller still says where the (unknown) verdict is
        raise stop
    return run_dir


def verdict_word(valid) -> str:
    """A verdict as people say it: True -> valid, False -> invalid, else unknown."""
    return {True: "valid", False: "invalid"}.get(
        valid, "unknown" if valid != "incomplete" else valid
    )


def list_runs(runs_dir: str | Path | None = None) -> list[dict]:
    """Every run folder, newest first: {dir, started, lab, workload, nemesis, seed, valid}."""
    root = Path(runs_dir) if runs_dir else runs_root()
    out = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir(), reverse=True):
        try:
            meta = json.loads((d / "run.json").read_text())
        except (OSError, ValueError):
            continue
        try:
            v = json.loads((d / "verdict.json").read_text())
            valid = v.get("valid")
            anomalies = sum(len(c.get("anomalies", [])) for c in v.get("checkers", []))
        except (OSError, ValueError):
            valid, anomalies = "incomplete", None
        out.append(
            {
                "dir": str(d),
                "name": d.name,
                "started": meta.get("started"),
                "lab": meta.get("lab"),
                "workload": meta.get("workload"),
                "nemesis": ",".join(meta.get("nemesis", [])),
                "seed": meta.get("seed"),
                "time_s": meta.get("time_s"),
                "valid": valid,
                "verdict": verdict_word(valid),
                "anomalies": anomalies,
            }
        )
    return out


def find_run(name: str | None = None, runs_dir: str | Path | None = None) -> Path:
    """A run folder by path, by name (or a unique prefix of it), or the latest run."""
    if name and Path(name).is_dir():
        return Path(name)
    runs = list_runs(runs_dir)
    if not runs:
        raise ChaosError("no chaos runs yet: start one with `lab chaos run`")
    if not name:
        return Path(runs[0]["dir"])
    hits = [r for r in runs if r["name"].startswith(name)]
    if len(hits) != 1:
        raise ChaosError(
            f"no chaos run named {name}" if not hits else f"{name} names {len(hits)} runs"
        )
    return Path(hits[0]["dir"])


def report(run: str | Path | None = None, runs_dir: str | Path | None = None) -> Path:
    """The report.html of a run (made again from its history if missing)."""
    from .report import write_report

    d = find_run(str(run) if run else None, runs_dir)
    html = d / "report.html"
    if not html.exists():
        write_report(d)
    return html


def summary(run: str | Path | None = None, runs_dir: str | Path | None = None) -> dict:
    """What `lab chaos run` prints at the end and `--json` emits: the verdict with one
    line per checker and the first anomalies, and where the report is."""
    d = find_run(str(run) if run else None, runs_dir)
    verdict = json.loads((d / "verdict.json").read_text())
    lines = []
    for c in verdict.get("checkers", []):
        lines.append(f"{c['checker']}: {verdict_word(c['valid'])} - {c.get('reason', '')}")
        lines += [f"  {a['type']}: {a.get('message', '')}" for a in c.get("anomalies", [])[:5]]
    if verdict.get("reason"):
        lines.append(verdict["reason"])
    lines += [f"repaired after the run: {r}" for r in verdict.get("repaired_after_run", [])]
    lines += [f"nemesis error: {e}" for e in verdict.get("nemesis_errors", [])]
    return {
        "run_dir": str(d),
        "report": str(d / "report.html"),
        "valid": verdict.get("valid"),
        "verdict_word": verdict_word(verdict.get("valid")),
        "lines": lines,
        "verdict": verdict,
    }
