"""What `lab yarn ...` does, shaped after Hadoop's `yarn` command.

lab/cli only parses and prints; it calls ``yarn_command(argv, rm, webhdfs)``
with the words after `lab yarn`, or the single functions below:

    lab yarn jar wordcount|grep|sort IN[,IN...] OUT [-D key=value ...] [--reduces N] [--queue Q]
    lab yarn application -list [-appStates S,...] | -kill APP_ID | -status APP_ID
    lab yarn node -list [-all]
    lab yarn logs -applicationId APP_ID [-containerId CONTAINER_ID]

Endpoints of a running lab come from its saved state (``endpoints(state)``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping

from . import http
from .mapreduce import client

RM_WEBAPP, NN_HTTP = 8088, 9870


class YarnCliError(Exception):
    """A user mistake: one sentence, exit code 2."""


def endpoints(state: Mapping) -> tuple[str, str | None]:
    """(RM web URL, WebHDFS URL) of a lab from its state: services and node addresses."""
    addrs = state["network"]["nodes"]
    rm = nn = None
    for svc in state.get("services", {}).values():
        if svc.get("service") == "yarn" and svc.get("role") == "resourcemanager":
            rm = f"http://{addrs[svc['node']]}:{RM_WEBAPP}"
        if svc.get("service") == "hdfs" and svc.get("role") == "namenode":
            nn = f"http://{addrs[svc['node']]}:{NN_HTTP}"
    if rm is None:
        raise YarnCliError(f"lab {state.get('name', '?')} runs no YARN ResourceManager")
    return rm, nn


def _said(e: http.RpcError) -> str:
    """The RM's refusal for a person: without the Java wrapper Hadoop's REST text has."""
    return e.message.removeprefix("java.lang.Exception: ")


def _get(url: str) -> dict:
    try:
        return http.call(url, timeout=10)
    except http.RpcError as e:
        raise YarnCliError(
            _said(e) if e.status else f"cannot reach the ResourceManager: {e.message}"
        ) from None


# -- jar ---------------------------------------------------------------------------
def jar(
    rm: str,
    webhdfs: str | None,
    job: str,
    inputs: list[str],
    output: str,
    *,
    reduces: int = 1,
    queue: str = "default",
    conf: dict | None = None,
    progress: Callable[[str], None] = lambda s: None,
    timeout: float = 3600,
) -> dict:
    if webhdfs is None:
        raise YarnCliError("MapReduce needs HDFS: this lab runs no NameNode")
    started = time.monotonic()
    try:
        app = client.submit_job(
            rm, webhdfs, job, inputs, output, reduces=reduces, queue=queue, conf=conf
        )
    except (client.JobError, ValueError) as e:
        raise YarnCliError(str(e)) from None
    except Exception as e:  # WebHDFS or RM unreachable
        raise YarnCliError(f"could not submit the job: {e}") from None
    progress(f"Submitted application {app}")
    last = [-1.0]

    def tick(a: dict) -> None:
        if a["progress"] != last[0]:
            last[0] = a["progress"]
            progress(f"{app} {a['state']} {a['progress']:.0f}%")

    rm_app = client.wait_for_job(rm, app, timeout=timeout, on_progress=tick)
    report = client.job_report(webhdfs, app) or {}
    return {
        "application": app,
        "job": "job_" + app[len("application_") :],
        "state": rm_app["state"],
        "finalStatus": rm_app["finalStatus"],
        "diagnostics": rm_app["diagnostics"],
        "elapsed_s": round(time.monotonic() - started, 3),
        "counters": report.get("counters", {}),
        "maps": report.get("mapsTotal"),
        "reduces": report.get("reducesTotal"),
    }


def _aligned(cols: list[str], rows: list[list]) -> list[str]:
    """Header and rows in left-aligned tab-separated columns, as the yarn CLI prints them."""
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows, strict=False)]
    return [
        "\t" + "\t".join(str(x).ljust(w) for x, w in zip(r, widths, strict=False)).rstrip()
        for r in [cols, *rows]
    ]


def format_jar(result: dict) -> str:
    c = result["counters"]
    lines = [
        f"Job {result['job']} completed: {result['finalStatus']} in {result['elapsed_s']:.1f} s",
    ]
    if result["diagnostics"]:
        lines.append(f"Diagnostics: {result['diagnostics']}")
    if c:
        lines.append("Counters:")
        lines.append("\tJob Counters")
        for k, label in (
            ("TOTAL_LAUNCHED_MAPS", "Launched map tasks"),
            ("TOTAL_LAUNCHED_REDUCES", "Launched reduce tasks"),
            ("DATA_LOCAL_MAPS", "Data-local map tasks"),
            ("RACK_LOCAL_MAPS", "Rack-local map tasks"),
            ("OTHER_LOCAL_MAPS", "Other local map tasks"),
            ("NUM_FAILED_MAPS", "Failed map tasks"),
            ("NUM_KILLED_MAPS", "Killed map tasks"),
            ("MAPS_RERUN_FOR_LOST_OUTPUT", "Maps re-run for lost output"),
        ):
            lines.append(f"\t\t{label}={c.get(k, 0)}")
        lines.append("\tMap-Reduce Framework")
        for k in (
            "MAP_INPUT_RECORDS",
            "MAP_OUTPUT_RECORDS",
            "REDUCE_SHUFFLE_BYTES",
            "REDUCE_INPUT_GROUPS",
            "REDUCE_OUTPUT_RECORDS",
        ):
            lines.append(f"\t\t{k.replace('_', ' ').title()}={c.get(k, 0)}")
    return "\n".join(lines)


# -- application ----------------------------------------------------------------------
DEFAULT_LIST_STATES = ["SUBMITTED", "ACCEPTED", "RUNNING"]


def application_list(rm: str, states: list[str] | None = None) -> list[dict]:
    states = [s.upper() for s in (states or DEFAULT_LIST_STATES)]
    q = "" if "ALL" in states else "?states=" + ",".join(states)
    data = _get(f"{rm}/ws/v1/cluster/apps{q}")
    return (data.get("apps") or {}).get("app", [])


def format_application_list(apps: list[dict], states: list[str] | None = None) -> str:
    states = states or DEFAULT_LIST_STATES
    lines = [
        f"Total number of applications (application-types: [], states: [{', '.join(states)}] and tags: []):{len(apps)}"
    ]
    cols = [
        "Application-Id",
        "Application-Name",
        "Application-Type",
        "User",
        "Queue",
        "State",
        "Final-State",
        "Progress",
        "Tracking-URL",
    ]
    rows = [
        [
            a["id"],
            a["name"],
            a["applicationType"],
            a["user"],
            a["queue"],
            a["state"],
            a["finalStatus"],
            f"{a['progress']:.0f}%",
            a["trackingUrl"],
        ]
        for a in apps
    ]
    return "\n".join(lines + _aligned(cols, rows))


def application_status(rm: str, app_id: str) -> dict:
    return _get(f"{rm}/ws/v1/cluster/apps/{app_id}")["app"]


def application_kill(rm: str, app_id: str) -> str:
    app = application_status(rm, app_id)
    if app["state"] in ("FINISHED", "FAILED", "KILLED"):
        return f"Application {app_id} has already finished"
    try:
        http.call(
            f"{rm}/ws/v1/cluster/apps/{app_id}/state", {"state": "KILLED"}, method="PUT", timeout=10
        )
    except http.RpcError as e:
        raise YarnCliError(_said(e)) from None
    return f"Killing application {app_id}\nKilled application {app_id}"


# -- node -------------------------------------------------------------------------------
def node_list(rm: str, all_states: bool = False) -> list[dict]:
    q = "" if all_states else "?states=NEW,RUNNING,UNHEALTHY"
    return (_get(f"{rm}/ws/v1/cluster/nodes{q}").get("nodes") or {}).get("node", [])


def format_node_list(nodes: list[dict]) -> str:
    lines = [f"Total Nodes:{len(nodes)}"]
    cols = [
        "Node-Id",
        "Node-State",
        "Node-Http-Address",
        "Number-of-Running-Containers",
        "Rack",
        "Used-MB",
        "Avail-MB",
    ]
    rows = [
        [
            n["id"],
            n["state"],
            n["nodeHTTPAddress"],
            n["numContainers"],
            n["rack"],
            n["usedMemoryMB"],
            n["availMemoryMB"],
        ]
        for n in nodes
    ]
    return "\n".join(lines + _aligned(cols, rows))


# -- logs ---------------------------------------------------------------------------------
def logs(rm: str, app_id: str, container_id: str | None = None) -> list[dict]:
    """Every container log of an application, read from the NodeManagers that ran it
    (no log aggregation: a lost node's logs are gone with it, as in Hadoop without it)."""
    application_status(rm, app_id)  # unknown ids fail here, in Hadoop's words
    out = []
    for n in node_list(rm, all_states=True):
        if n["state"] != "RUNNING":
            continue
        base = f"http://{n['nodeHTTPAddress']}/ws/v1/node"
        try:
            info = http.call(f"{base}/apps/{app_id}", timeout=10)["app"]
        except http.RpcError:
            continue  # this node ran nothing of the app
        for cid in info["containerids"]:
            if container_id and cid != container_id:
                continue
            listing = http.call(f"{base}/containers/{cid}/logs", timeout=10)
            for f in listing[0]["containerLogInfo"]:
                text = _raw(f"{base}/containerlogs/{cid}/{f['fileName']}")
                out.append({"container": cid, "node": n["id"], "file": f["fileName"], "text": text})
    if container_id and not out:
        raise YarnCliError(f"no logs of container {container_id} on any live NodeManager")
    return out


def _raw(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode("utf-8", "replace")


def format_logs(items: list[dict]) -> str:
    parts = []
    for it in items:
        parts.append(
            f"Container: {it['container']} on {it['node']}\n"
            f"LogAggregationType: LOCAL\n"
            f"{'=' * 60}\nLogType:{it['file']}\nLogLength:{len(it['text'])}\nLog Contents:\n"
            f"{it['text']}\nEnd of LogType:{it['file']}\n"
        )
    return "\n".join(parts)


# -- the `yarn` grammar ----------------------------------------------------------------
USAGE = __doc__.split("\n\n")[2].strip()  # the command lines of the docstring


COMMANDS = ("jar", "application", "node", "logs")


def check_args(argv: list[str]) -> None:
    """The command word checked before any daemon is asked (and before a lab is looked
    for): a mistake is one sentence, whatever state the lab is in."""
    if not argv:
        raise YarnCliError(
            "lab yarn needs a command: jar, application, node or logs (lab yarn --help)"
        )
    if argv[0] not in COMMANDS:
        raise YarnCliError(
            f"unknown yarn command {argv[0]!r}: use jar, application, node or logs (lab yarn --help)"
        )


def yarn_command(
    argv: list[str],
    rm: str,
    webhdfs: str | None,
    *,
    as_json: bool = False,
    write=print,
    progress=None,
) -> int:
    """Run `lab yarn ARGV...`; returns the exit code. Raises YarnCliError on a user mistake."""
    import functools
    import json

    if type(getattr(write, "__self__", None)).__name__ == "Console":
        # A rich Console.print would read "[pid=..]" in diagnostics and "[/..." in logs
        # as markup (and raise on the latter): what we print is plain text.
        write = functools.partial(write, markup=False, highlight=False, soft_wrap=True)

    def emit(data, text: str) -> None:
        write(json.dumps(data, indent=1) if as_json else text)

    if not argv:
        raise YarnCliError(
            "lab yarn needs a command: jar, application, node or logs (lab yarn --help)"
        )
    cmd, args = argv[0], argv[1:]
    if cmd == "jar":
        conf: dict = {}
        reduces, queue, pos = 1, "default", []
        it = iter(args)
        for a in it:
            if a == "-D":
                kv = next(it, "")
                if "=" not in kv:
                    raise YarnCliError(f"-D needs key=value, got {kv!r}")
                k, v = kv.split("=", 1)
                conf[k] = v
            elif a.startswith("-D") and "=" in a:
                k, v = a[2:].split("=", 1)
                conf[k] = v
            elif a in ("--reduces", "-r"):
                n = next(it, "")
                if not n.isdigit() or int(n) < 1:
                    raise YarnCliError(f"{a} needs a number of reduce tasks, 1 or more, got {n!r}")
                reduces = int(n)
            elif a in ("--queue", "-queue"):
                queue = next(it, "default")
            else:
                pos.append(a)
        if "mapreduce.job.reduces" in conf:
            reduces = int(conf.pop("mapreduce.job.reduces"))
        queue = conf.pop("mapreduce.job.queuename", queue)
        if pos[:1] == ["grep"] and len(pos) == 4:  # Hadoop's `grep IN OUT REGEX`
            conf["mapreduce.mapper.regex"] = pos.pop()
        if len(pos) != 3:
            raise YarnCliError(
                "usage: lab yarn jar wordcount|grep|sort IN[,IN...] OUT [REGEX for grep]"
            )
        job, inputs, output = pos
        result = jar(
            rm,
            webhdfs,
            job,
            inputs.split(","),
            output,
            reduces=reduces,
            queue=queue,
            conf=conf,
            progress=progress or (lambda s: print(s, file=sys.stderr)),
        )
        emit(result, format_jar(result))
        return 0 if result["finalStatus"] == "SUCCEEDED" else 1
    if cmd == "application":
        if "-list" in args:
            states = None
            if "-appStates" in args:
                i = args.index("-appStates")
                states = [
                    s.strip().upper()
                    for s in (args[i + 1] if i + 1 < len(args) else "").split(",")
                    if s.strip()
                ]
            apps = application_list(rm, states)
            emit(apps, format_application_list(apps, states))
            return 0
        for flag in ("-kill", "-status"):
            if flag in args:
                i = args.index(flag)
                if i + 1 >= len(args):
                    raise YarnCliError(f"{flag} needs an application id")
                aid = args[i + 1]
                if flag == "-kill":
                    msg = application_kill(rm, aid)
                    emit({"application": aid, "message": msg}, msg)
                else:
                    app = application_status(rm, aid)
                    emit(app, "\n".join(f"\t{k} : {v}" for k, v in app.items()))
                return 0
        raise YarnCliError(
            "usage: lab yarn application -list [-appStates S] | -kill APP_ID | -status APP_ID"
        )
    if cmd == "node":
        if "-list" not in args:
            raise YarnCliError("usage: lab yarn node -list [-all]")
        nodes = node_list(rm, all_states="-all" in args)
        emit(nodes, format_node_list(nodes))
        return 0
    if cmd == "logs":
        if "-applicationId" not in args or args.index("-applicationId") + 1 >= len(args):
            raise YarnCliError(
                "usage: lab yarn logs -applicationId APP_ID [-containerId CONTAINER_ID]"
            )
        aid = args[args.index("-applicationId") + 1]
        cid = (
            args[args.index("-containerId") + 1]
            if "-containerId" in args and args.index("-containerId") + 1 < len(args)
            else None
        )
        items = logs(rm, aid, cid)
        emit(items, format_logs(items))
        return 0
    raise YarnCliError(
        f"unknown yarn command {cmd!r}: use jar, application, node or logs (lab yarn --help)"
    )
