"""The run report: one HTML page a person can read, with two plots.

- latency: each operation at the time it was invoked, how long it took (log scale),
  by outcome (ok, fail, info) and kind; info operations, whose end nobody saw, are
  drawn at the top edge
- throughput: completed operations per second, by outcome

Fault periods from the nemesis entries are shaded on both, labelled with the fault.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

from .history import FAIL, INFO, OK, fault_periods, load, pairs

COLORS = {OK: "#2a9d8f", FAIL: "#e76f51", INFO: "#f4a261"}
SHADES = ["#8ecae6", "#ffb703", "#cdb4db", "#bde0fe", "#ffafcc", "#caffbf"]


def _shade(ax, periods, end, labels: bool) -> None:
    kinds = sorted({p["fault"] for p in periods})
    for p in periods:
        color = SHADES[kinds.index(p["fault"]) % len(SHADES)]
        stop = p["end"] if p["end"] is not None else end
        ax.axvspan(p["start"], stop, color=color, alpha=0.35, lw=0,
                   label=p["fault"] if labels and p is _first(periods, p["fault"]) else None)  # fmt: skip


def _first(periods, kind):
    return next(p for p in periods if p["fault"] == kind)


def plot(history, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = pairs(history)
    periods = fault_periods(history)
    end = max((op.time for op in history), default=1.0) or 1.0
    names = []

    fig, ax = plt.subplots(figsize=(10, 4.2))
    _shade(ax, periods, end, labels=True)
    done = [p for p in ps if p.complete is not None]
    top = max([p.complete.time - p.start for p in done if p.type != INFO] or [1.0]) * 1000 * 1.5
    markers = {}
    for p in done:
        markers.setdefault(p.f, "osv^D<>p*"[len(markers) % 9])
    for kind in (OK, FAIL, INFO):
        for f, m in markers.items():
            sel = [p for p in done if p.type == kind and p.f == f]
            if not sel:
                continue
            xs = [p.start for p in sel]
            ys = [
                top if kind == INFO else max(0.01, (p.complete.time - p.start) * 1000) for p in sel
            ]
            ax.scatter(xs, ys, s=9, c=COLORS[kind], marker=m, label=f"{f} {kind}", alpha=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title("operation latency (info: outcome unknown, drawn at the top)")
    ax.set_xlim(0, end)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper left", ncol=4, framealpha=0.8)
    fig.tight_layout()
    fig.savefig(out_dir / "latency.png", dpi=100)
    plt.close(fig)
    names.append("latency.png")

    fig, ax = plt.subplots(figsize=(10, 3.4))
    _shade(ax, periods, end, labels=True)
    width = 1.0
    bins = int(end // width) + 1
    for kind in (OK, FAIL, INFO):
        counts = Counter(int(p.complete.time // width) for p in done if p.type == kind)
        xs = [i * width for i in range(bins)]
        ax.plot(xs, [counts.get(i, 0) / width for i in range(bins)], color=COLORS[kind],
                label=kind, drawstyle="steps-post")  # fmt: skip
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("operations / s")
    ax.set_title("throughput by outcome")
    ax.set_xlim(0, end)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", ncol=6)
    fig.tight_layout()
    fig.savefig(out_dir / "throughput.png", dpi=100)
    plt.close(fig)
    names.append("throughput.png")
    return names


def _repairs(verdict: dict) -> str:
    """Things still broken after the nemesis healed its own faults: they broke by
    themselves (a crashed service), which a reader must not miss."""
    after = verdict.get("repaired_after_run") or []
    errors = verdict.get("nemesis_errors") or []
    out = ""
    if after:
        out += (
            "<p><b>Broken after the faults were healed (repaired):</b> "
            + _esc("; ".join(after))
            + "</p>"
        )
    if errors:
        out += "<p><b>Nemesis errors:</b> " + _esc("; ".join(errors)) + "</p>"
    return out


def _esc(x) -> str:
    return html.escape(str(x))


def write_report(run_dir: str | Path) -> Path:
    d = Path(run_dir)
    meta = json.loads((d / "run.json").read_text())
    try:
        verdict = json.loads((d / "verdict.json").read_text())
    except (OSError, ValueError):
        verdict = {"valid": "unknown", "reason": "the run left no verdict", "checkers": []}
    history = load(d / "history.jsonl")
    images = plot(history, d)
    ps = pairs(history)
    outcome = Counter(p.type for p in ps)
    valid = verdict.get("valid")
    badge = {True: ("VALID", "#2a9d8f"), False: ("INVALID", "#e63946")}.get(
        valid, ("UNKNOWN", "#f4a261")
    )
    rows = []
    for c in verdict.get("checkers", []):
        v = c["valid"]
        rows.append(
            f"<tr><td>{_esc(c['checker'])}</td><td>{_esc(v)}</td><td>{_esc(c.get('reason', ''))}"
            f"</td><td><code>{_esc(json.dumps(c.get('stats', {})))}</code></td></tr>"
        )
    anomalies = [a for c in verdict.get("checkers", []) for a in c.get("anomalies", [])]
    alist = "".join(
        f"<li><b>{_esc(a['type'])}</b>: {_esc(a.get('message', json.dumps(a)))}</li>"
        for a in anomalies[:200]
    )
    faults = "".join(
        f"<tr><td>{op.time:.2f}</td><td>{_esc(op.f)}</td><td>{_esc(op.value)}</td>"
        f"<td>{_esc(op.extra.get('description', op.error or ''))}</td></tr>"
        for op in history.nemesis_ops()
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>chaos run {_esc(d.name)}</title>
<style>body{{font-family:sans-serif;max-width:1050px;margin:1em auto}}
td,th{{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}}
table{{border-collapse:collapse}} .badge{{color:#fff;padding:3px 10px;border-radius:4px}}
code{{font-size:85%}}</style></head><body>
<h1>{_esc(meta["workload"])} under {_esc(", ".join(meta["nemesis"]))}
<span class="badge" style="background:{badge[1]}">{badge[0]}</span></h1>
<p>{_esc(verdict.get("reason", ""))}</p>
<table>
<tr><th>lab</th><td>{_esc(meta["lab"])}</td></tr>
<tr><th>started</th><td>{_esc(meta["started"])}</td></tr>
<tr><th>time, rate, clients</th><td>{meta["time_s"]:g} s, {meta["rate"]:g} op/s,
 {meta["concurrency"]} clients</td></tr>
<tr><th>schedule</th><td>{_esc(meta["schedule_mode"])}, interval {meta["interval"]:g} s,
 seed {meta["seed"]} (repeat with --seed {meta["seed"]})</td></tr>
<tr><th>operations</th><td>{len(ps)}: {outcome.get(OK, 0)} ok, {outcome.get(FAIL, 0)} fail,
 {outcome.get(INFO, 0)} info (outcome unknown)</td></tr>
</table>
{_repairs(verdict)}
<h2>Checkers</h2>
<table><tr><th>checker</th><th>valid</th><th>summary</th><th>stats</th></tr>{"".join(rows)}</table>
<h2>Anomalies ({len(anomalies)})</h2><ul>{alist or "<li>none</li>"}</ul>
<h2>Plots</h2>
{"".join(f'<p><img src="{i}" alt="{i}" style="max-width:100%"></p>' for i in images)}
<h2>Faults</h2>
<table><tr><th>t (s)</th><th>event</th><th>fault</th><th>what</th></tr>{faults}</table>
<p>History: <a href="history.jsonl">history.jsonl</a> · verdict:
 <a href="verdict.json">verdict.json</a></p>
</body></html>
"""
    out = d / "report.html"
    out.write_text(page)
    return out
