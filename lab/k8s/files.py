"""Writing Kubernetes objects as YAML files a person reads and kustomize builds."""

from __future__ import annotations

from pathlib import Path

import yaml

HEADER = "# Written by racklab ({how}); racklab's own services on Kubernetes.\n"


class _Dumper(yaml.SafeDumper):
    """Block style, keys in the order built, and multi-line strings (start.py, site
    files) as literal blocks, so the files read like hand-written manifests."""


def _str(dumper, data: str):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump_all(objs: list[dict]) -> str:
    return yaml.dump_all(objs, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def write_dir(groups: dict[str, list[dict]], out: Path, how: str, namespace: str) -> list[Path]:
    """One file per group (namespace.yaml, zookeeper.yaml, ...) and a
    kustomization.yaml listing them, which puts every object in ``namespace``;
    returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, objs in groups.items():
        path = out / f"{stem}.yaml"
        path.write_text(HEADER.format(how=how) + dump_all(objs))
        written.append(path)
    kust = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        "resources": [p.name for p in written],
    }
    path = out / "kustomization.yaml"
    path.write_text(HEADER.format(how=how) + yaml.safe_dump(kust, sort_keys=False))
    return [*written, path]
