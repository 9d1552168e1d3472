"""What every `lab` command shares: the Typer apps, the consoles, the common options,
and how a failure becomes one sentence with its exit code."""

from __future__ import annotations

import json
import os
import sys

import typer
from rich.console import Console

from lab.topology import TopologyError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="racklab: racks of namespace, container and VM nodes running Python big-data services.",
)
demo_app = typer.Typer(no_args_is_help=True, help="Demonstrations of the Linux primitives.")
app.add_typer(demo_app, name="demo")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks that print measured figures.")
app.add_typer(bench_app, name="bench")
images_app = typer.Typer(no_args_is_help=True, help="Node images, built offline.")
app.add_typer(images_app, name="images")
chaos_app = typer.Typer(no_args_is_help=True, help="Break a running lab on purpose and check.")
app.add_typer(chaos_app, name="chaos")

out = Console()
err = Console(stderr=True)

JSON = typer.Option(False, "--json", help="Machine-readable output.")
LAB = typer.Option(None, "--lab", "-l", help="Which lab (needed when several are up).")


class UserError(Exception):
    pass


def _user_errors():
    """Failures a user can act on — a bad file, a service that did not come up, Docker
    or libvirtd down, a node or image that would not start or build: one sentence
    naming what failed and where to look, exit code 2, no traceback."""
    from lab.backends import BackendUnavailable
    from lab.backends.base import NodeError
    from lab.images.build import BuildError
    from lab.orchestrator.deploy import DeployError
    from lab.orchestrator.lab import LabError

    return (
        TopologyError,
        UserError,
        LabError,
        BackendUnavailable,
        NodeError,
        DeployError,
        BuildError,
    )


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def _emit(data, as_json: bool) -> bool:
    if as_json:
        sys.stdout.write(json.dumps(data, indent=1, default=str) + "\n")
    return as_json


def _progress(quiet: bool):
    if quiet:
        return lambda msg: None
    return lambda msg: err.print(f"[dim]·[/] {msg}", highlight=False)


def _need_root() -> None:
    if os.geteuid() != 0:
        raise UserError("racklab makes namespaces, cgroups and interfaces: run it as root")


def main() -> None:
    # Standalone mode: usage errors print Click's message and exit 2 by themselves;
    # racklab's own errors arrive here as exceptions and become one sentence. With
    # --debug (anywhere on the line) or RACKLAB_DEBUG=1 they keep their traceback.
    debug = os.environ.get("RACKLAB_DEBUG", "") not in ("", "0")
    if "--debug" in sys.argv[1:]:
        sys.argv.remove("--debug")
        debug = True
    try:
        app()
    except _user_errors() as e:
        if debug:
            raise
        _fail(str(e))
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as e:  # a bug of racklab's: still one sentence, and how to see more
        if debug:
            raise
        _fail(
            f"{type(e).__name__}: {e} (unexpected; run again with --debug for the traceback)",
            code=1,
        )
