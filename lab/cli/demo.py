"""lab demo: the namespaces, cgroups and quickstart demonstrations."""

from __future__ import annotations

from pathlib import Path

import typer

from lab.cli.common import (
    JSON,
    _emit,
    _need_root,
    _progress,
    demo_app,
    out,
)
from lab.cli.labs import _print_status


@demo_app.command("namespaces")
def demo_namespaces(as_json: bool = JSON):
    """For each namespace type, the host's view beside a node's view.

    \b
    Example:
      lab demo namespaces
    """
    from lab.demos import namespaces

    _need_root()
    data = namespaces.run()
    if not _emit(data, as_json):
        namespaces.show(data, out)


@demo_app.command("cgroups")
def demo_cgroups(as_json: bool = JSON):
    """Each limit set, exercised and measured: configured beside measured.

    \b
    Example:
      lab demo cgroups
    """
    from lab.demos import cgroups as demo

    _need_root()
    data = demo.run(progress=_progress(as_json))
    if not _emit(data, as_json):
        demo.show(data, out)


@demo_app.command("quickstart")
def demo_quickstart(
    file: Path = typer.Option(Path("examples/quickstart.yaml"), help="The lab to bring up."),
    output: Path = typer.Option(
        None, "--out", help="Where the lab's graph goes (default: demo/ beside the chaos runs)."
    ),
):
    """Bring up the quickstart lab, show it, run the trial and both demos, tear down.

    \b
    Example:
      lab demo quickstart --file examples/quickstart.yaml
    """
    from lab.demos import quickstart

    _need_root()
    if output is None:  # never the directory the user happens to stand in
        from lab.chaos.runner import runs_root

        output = runs_root() / "demo"
    ok = quickstart.run(file, out, _progress(False), _print_status, output)
    raise typer.Exit(0 if ok else 1)
