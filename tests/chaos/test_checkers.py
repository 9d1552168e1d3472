"""Each checker fed crafted histories: clean ones pass, and each known anomaly is found."""

from __future__ import annotations

import json

import pytest

from lab.chaos.checkers import UNKNOWN, files, jobs, linearizable, lock, queue
from lab.chaos.checkers.linearizable import CASRegister, Mutex
from lab.chaos.history import History, from_dicts, load, pairs


def op(type, process, f, value=None, **extra):
    d = {"type": type, "process": process, "f": f, "value": value}
    if extra:
        d["extra"] = extra
    return d


def inv(p, f, v=None):
    return op("invoke", p, f, v)


def ok(p, f, v=None, **extra):
    return op("ok", p, f, v, **extra)


def register(entries, initial=0, **kw):
    return linearizable.check(from_dicts(entries), CASRegister(initial), **kw)


# linearizable register


def test_sequential_register_history_is_linearizable():
    v = register(
        [inv(0, "write", 1), ok(0, "write", 1), inv(1, "read"), ok(1, "read", 1),
         inv(1, "cas", [1, 2]), ok(1, "cas", [1, 2]), inv(0, "read"), ok(0, "read", 2)]
    )  # fmt: skip
    assert v.valid is True, v.reason


def test_stale_read_is_found():
    v = register(
        [inv(0, "write", 1), ok(0, "write", 1), inv(0, "write", 2), ok(0, "write", 2),
         inv(1, "read"), ok(1, "read", 1)]
    )  # fmt: skip
    assert v.valid is False
    a = v.anomalies[0]
    assert a["type"] == "not-linearizable"
    assert a["op"]["f"] == "read" and a["op"]["value"] == 1
    assert "2" in a["possible_states"]


def test_read_concurrent_with_a_write_may_see_either_value():
    for seen in (0, 1):
        v = register([inv(0, "write", 1), inv(1, "read"), ok(1, "read", seen), ok(0, "write", 1)])
        assert v.valid is True


def test_lost_write_is_found():
    v = register([inv(0, "write", 7), ok(0, "write", 7), inv(1, "read"), ok(1, "read", 0)])
    assert v.valid is False


def test_unknown_write_may_happen_late_or_never():
    base = [
        inv(0, "write", 3),
        op(
            "info",
            0,
            "write",
            3,
        ),
        inv(1, "read"),
    ]
    assert register(base + [ok(1, "read", 3)]).valid is True
    assert register(base + [ok(1, "read", 0)]).valid is True
    # but once it is seen, it cannot be unseen (no other write could restore 0... except none)
    v = register(base + [ok(1, "read", 3), inv(1, "read"), ok(1, "read", 0)])
    assert v.valid is False


def test_failed_cas_did_not_happen():
    v = register(
        [inv(0, "cas", [0, 5]), op("fail", 0, "cas", [0, 5]), inv(1, "read"), ok(1, "read", 5)]
    )
    assert v.valid is False


def test_cas_acknowledged_with_the_wrong_expected_value_is_found():
    v = register([inv(0, "cas", [1, 2]), ok(0, "cas", [1, 2])])
    assert v.valid is False
    assert "cas 1->2" in v.anomalies[0]["message"]


def test_search_budget_gives_unknown_not_valid():
    entries = []
    for p in range(1, 15):  # many writes of unknown outcome, each seen by a concurrent read
        entries += [inv(p, "write", p), op("info", p, "write", p)]
    entries += [inv(100 + p, "read") for p in range(1, 15)]
    entries += [ok(100 + p, "read", p) for p in range(1, 15)]
    entries += [inv(99, "read"), ok(99, "read", 1000)]
    v = register(entries, max_steps=500)
    assert v.valid == UNKNOWN
    assert "budget" in v.reason
    small = entries[:8] + [inv(100 + p, "read") for p in range(1, 5)]
    small += [ok(100 + p, "read", p) for p in range(1, 5)] + entries[-2:]
    assert register(small).valid is False  # a smaller search ends, and finds the bad read


def test_unobserved_unknown_writes_are_pruned():
    entries = []
    for p in range(200):  # would be 2**200 orders without pruning
        entries += [inv(p, "write", p + 1), op("info", p, "write", p + 1)]
    entries += [inv(999, "read"), ok(999, "read", 0)]
    v = register(entries, max_steps=10_000)
    assert v.valid is True and v.stats["searched"] == 1


