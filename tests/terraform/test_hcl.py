"""racklab's HCL writer: what it writes, terraform reads back as the same values."""

from __future__ import annotations

import json

from lab.terraform import hcl

from .conftest import tf

VALUES = {
    "text": 'a ${not.a.reference} %{ not a directive } "quoted" back\\slash\nnew line\ttab é',
    "numbers": [0, -3, 2.5, 1e-3, 2467299328],
    "flags": {"yes": True, "no": False, "nothing": None},
    "nested": {"list": [{"name": "r1", "nodes": ["n1", "n2"]}], "set-name": "eth0", "e": []},
}


def test_values_round_trip_through_terraform(terraform, tmp_path):
    blocks = [hcl.Block("output", name, value=v) for name, v in VALUES.items()]
    (tmp_path / "main.tf").write_text(hcl.document(*blocks))
    tf(tmp_path, "fmt", "-check")
    tf(tmp_path, "init", "-input=false")
    tf(tmp_path, "apply", "-auto-approve", "-input=false")
    got = {k: v["value"] for k, v in json.loads(tf(tmp_path, "output", "-json").stdout).items()}
    assert got == VALUES
