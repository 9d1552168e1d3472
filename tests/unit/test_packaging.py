"""racklab's own wheel, which container and VM nodes install, carries every data file
the code reads at run time (a wheel without Kafka's message schemas gave container nodes
a broker that died at import)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from lab.images.wheels import racklab_wheel

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_carries_every_schema_file():
    wheel = racklab_wheel(lambda msg: None)
    names = set(zipfile.ZipFile(wheel).namelist())
    data = [p.relative_to(ROOT).as_posix() for p in (ROOT / "lab").rglob("*.json")]
    assert data, "no schema files found in the source tree"
    missing = [p for p in data if p not in names]
    assert not missing, f"{len(missing)} data files missing from {wheel.name}: {missing[:5]}"
    assert "lab/services/kafka/schemas/ProduceRequest.json" in names