def test_mutex_model_finds_double_acquire():
    h = from_dicts([inv(0, "acquire"), ok(0, "acquire"), inv(1, "acquire"), ok(1, "acquire")])
    assert linearizable.check(h, Mutex()).valid is False
    h = from_dicts([inv(0, "acquire"), ok(0, "acquire"), inv(0, "release"), ok(0, "release"),
                    inv(1, "acquire"), ok(1, "acquire")])  # fmt: skip
    assert linearizable.check(h, Mutex()).valid is True


def test_history_round_trips_through_json_lines(tmp_path):
    path = tmp_path / "history.jsonl"
    h = History(path)
    a = h.invoke(0, "write", 1)
    h.complete(a, "ok", 1)
    h.add("info", "nemesis", "start", "partition", id="f1")
    h.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [x["type"] for x in lines] == ["invoke", "ok", "info"]
    back = load(path)
    assert [o.f for o in back] == ["write", "write", "start"]
    assert len(pairs(back)) == 1 and pairs(back)[0].type == "ok"


def test_malformed_history_is_refused():
    with pytest.raises(ValueError, match="still open"):
        pairs(from_dicts([inv(0, "read"), inv(0, "read")]))
    with pytest.raises(ValueError, match="unknown type"):
        from_dicts([{"type": "done", "process": 0, "f": "read"}])


# lock


def test_lock_taken_in_turn_is_fine():
    h = from_dicts([inv(0, "acquire"), ok(0, "acquire"), inv(0, "release"), ok(0, "release"),
                    inv(1, "acquire"), ok(1, "acquire"), inv(1, "release"), ok(1, "release")])  # fmt: skip
    v = lock.check(h)
    assert v.valid is True and v.stats["holds"] == 2


def test_two_lock_holders_are_found():
    h = from_dicts([inv(0, "acquire"), ok(0, "acquire"), inv(1, "acquire"), ok(1, "acquire"),
                    inv(0, "release"), ok(0, "release")])  # fmt: skip
    v = lock.check(h)
    assert v.valid is False
    assert v.anomalies[0]["type"] == "two-holders"
    assert {x["process"] for x in v.anomalies[0]["holders"]} == {0, 1}


def test_unknown_acquire_is_not_a_hold():
    h = from_dicts(
        [inv(0, "acquire"), op("info", 0, "acquire"), inv(1, "acquire"), ok(1, "acquire")]
    )
    assert lock.check(h).valid is True


# kafka queue


def send(p, v, part, off):
    return [inv(p, "send", v), ok(p, "send", [part, off])]


def poll(p, records, **extra):
    return [inv(p, "poll"), ok(p, "poll", records, **extra)]


def test_clean_queue_history():
    h = from_dicts(send(0, 1, 0, 0) + send(0, 2, 0, 1) + poll(5, [[0, 0, 1], [0, 1, 2]])
                   + poll(9, [[0, 0, 1], [0, 1, 2]], final=True))  # fmt: skip
    v = queue.check(h)
    assert v.valid is True, v.anomalies


def test_lost_message_is_found():
    h = from_dicts(send(0, 1, 0, 0) + send(0, 2, 0, 1) + poll(9, [[0, 0, 1]], final=True))
    v = queue.check(h)
    assert v.valid is False
    assert [a["value"] for a in v.anomalies if a["type"] == "lost"] == [2]


def test_everything_lost_from_a_partition_read_empty_at_the_end():
    h = from_dicts(send(0, 1, 0, 0) + poll(9, [], final=True, partitions=[0]))
    assert [a["value"] for a in queue.check(h).anomalies] == [1]


def test_lost_without_final_read_needs_later_offsets_read():
    h = from_dicts(send(0, 1, 0, 0) + send(0, 2, 0, 1) + poll(5, [[0, 1, 2]]))
    v = queue.check(h)
    assert [a["value"] for a in v.anomalies if a["type"] == "lost"] == [1]


