"""The command line as a new user meets it, with no lab up: help on every command,
--version, usage errors as one sentence, --json anywhere with errors as JSON, the
service commands' own help, validate as strict as up, chaos run folders by full name.

Every check runs the real `lab` command and reads what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lab.bench import updown
from tests.chaos.test_report import make_run

from .clirun import command_modules, command_tree, json_of, lab, one_error

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TREE = command_tree()
LEAVES = [path for path, is_group in TREE if not is_group]


@pytest.fixture(scope="module")
def helps(tmp_path_factory):
    """`lab ... --help` for every command, with no lab up (a home of its own)."""
    env = {"RACKLAB_HOME": str(tmp_path_factory.mktemp("home"))}
    with ThreadPoolExecutor(4) as pool:
        results = pool.map(lambda p: lab(*p, "--help", env=env), [p for p, _ in TREE])
    return {" ".join(p): r for (p, _), r in zip(TREE, results, strict=True)}


def test_the_tree_has_the_commands_a_user_reads_about():
    names = {" ".join(p) for p, _ in TREE}
    for must in ("up", "down", "status", "kafka", "hdfs", "yarn", "zk", "chaos run"):
        assert must in names


def test_every_command_answers_help_with_usage_and_an_example(helps):
    for path, _ in TREE:
        r = helps[" ".join(path)]
        where = " ".join(["lab", *path])
        assert r.returncode == 0, (where, r.stderr)
        assert r.stdout.startswith(f"Usage: {where} "), (where, r.stdout[:200])
        assert "<bool>" not in r.stdout, where  # flags are flags, not "<bool>" values
        assert [line for line in r.stdout.splitlines() if len(line) > 80] == [], where


MODULES = command_modules()


@pytest.mark.parametrize("module", sorted(set(MODULES.values())))
def test_every_command_shows_an_example(helps, module):
    mine = [p for p, m in MODULES.items() if m == module]
    missing = [p for p in mine if "Example" not in helps[p].stdout]
    assert missing == [], "--help shows no example"


def test_help_keeps_square_brackets(helps):
    # rich markup used to eat "[--lab L] [ls|get|...]" and print "zk ... [--lab L] ."
    assert "Usage: lab zk [--lab NAME] [COMMAND [ARGS...]]" in helps["zk"].stdout
    assert "lab exec NODE -- CMD [ARGS...]" in helps["exec"].stdout


def test_the_four_service_commands_show_their_own_help_with_no_lab(helps):
    assert "dfs -put [-f] [-d] LOCAL... DST" in helps["hdfs"].stdout
    assert "fsck PATH" in helps["hdfs"].stdout
    assert "create [-s] [-e] [-c] [-t ttl] path [data] [acl]" in helps["zk"].stdout
    assert "produce TOPIC [--key K] [--partition P]" in helps["kafka"].stdout
    assert "application -list" in helps["yarn"].stdout
    for name in ("hdfs", "zk", "kafka", "yarn"):
        assert "no lab is up" not in helps[name].stdout + helps[name].stderr
        assert "python -m" not in helps[name].stdout and "cli_support" not in helps[name].stdout


def test_version():
    r = lab("--version")
    assert (
        r.returncode == 0 and r.stdout.startswith("racklab ") and r.stdout.split()[1][0].isdigit()
    )


def test_completion_is_offered():
    r = lab("--show-completion", env={"SHELL": "/bin/bash"})
    assert r.returncode == 0 and "complete" in r.stdout


def test_a_usage_mistake_is_one_sentence_with_exit_code_2():
    r = lab("status", "--frob")
    assert r.returncode == 2
    assert one_error(r) == "error: lab status: no such option: --frob (see `lab status --help`)"


def test_every_command_with_json_gives_its_errors_as_json(helps, tmp_path):
    # an option no command has: the command is refused before it does anything, so this
    # is safe for `images rm`, `clean` and the benchmarks too
    takes_json = [p for p in LEAVES if "--json" in helps[" ".join(p)].stdout]
    assert ["status"] in takes_json and ["kafka"] in takes_json and ["chaos", "run"] in takes_json
    env = {"RACKLAB_HOME": str(tmp_path)}
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda p: lab(*p, "--json", "--no-such-option", env=env), takes_json)
        )
    for path, r in zip(takes_json, results, strict=True):
        assert r.returncode == 2, (path, r.stdout, r.stderr)
        data = json_of(r)
        assert data["exit_code"] == 2 and data["error"], (path, data)


def test_json_before_the_command_works_as_after_it(tmp_path):
    env = {"RACKLAB_HOME": str(tmp_path)}
    before, after = lab("--json", "status", env=env), lab("status", "--json", env=env)
    assert before.returncode == after.returncode == 2
    assert (
        json_of(before)
        == json_of(after)
        == {
            "error": "no lab is up: start one with `lab up FILE`",
            "exit_code": 2,
        }
    )


def test_a_lab_is_named_with_lab_where_it_was_positional(tmp_path):
    env = {"RACKLAB_HOME": str(tmp_path)}
    for cmd in (["down"], ["chaos", "heal"]):
        r = lab(*cmd, "--lab", "cli-none", env=env)
        assert r.returncode == 2
        assert one_error(r) == "error: no lab named cli-none is up (labs: none)", cmd
    r = lab("down", "cli-a", "--lab", "cli-b", env=env)
    assert r.returncode == 2 and "two labs named" in one_error(r)


def test_zk_refuses_an_unknown_command_as_zkcli_does():
    r = lab("zk", "srvr")
    assert r.returncode == 127  # zkCli.sh's code
    assert one_error(r).startswith("error: Command not found: Command not found srvr")


def test_kafka_checks_its_arguments_before_looking_for_a_lab(tmp_path):
    env = {"RACKLAB_HOME": str(tmp_path)}
    r = lab("kafka", "produce", "demo", "x", "--partition", "-1", env=env)
    assert r.returncode == 2
    assert one_error(r) == "error: lab kafka produce: --partition must be 0 or more"
    r = lab("kafka", "frob", env=env)
    assert r.returncode == 2 and "invalid choice: 'frob'" in one_error(r)


def test_yarn_refuses_an_unknown_command_in_one_sentence(tmp_path):
    r = lab("yarn", "frob", env={"RACKLAB_HOME": str(tmp_path)})  # no lab needed to say so
    assert r.returncode == 2
    assert one_error(r) == (
        "error: unknown yarn command 'frob': use jar, application, node or logs (lab yarn --help)"
    )


def test_hdfs_refuses_an_unknown_command_as_hadoop_does(tmp_path):
    r = lab("hdfs", "frob", env={"RACKLAB_HOME": str(tmp_path)})  # no lab needed to say so
    assert r.returncode == 255  # Hadoop's shell's code for bad usage
    assert r.stderr.startswith("frob: Unknown command\nUsage: hdfs ")


def test_the_shells_without_json_say_so():
    r = lab("hdfs", "dfs", "-ls", "/", "--json")
    assert r.returncode == 2
    assert (
        json_of(r)["error"] == "lab hdfs prints what the real tool prints and has no --json output"
    )
    r = lab("exec", "n1", "--json", "--", "hostname")
    assert r.returncode == 2
    assert json_of(r)["error"].startswith("lab exec prints what the command prints")


def test_bench_refuses_zero_runs():
    r = lab("bench", "overhead", "--runs", "0")
    assert r.returncode == 2 and "--runs" in one_error(r)


def test_graph_writes_the_format_its_output_names(tmp_path):
    out = tmp_path / "lab.pdf"
    r = lab("graph", str(EXAMPLES / "quickstart.yaml"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:4] == b"%PDF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.pdf"]
    r = lab("graph", str(EXAMPLES / "quickstart.yaml"), "-o", str(tmp_path / "lab.gif"))
    assert r.returncode == 2 and "writes .svg, .png, .pdf" in one_error(r)


# validate as strict as up

BASE = """name: cli-v
racks:
  r1: {nodes: [n1, n2]}
