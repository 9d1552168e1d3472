"""DistributedShell: the simplest ApplicationMaster, as in Hadoop's YARN examples.

Runs ``--num_containers`` copies of ``--shell_command`` in containers of
``--container_memory`` MB, each in its own container, and finishes SUCCEEDED
when all exit 0, FAILED otherwise (with the containers' diagnostics). Shows the
whole AM protocol: register, allocate (asks, progress), launch on NMs, finish.

    python -m lab.services.yarn.distshell --num_containers 4 --shell_command 'sleep 3'
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from . import http


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shell_command", required=True)
    ap.add_argument("--num_containers", type=int, default=1)
    ap.add_argument("--container_memory", type=int, default=128)
    ap.add_argument("--container_vcores", type=int, default=1)
    ap.add_argument("--interval_ms", type=int, default=200)
    args = ap.parse_args(argv)
    attempt = os.environ["APPLICATION_ATTEMPT_ID"]
    rm = f"http://{os.environ['YARN_RM_SCHEDULER_ADDRESS']}/rpc/ApplicationMasterProtocol"

    def rpc(name: str, body: dict) -> dict:
        return http.call(f"{rm}/{name}", dict(body, attemptId=attempt), timeout=30)

    rpc(
        "registerApplicationMaster",
        {"host": os.environ.get("NM_HOST", ""), "rpcPort": -1, "trackingUrl": ""},
    )
    ask = [
        {
            "allocationRequestId": 1,
            "priority": 0,
            "capability": {"memory": args.container_memory, "vCores": args.container_vcores},
            "numContainers": args.num_containers,
        }
    ]
    launched, done, failed = 0, 0, []
    while done < args.num_containers:
        resp = rpc("allocate", {"ask": ask, "progress": done / args.num_containers})
        ask = []
        for c in resp.get("allocatedContainers") or []:
            launched += 1
            req = {
                "containerId": c["id"],
                "resource": c["resource"],
                "user": os.environ.get("USER", "root"),
                "launchContext": {
                    "commands": [args.shell_command + " 1><LOG_DIR>/stdout 2><LOG_DIR>/stderr"],
                    "environment": {},
                },
            }
            http.call(
                f"http://{c['nodeId']}/rpc/ContainerManagementProtocol/startContainers",
                {"requests": [req]},
            )
            print(f"launched {c['id']} on {c['nodeId']}", flush=True)
        for st in resp.get("completedContainersStatuses") or []:
            done += 1
            if st["exitStatus"] != 0:
                failed.append(f"{st['containerId']}: exit {st['exitStatus']}: {st['diagnostics']}")
            print(f"completed {st['containerId']} exit {st['exitStatus']}", flush=True)
        time.sleep(args.interval_ms / 1000)
    status = "FAILED" if failed else "SUCCEEDED"
    diag = (
        f"{len(failed)} of {args.num_containers} containers failed:\n" + "\n".join(failed)
        if failed
        else ""
    )
    rpc("finishApplicationMaster", {"finalApplicationStatus": status, "diagnostics": diag})
    return 0


if __name__ == "__main__":
    sys.exit(main())
