"""lab k8s: a topology file as Kubernetes manifests (the logic is lab/k8s/render.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from lab.cli.common import JSON, UserError, _emit, app, err, images_app, out, pairs

k8s_app = typer.Typer(no_args_is_help=True, help="Kubernetes: manifests for a lab's services.")
app.add_typer(k8s_app, name="k8s")


@k8s_app.command("render")
def render(
    file: Path = typer.Argument(..., help="The topology file."),
    output: Path = typer.Option(..., "--output", "-o", help="Directory to write into."),
    rack_label: str = typer.Option(
        "topology.kubernetes.io/zone",
        "--rack-label",
        help="Node label racks pin to (e.g. racklab.io/rack where the cluster has no zones).",
    ),
    zone: list[str] = typer.Option(
        [], "--zone", help="RACK=VALUE: the label value a rack pins to (default: its name)."
    ),
    namespace: str = typer.Option(None, "--namespace", help="Default: the lab's name."),
    image: str = typer.Option(
        "racklab/node:latest", "--image", help="The node image as the cluster pulls it."
    ),
    as_json: bool = JSON,
):
    """Write a lab's services as Kubernetes manifests (kubectl apply -k DIR).

    Racks become StatefulSets pinned to zones, node limits requests and limits,
    service settings ConfigMaps (docs/KUBERNETES.md).

    \b
    Examples:
      lab k8s render examples/quickstart.yaml -o quickstart-k8s
      lab k8s render lab.yaml -o out --zone r1=eu-west-1a --zone r2=eu-west-1b
      lab k8s render lab.yaml -o out --rack-label racklab.io/rack
    """
    from lab.k8s.render import RenderError
    from lab.k8s.render import render as do_render
    from lab.topology import load

    topo = load(file)
    try:
        written = do_render(
            topo,
            output,
            rack_label=rack_label,
            zones=pairs(zone, "--zone", "RACK=ZONE, e.g. --zone r1=eu-west-1a"),
            namespace=namespace,
            image=image,
        )
    except RenderError as e:
        raise UserError(str(e)) from None
    if not _emit({"files": [str(p) for p in written]}, as_json):
        for p in written:
            out.print(str(p), highlight=False)
        out.print(f"apply with: kubectl apply -k {output}", highlight=False)


@images_app.command("push")
def images_push(
    registry: str = typer.Argument(
        ..., help="HOST, HOST:PORT or HOST:PORT/PATH of a registry you can push to."
    ),
    as_json: bool = JSON,
):
    """Push racklab's node image to a registry, for clusters that cannot see this
    machine's engine (then: lab k8s render --image REGISTRY/racklab/node:TAG).

    \b
    Examples:
      lab images push registry.local:5000
      lab images push registry.local:5000/labs --json
    """
    from lab.images.push import push_node_image

    try:
        pushed = push_node_image(
            registry, log=lambda line: err.print(f"[dim]{line}", highlight=False)
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    if not _emit(pushed, as_json):
        out.print(f"pushed {pushed['image']} (and {pushed['latest']})", highlight=False)