def test_duplicated_and_inconsistent_messages_are_found():
    h = from_dicts(send(0, 1, 0, 0) + send(0, 2, 0, 1)
                   + poll(9, [[0, 0, 1], [0, 1, 1], [0, 2, 2]], final=True))  # fmt: skip
    types = queue.check(h).anomaly_types
    assert "duplicated" in types
    assert "inconsistent" in types  # offset 1 acked as 2, read as 1


def test_reordered_sends_are_found():
    h = from_dicts(
        send(0, 1, 0, 1) + send(0, 2, 0, 0) + poll(9, [[0, 0, 2], [0, 1, 1]], final=True)
    )
    assert queue.check(h).anomaly_types == {"reordered"}


def test_skipped_and_nonmonotonic_polls_are_found():
    sends = send(0, 1, 0, 0) + send(0, 2, 0, 1) + send(0, 3, 0, 2)
    sends += poll(9, [[0, 0, 1], [0, 1, 2], [0, 2, 3]], final=True)
    h = from_dicts(sends + poll(5, [[0, 0, 1]]) + poll(5, [[0, 2, 3]]))
    assert queue.check(h).anomaly_types == {"skipped"}
    h = from_dicts(sends + poll(5, [[0, 1, 2]]) + poll(5, [[0, 0, 1]]))
    assert queue.check(h).anomaly_types == {"nonmonotonic"}
    # after a rebalance a consumer may go back to the committed offset
    h = from_dicts(sends + poll(5, [[0, 1, 2]]) + poll(5, [[0, 0, 1]], rebalanced=True))
    assert queue.check(h).valid is True


# hdfs files


def write(p, path, sha):
    return [inv(p, "write", {"path": path, "sha256": sha, "size": 3})]


def test_hdfs_files_intact():
    h = from_dicts(write(0, "/a", "aa") + [ok(0, "write")]
                   + [inv(1, "read", "/a"), ok(1, "read", {"sha256": "aa"})]
                   + [inv(9, "final-read", "/a"),
                      ok(9, "final-read", {"sha256": "aa", "replication": 3, "expected": 3})])  # fmt: skip
    assert files.check(h).valid is True


def test_hdfs_corrupt_lost_and_under_replicated_files_are_found():
    h = from_dicts(
        write(0, "/a", "aa") + [ok(0, "write")] + write(0, "/b", "bb") + [ok(0, "write")]
        + write(0, "/c", "cc") + [ok(0, "write")]
        + [inv(1, "read", "/a"), ok(1, "read", {"sha256": "xx"})]
        + [inv(9, "final-read", "/a"), ok(9, "final-read", {"sha256": "aa", "replication": 3, "expected": 3}),
           inv(9, "final-read", "/b"), op("fail", 9, "final-read", None),
           inv(9, "final-read", "/c"), ok(9, "final-read", {"sha256": "cc", "replication": 1, "expected": 3})]
    )  # fmt: skip
    v = files.check(h)
    assert v.valid is False
    assert {(a["type"], a["path"]) for a in v.anomalies} == {
        ("corrupt", "/a"),
        ("lost", "/b"),
        ("under-replicated", "/c"),
    }


def test_unknown_hdfs_write_may_be_missing():
    h = from_dicts(write(0, "/a", "aa") + [op("info", 0, "write")])
    assert files.check(h).valid is True


# yarn jobs


def final(app, **v):
    return [inv(9, "final", app), ok(9, "final", {"app": app, **v})]


def test_yarn_jobs_checker():
    sub = [inv(0, "submit", {"job": "wc"}), ok(0, "submit", "app_1"),
           inv(0, "submit", {"job": "wc"}), ok(0, "submit", "app_2")]  # fmt: skip
    good = final("app_1", state="FINISHED", final_status="SUCCEEDED", output_ok=True) + final(
        "app_2", state="FINISHED", final_status="FAILED", diagnostics="AM lost 2 times"
    )
    assert jobs.check(from_dicts(sub + good)).valid is True
    bad = final("app_1", state="FINISHED", final_status="SUCCEEDED", output_ok=False) + final(
        "app_2", state="FINISHED", final_status="FAILED", diagnostics=""
    )
    assert jobs.check(from_dicts(sub + bad)).anomaly_types == {"wrong-output", "silent-failure"}
    hung = final("app_1", state="RUNNING", final_status="UNDEFINED")
    assert jobs.check(from_dicts(sub + hung)).anomaly_types == {"unfinished", "unknown-outcome"}
