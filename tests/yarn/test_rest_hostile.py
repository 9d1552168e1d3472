"""The ResourceManager's REST API under hostile input: submissions with fields of every
wrong type get 400 BadRequestException (never 500), tags are held to YARN's limits, the
server is bounded like Jetty (431, 400, idle cut-off), bodies may come chunked, and an
XML client gets XML."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET

import pytest
import requests

from tests.httpbounds import check_bounds, exchange, status_of

from .cluster import YarnCluster

IDLE = 2.0


@pytest.fixture(scope="module")
def rm(tmp_path_factory):
    c = YarnCluster(
        tmp_path_factory.mktemp("yarn-hostile"),
        rm_conf={"hadoop.http.idle_timeout.ms": str(int(IDLE * 1000))},
    )
    try:
        c.start_rm()
        yield c
    finally:
        c.stop()


def new_app(rm) -> str:
    r = requests.post(f"{rm.url}/ws/v1/cluster/apps/new-application", timeout=10)
    return r.json()["application-id"]


def submission(rm, **changes) -> dict:
    # An unmanaged AM: accepted submissions start no container.
    ctx = {
        "application-id": new_app(rm),
        "application-name": "probe",
        "unmanaged-AM": True,
        "am-container-spec": {"commands": {"command": "true"}},
        "resource": {"memory": 64, "vCores": 1},
        "application-tags": {"tag": ["a", "b"]},
    }
    ctx.update(changes)
    return ctx


def submit(rm, ctx) -> requests.Response:
    return requests.post(f"{rm.url}/ws/v1/cluster/apps", json=ctx, timeout=10)


def kill_all(rm) -> None:
    apps = requests.get(f"{rm.url}/ws/v1/cluster/apps", timeout=10).json()["apps"] or {"app": []}
    for a in apps["app"]:
        if a["state"] not in ("FINISHED", "FAILED", "KILLED"):
            requests.put(
                f"{rm.url}/ws/v1/cluster/apps/{a['id']}/state", json={"state": "KILLED"}, timeout=10
            )


def bad_request(r: requests.Response, words: str) -> None:
    assert r.status_code == 400, r.text
    e = r.json()["RemoteException"]
    assert e["exception"] == "BadRequestException" and words in e["message"], e


@pytest.mark.parametrize(
    "tags,words",
    [
        ({"tag": 5}, "application-tags"),
        (5, "application-tags"),
        ({"tag": [1, 2]}, "application-tags"),
        ({"tag": [f"t{i}" for i in range(11)]}, "Too many applicationTags"),
        ({"tag": "x" * 200}, "maximum allowed length of a tag is 100"),
        ({"tag": "caf\u00e9"}, "ASCII"),
    ],
)
def test_tags_are_checked_as_yarn_checks_them(rm, tags, words):
    bad_request(submit(rm, submission(rm, **{"application-tags": tags})), words)


def test_null_tag_list_is_no_tags(rm):
    r = submit(rm, submission(rm, **{"application-tags": {"tag": None}}))
    assert r.status_code == 202, r.text
    kill_all(rm)


WRONG = [5, -1, 2**70, "x", None, True, [], [1, "a"], {}, {"a": {"b": [None]}}]
FIELDS = [
    "application-name",
    "queue",
    "priority",
    "unmanaged-AM",
    "max-app-attempts",
    "resource",
    "application-type",
    "application-tags",
    "am-container-spec",
    "keep-containers-across-application-attempts",
]


def test_every_field_of_the_wrong_type_is_a_400_or_accepted_never_a_500(rm):
    """Generated: each field of a submission replaced by each value of each JSON type."""
    seen = {}
    for field in FIELDS:
        for value in WRONG:
            r = submit(rm, submission(rm, **{field: value}))
            assert r.status_code in (202, 400), (field, value, r.status_code, r.text)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
        kill_all(rm)
    for field in ("commands", "environment", "local-resources"):
        for value in WRONG:
            spec = {"commands": {"command": "true"}, field: value}
            r = submit(rm, submission(rm, **{"am-container-spec": spec}))
            assert r.status_code in (202, 400), (field, value, r.status_code, r.text)
        kill_all(rm)
    assert seen.get(400, 0) > 0 and seen.get(202, 0) > 0  # both kinds were really exercised
    assert "Traceback" not in rm.rm.log.read_text()


def test_json_nested_deeper_than_the_parser_goes_is_a_400(rm):
    r = requests.post(
        f"{rm.url}/ws/v1/cluster/apps", data=b"[" * 100_000 + b"]" * 100_000, timeout=10
    )
    bad_request(r, "nested too deeply")


def test_server_bounds(rm):
    check_bounds("127.0.0.1", rm.rm_port, "/ws/v1/cluster/info", IDLE)
    assert requests.get(f"{rm.url}/ws/v1/cluster/info", timeout=10).ok


def test_chunked_submission_is_read(rm):
    body = json.dumps(submission(rm)).encode()

    def chunks():
        for i in range(0, len(body), 50):
            yield body[i : i + 50]

    r = requests.post(
        f"{rm.url}/ws/v1/cluster/apps",
        data=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 202, r.text
    kill_all(rm)


def test_xml_for_an_xml_client(rm):
    r = requests.get(
        f"{rm.url}/ws/v1/cluster/info", headers={"Accept": "application/xml"}, timeout=10
    )
    assert r.headers["Content-Type"].startswith("application/xml")
    info = ET.fromstring(r.content)
    assert info.tag == "clusterInfo" and info.find("state").text == "STARTED"
    r = requests.get(
        f"{rm.url}/ws/v1/cluster/apps?states=NEW", headers={"Accept": "application/xml"}
    )
    assert ET.fromstring(r.content).tag == "apps"


def test_a_too_large_body_is_413_and_the_server_serves_on(rm):
    with socket.create_connection(("127.0.0.1", rm.rm_port), timeout=10) as s:
        s.sendall(
            b"POST /ws/v1/cluster/apps HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n"
        )
        assert status_of(s.recv(1000)) == 413
    assert (
        status_of(exchange("127.0.0.1", rm.rm_port, b"GET /ws/v1/cluster/info HTTP/1.0\r\n\r\n"))
        == 200
    )


@pytest.mark.parametrize(
    "resource", [{"memory": 1e308, "vCores": 1}, {"memory": 64, "vCores": 2**40}]
)
def test_a_node_registering_beyond_javas_types_is_refused_and_the_scheduler_renders(rm, resource):
    """Found by the fuzz campaign: a NodeManager registration with a resource beyond Java's
    long/int made every later scheduler page a 500 (an infinite float in the capacity sums)."""
    r = requests.post(
        f"{rm.url}/rpc/registerNodeManager",
        json={"nodeId": "fuzz:1", "resource": resource, "httpAddress": "fuzz:2"},
        timeout=10,
    )
    bad_request(r, "")
    assert requests.get(f"{rm.url}/ws/v1/cluster/scheduler", timeout=10).status_code == 200


def test_an_applications_settings_refuse_every_wrong_type_as_hadoop_does(rm):
    """PUT queue / priority / timeout / state with each value of each JSON type, in the
    field and as the whole body: Hadoop's 400s, a 200 where the value is usable, and
    only the one 500 Hadoop itself answers (an unknown queue, UndeclaredThrowableException)."""
    r = submit(rm, submission(rm))
    assert r.status_code == 202, r.text
    app = r.headers["Location"].rsplit("/", 1)[1]
    u = f"{rm.url}/ws/v1/cluster/apps/{app}"
    bodies = {
        "queue": lambda v: {"queue": v},
        "priority": lambda v: {"priority": v},
        "timeout": lambda v: {"timeout": {"type": "LIFETIME", "expiryTime": v}},
        "state": lambda v: {"state": v},
    }
    for path, wrap in bodies.items():
        for value in WRONG:
            for body in (wrap(value), value):
                r = requests.put(f"{u}/{path}", data=json.dumps(body), timeout=10)
                assert r.status_code in (200, 400, 500), (path, body, r.status_code, r.text)
                if r.status_code == 500:
                    assert r.json()["RemoteException"]["exception"] == (
                        "UndeclaredThrowableException"
                    ), (path, body, r.text)
    for junk in ("x", "%00", "appattempt_x", "container_1_2_3_4", "a" * 300):
        for path in (f"{u}/appattempts/{junk}", f"{u}/appattempts/{junk}/containers"):
            assert requests.get(path, timeout=10).status_code in (400, 404)
        r = requests.post(f"{rm.url}/ws/v1/cluster/containers/{junk}/signal/x", timeout=10)
        assert r.status_code == 400
    assert requests.get(f"{rm.url}/ws/v1/cluster/info", timeout=10).status_code == 200
    kill_all(rm)
