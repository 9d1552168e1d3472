"""YARN job completion: every submitted job ends, either finished with the right output
or failed with a diagnostic that says why; none is left hanging.

History ops:
  submit  invoke value {job, ...}; ok value application id
  final   after healing, one per accepted application; ok value {app, state,
          final_status, diagnostics, output_ok (True/False, None when not checked)}
"""

from __future__ import annotations

from lab.chaos.history import OK, History, pairs

from .base import Verdict, judged

ENDED = {"FINISHED", "FAILED", "KILLED"}


def check(history: History) -> Verdict:
    ps = sorted(pairs(history), key=lambda p: p.invoke.index)
    accepted = {p.complete.value: p for p in ps if p.f == "submit" and p.type == OK}
    finals = {p.invoke.value: p for p in ps if p.f == "final"}
    anomalies = []
    outcome = {"succeeded": 0, "failed": 0}
    for app, sub in accepted.items():
        f = finals.get(app)
        if f is None or f.type != OK:
            why = f.complete.error if f is not None and f.complete is not None else None
            anomalies.append(
                {
                    "type": "unknown-outcome",
                    "app": app,
                    "message": f"{app} ({sub.invoke.value.get('job')}) was accepted but its end "
                    f"state could not be read{': ' + why if why else ''}",
                }
            )
            continue
        v = f.complete.value
        state, final = v.get("state"), v.get("final_status")
        if state not in ENDED:
            anomalies.append(
                {
                    "type": "unfinished",
                    "app": app,
                    "state": state,
                    "message": f"{app} is still {state} after the run",
                }  # fmt: skip
            )
        elif final == "SUCCEEDED":
            outcome["succeeded"] += 1
            if v.get("output_ok") is False:
                anomalies.append(
                    {
                        "type": "wrong-output",
                        "app": app,
                        "message": f"{app} succeeded but its output is wrong: {v.get('output_error', '')}",
                    }  # fmt: skip
                )
        else:
            outcome["failed"] += 1
            if not (v.get("diagnostics") or "").strip():
                anomalies.append(
                    {
                        "type": "silent-failure",
                        "app": app,
                        "final_status": final,
                        "message": f"{app} ended {final} without a diagnostic",
                    }  # fmt: skip
                )
    stats = {"submitted": sum(p.f == "submit" for p in ps), "accepted": len(accepted), **outcome}
    return judged("yarn-jobs", anomalies, stats)


__all__ = ["check", "Verdict"]
