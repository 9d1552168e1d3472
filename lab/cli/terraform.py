"""lab terraform: VM racks on real libvirt hosts, declared with terraform."""

from __future__ import annotations

from pathlib import Path

import typer

from lab.cli.common import JSON, UserError, _emit, app, out, pairs

terraform_app = typer.Typer(
    no_args_is_help=True,
    help="VM racks on libvirt hosts, declared with terraform (docs/TERRAFORM.md).",
)
app.add_typer(terraform_app, name="terraform")


@terraform_app.command("render")
def render(
    file: Path,
    output: Path = typer.Option(..., "--output", "-o", help="The directory to write."),
    host: list[str] = typer.Option(
        [],
        "--host",
        help="NAME=URI of a libvirt host (repeat; default: the file's hosts, "
        "else local=qemu:///system).",
    ),  # fmt: skip
    rack: list[str] = typer.Option([], "--rack", help="RACK=HOST: where a rack goes (repeat)."),
    domain_type: str = typer.Option(
        "kvm", "--domain-type", help="kvm, or qemu where KVM cannot run a stock kernel."
    ),
    pool: str = typer.Option("default", "--pool", help="The libvirt storage pool."),
    as_json: bool = JSON,
):
    """Write a terraform root module declaring FILE's VM nodes (then terraform init/apply).

    \b
    Examples:
      lab terraform render examples/terraform.yaml -o tf
      lab terraform render lab.yaml -o tf --rack r1=h1 --rack r2=h2 \\
          --host h1=qemu+ssh://root@spare1/system --host h2=qemu:///system
    """
    from lab.terraform.render import RenderError
    from lab.terraform.render import render as do_render
    from lab.topology import load

    topo = load(file)
    try:
        result = do_render(
            topo,
            output,
            hosts=pairs(host, "--host") or None,
            racks=pairs(rack, "--rack", "RACK=HOST") or None,
            domain_type=domain_type,
            pool=pool,
        )
    except RenderError as e:
        raise UserError(str(e)) from None
    if _emit(result.as_dict(), as_json):
        return
    where = ", ".join(f"{r} on {h}" for r, h in result.placement.items())
    out.print(f"rendered lab {result.lab} into {result.dir} ({where}; supernet "
              f"{result.supernet})", highlight=False)  # fmt: skip
    for m in result.missing:
        out.print(f"missing before `terraform apply`: {m}", highlight=False)
    out.print(f"next: terraform -chdir={result.dir} init && terraform -chdir={result.dir} "
              "apply, then `lab up` of a file with `terraform: "
              f"{result.dir}`", highlight=False)  # fmt: skip
