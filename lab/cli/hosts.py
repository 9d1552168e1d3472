"""lab hosts: the machines a lab spreads over, and simulated ones to try it on one."""

from __future__ import annotations

import typer

from lab.cli.common import JSON, UserError, _emit, _need_root, _progress, app, out

hosts_app = typer.Typer(no_args_is_help=True, help="Hosts a lab spreads over (SSH).")
app.add_typer(hosts_app, name="hosts")


@hosts_app.command("simulate")
def hosts_simulate(
    count: int = typer.Argument(None, help="How many hosts to make."),
    name: str = typer.Option(
        "sim", "--name", help="The set's name; its hosts are NAME1, NAME2, ..."
    ),
    remove: bool = typer.Option(False, "--remove", help="Remove the set NAME instead."),
    as_json: bool = JSON,
):
    """Make COUNT local hosts (own namespaces, own Debian root filesystem, real sshd) and
    print the hosts section to paste into a topology file."""
    from lab.hosts import simulate

    _need_root()
    try:
        if remove:
            if count is not None:
                raise UserError("give either a number of hosts to make or --remove, not both")
            if not simulate.exists(name):
                raise UserError(f"no simulated hosts named {name!r} on this machine")
            removed = simulate.remove(name)
            if not _emit({"removed": removed}, as_json):
                for r in removed:
                    out.print(f"removed {r}")
            return
        if count is None:
            raise UserError("say how many hosts to simulate (lab hosts simulate 3)")
        data = simulate.simulate(count, name, progress=_progress(as_json))
    except simulate.SimulateError as e:
        raise UserError(str(e)) from None
    if not _emit(data, as_json):
        out.print(simulate.hosts_section(data), end="", highlight=False, soft_wrap=True)