"""


def test_validate_suggests_the_key_meant(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text("name: cli-v\ndefaults: {cpu: 1}\nracks:\n  r1: {nodes: [n1]}\n")
    r = lab("validate", str(f))
    assert r.returncode == 2
    assert one_error(r) == f"error: {f}:2: defaults.cpu: unknown field; did you mean cpus?"
    f.write_text(BASE + "services:\n  zookeper: {nodes: [n1]}\n")
    r = lab("validate", str(f))
    assert r.returncode == 2 and one_error(r).endswith("did you mean zookeeper?")


def test_validate_warns_about_settings_that_cannot_work(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text(BASE + "services:\n  zookeeper: {nodes: [n1]}\n"
                 "  kafka: {nodes: [n1], min.insync.replicas: 2}\n"
                 "  hdfs: {namenode: n1, datanodes: [n2], dfs.replication: 3}\n")  # fmt: skip
    r = lab("validate", str(f))
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {f}:7: services.hdfs.dfs.replication: 3 replicas cannot be placed on 1 "
        "DataNode: every block would stay under-replicated",
        f"warning: {f}:6: services.kafka.min.insync.replicas: 2 in-sync replicas need 2 "
        "brokers and the lab has 1: every write with acks=all would be refused",
    ]
    assert len(json_of(lab("validate", str(f), "--json"))["warnings"]) == 2


def test_validate_refuses_a_supernet_the_host_routes(tmp_path):
    import ipaddress
    import subprocess

    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    nets = [ipaddress.ip_network(w.split()[0]) for w in routes.splitlines()
            if w.split()[0][0].isdigit() and "/" in w.split()[0]]  # fmt: skip
    nets = [n for n in nets if 16 <= n.prefixlen <= 24]
    if not nets:
        pytest.skip("the host routes no /16../24 network")
    net = nets[0].supernet(new_prefix=16)
    f = tmp_path / "lab.yaml"
    f.write_text(BASE + f"network: {{supernet: {net}}}\n")
    r = lab("validate", str(f))
    assert r.returncode == 2
    assert one_error(r).startswith(f"error: {f}:4: network.supernet: {net} overlaps")


def test_three_racks_example_has_the_ensemble_its_comment_promises():
    text = (EXAMPLES / "three-racks.yaml").read_text()
    assert "ZooKeeper ensemble spread over the racks" in " ".join(text.replace("#", "").split())
    data = json_of(lab("validate", str(EXAMPLES / "three-racks.yaml"), "--json"))
    assert data["services"] == ["zookeeper"] and data["warnings"] == []


# chaos run folders


@pytest.fixture
def runs(tmp_path):
    bad = make_run(tmp_path, "20260101T000100-demo-zk-register-kill-s2", stale=True)
    good = make_run(tmp_path, "20260101T000000-demo-zk-register-kill-s1", stale=False)
    return {"RACKLAB_RUNS": str(tmp_path)}, good, bad


def test_chaos_runs_names_runs_whole_with_the_verdict_in_words(runs):
    env, good, bad = runs
    r = lab("chaos", "runs", env=env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["verdict", "anomalies", "run"]
    assert [line.split()[0] for line in lines[1:]] == ["invalid", "valid"]
    names = [line.split()[-1] for line in lines[1:]]
    assert names == [bad.name, good.name]  # whole, on an 80-column terminal
    # what the user copies from the list is what `lab chaos report` takes
    r = lab("chaos", "report", names[1], env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"{good / 'report.html'}\n"  # one line, however long
    data = json_of(lab("chaos", "runs", "--json", env=env))
    assert [(d["name"], d["verdict"]) for d in data] == [
        (bad.name, "invalid"),
        (good.name, "valid"),
    ]


def test_a_nemesis_list_that_cannot_all_fire_is_refused():
    # every listed nemesis gets scheduled, or the run is refused before a lab is looked at
    r = lab("chaos", "run", "--workload", "kafka-queue", "--nemesis", "kill,delay,pause",
            "--time", "60")  # fmt: skip
    assert r.returncode == 2
    assert one_error(r) == (
        "error: a 60 s run fits 2 faults with --interval 10, so pause would never fire: "
        "give --time 75 or more, or a shorter --interval"
    )


@pytest.mark.slow  # a real (quick) benchmark run: about half a minute
def test_bench_overhead_table_fits_80_columns_and_says_which_way_is_better(tmp_path):
    r = lab("bench", "overhead", "--kinds", "native,process", "--quick",
            env={"RACKLAB_RUNS": str(tmp_path)}, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert [line for line in lines[:-1] if len(line) > 80] == []  # the last: the plot's path
    assert "memory bandwidth, MiB/s (higher is better)" in lines
    assert "network round trip, ms (lower is better)" in lines
    assert "mem_mib_s" not in r.stdout and "e+0" not in r.stdout  # words, plain numbers
    assert lines[-1] == f"plot: {tmp_path / 'overhead' / 'overhead.png'}"  # not ./runs


def test_graph_of_thirty_nodes_stays_a_readable_page_with_a_legend(tmp_path):
    import re

    out = tmp_path / "racks.svg"
    r = lab("graph", str(EXAMPLES / "three-racks.yaml"), "-o", str(out))
    assert r.returncode == 0, r.stderr
    svg = out.read_text()
    width, height = (
        float(x) for x in re.search(r'width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups()
    )
    assert width < 1000 and height < 1600, (width, height)  # was a 2925 x 305 strip
    assert ">legend<" in svg and ">zookeeper<" in svg and ">rack rb (bridge br&#45;rb)<" in svg


def test_validate_warns_about_a_misspelt_setting(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text(BASE + "services:\n  hdfs: {namenode: n1, datanodes: [n2], dfs.replicaton: 1,"
                 " my.own.key: 1}\n")  # fmt: skip
    r = lab("validate", str(f))
    assert r.returncode == 0, r.stderr  # a key nobody reads is passed on, as Hadoop does
    assert [line for line in r.stderr.splitlines() if line.startswith("warning:")] == [
        f"warning: {f}:5: services.hdfs.dfs.replicaton: not a key hdfs reads; "
        "did you mean dfs.replication?"
    ]


def test_help_topics_and_commands():
    r = lab("help")
    assert r.returncode == 0 and "  chaos " in r.stdout and "  topology " in r.stdout
    assert [line for line in r.stdout.splitlines() if len(line) > 80] == []
    r = lab("help", "chaos")
    assert r.returncode == 0 and r.stdout == (ROOT / "docs" / "CHAOS.md").read_text()
    assert lab("help", "chaos", "run").stdout == lab("chaos", "run", "--help").stdout
    r = lab("help", "frob")
    assert r.returncode == 2 and "no such command 'frob'" in one_error(r)


def test_bench_updown_table_fits_80_columns(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text("name: cli-u\nracks:\n  r1: {nodes: [n1]}\n")  # one node: seconds
    r = lab("bench", "updown", "--runs", "1", str(f), env={"RACKLAB_HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert [line for line in lines if len(line) > 80] == []
    assert lines[3].split()[:4] == ["lab", "nodes", "up", "(command)"]
    assert lines[4].split()[:2] == ["cli-u", "1"]
    cpu = lines[lines.index(next(x for x in lines if x.startswith("lab") and "floor" in x)) + 1]
    assert cpu.split()[0] == "cli-u" and cpu.endswith(" s")  # the CPU the up took
    # the run's time beside the CPUs the rest of the machine kept busy meanwhile
    up, others = lines[-1].split()[1].split("/")
    assert lines[-1].split()[0] == "cli-u" and float(up) > 0 and float(others) >= 0


def test_bench_updown_against_another_checkout_alternates_and_gives_the_ratio(tmp_path):
    f = tmp_path / "lab.yaml"
    f.write_text("name: cli-v\nracks:\n  r1: {nodes: [n1]}\n")
    r = subprocess.run(
        [sys.executable, "-m", "lab.bench.updown", "--runs", "1", "--against", str(ROOT),
         "--json", str(f)],
        capture_output=True, text=True, env={**os.environ, "RACKLAB_HOME": str(tmp_path)},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [row["lab"] for row in report["labs"]] == ["cli-v", "cli-v*"]
    assert all(len(row["up_s"]) == 1 for row in report["labs"])
    lines = []
    updown.print_table(report, write=lines.append)
    assert any(line.startswith("# cli-v: up (command) ") for line in lines), lines
