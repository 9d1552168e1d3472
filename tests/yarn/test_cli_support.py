"""`lab yarn ...` logic (lab/services/yarn/cli_support.py) against a running stack."""

import collections
import json

import pytest

from lab.services.yarn import cli_support
from lab.services.yarn.cli_support import YarnCliError, yarn_command
from lab.services.yarn.mapreduce import client


def run(argv, y, dfs, as_json=False):
    out: list[str] = []
    code = yarn_command(
        argv, y.url, dfs.url, as_json=as_json, write=out.append, progress=lambda s: None
    )
    return code, "\n".join(out)


def test_jar_application_node_and_logs(stack):
    dfs, y, texts = stack
    code, text = run(
        [
            "jar",
            "wordcount",
            "/data/in/part0.txt,/data/in/part1.txt",
            "/cli/wc",
            "-D",
            "mapreduce.map.memory.mb=128",
            "-Dmapreduce.job.reduces=2",
        ],
        y,
        dfs,
    )
    assert code == 0, text
    assert "completed: SUCCEEDED" in text and "Data-local map tasks=" in text
    expected = collections.Counter(
        w for p in ("/data/in/part0.txt", "/data/in/part1.txt") for w in texts[p].split()
    )
    got = {
        k: int(v)
        for k, v in (ln.split("\t") for ln in client.read_output(dfs.url, "/cli/wc").splitlines())
    }
    assert got == expected

    code, text = run(["application", "-list", "-appStates", "FINISHED"], y, dfs)
    assert code == 0 and "Total number of applications" in text and "wordcount" in text
    code, listing = run(["application", "-list", "-appStates", "ALL"], y, dfs, as_json=True)
    apps = json.loads(listing)
    aid = next(a["id"] for a in apps if a["name"] == "wordcount")
    assert (
        run(["application", "-kill", aid], y, dfs)[1] == f"Application {aid} has already finished"
    )

    code, text = run(["node", "-list"], y, dfs)
    assert text.splitlines()[0] == "Total Nodes:3"

    code, text = run(["logs", "-applicationId", aid], y, dfs)
    assert code == 0
    assert text.count("LogType:stdout") >= 4  # the AM, two or more maps, the reducers
    assert "done:" in text  # a task's own stdout line


def test_kill_running_application(yarn):
    aid = yarn.submit("sleep 60")
    msg = cli_support.application_kill(yarn.url, aid)
    assert msg.endswith(f"Killed application {aid}")
    assert yarn.app(aid)["state"] == "KILLED"


def test_user_mistakes_are_one_sentence(stack):
    dfs, y, _ = stack
    with pytest.raises(YarnCliError, match="app with id: application_1_0042 not found"):
        run(["application", "-kill", "application_1_0042"], y, dfs)
    with pytest.raises(YarnCliError, match="Input path does not exist"):
        run(["jar", "wordcount", "/nope", "/cli/nope"], y, dfs)
    with pytest.raises(YarnCliError, match="unknown job 'pi'"):
        run(["jar", "pi", "/data/in", "/cli/pi"], y, dfs)
    with pytest.raises(YarnCliError, match="usage"):
        run(["node"], y, dfs)
    with pytest.raises(YarnCliError, match="cannot reach the ResourceManager"):
        yarn_command(["node", "-list"], "http://127.0.0.1:1", None, write=lambda s: None)


def test_endpoints_from_lab_state():
    state = {
        "name": "q",
        "network": {"nodes": {"n1": "10.61.1.10", "n2": "10.61.1.11"}},
        "services": {
            "yarn-resourcemanager-n1": {"service": "yarn", "role": "resourcemanager", "node": "n1"},
            "hdfs-namenode-n2": {"service": "hdfs", "role": "namenode", "node": "n2"},
        },
    }
    assert cli_support.endpoints(state) == ("http://10.61.1.10:8088", "http://10.61.1.11:9870")
    with pytest.raises(YarnCliError, match="runs no YARN"):
        cli_support.endpoints({"name": "z", "network": {"nodes": {}}, "services": {}})


def test_rich_console_output_is_not_read_as_markup(yarn):
    from rich.console import Console

    aid = yarn.submit("echo '[/tmp] [pid=1,bold]' >&2; exit 1", max_attempts=1)
    yarn.wait_app(aid)
    console = Console(width=200)
    with console.capture() as captured:
        code = yarn_command(["logs", "-applicationId", aid], yarn.url, None, write=console.print)
    assert code == 0
    assert "[/tmp] [pid=1,bold]" in captured.get()
