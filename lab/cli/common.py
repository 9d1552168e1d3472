"""What every `lab` command shares: the Typer apps, the consoles, the common options,
and how a failure becomes one sentence with its exit code (docs/CLI.md has the table)."""

from __future__ import annotations

import json
import os
import sys

import typer
from rich.console import Console

# Help is printed as written (rich_markup_mode=None): rich markup would eat "[--lab L]"
# and "[ls|get ...]" in the help texts, and it labels every flag "<bool>". Plain text
# also pastes cleanly into an issue or a terminal of any width.
HELP = {"help_option_names": ["-h", "--help"]}


def group(help: str) -> typer.Typer:
    return typer.Typer(
        no_args_is_help=True, rich_markup_mode=None, context_settings=HELP, help=help
    )


app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings=HELP,
    help="racklab: racks of namespace, container and VM nodes running Python big-data "
    "services.\n\nEvery command takes --help; commands that print take --json; a lab is "
    "named with --lab NAME (default: the one lab that is up). Exit codes: docs/CLI.md.",
)
demo_app = group("Demonstrations of the Linux primitives.")
app.add_typer(demo_app, name="demo")
bench_app = group("Benchmarks that print measured figures.")
app.add_typer(bench_app, name="bench")
images_app = group("Node images, built offline.")
app.add_typer(images_app, name="images")
chaos_app = group("Break a running lab on purpose and check.")
app.add_typer(chaos_app, name="chaos")
service_app = group("Stop, start or restart one service of a running lab.")
app.add_typer(service_app, name="service")


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        sys.stdout.write(f"racklab {metadata.version('racklab')}\n")
        raise typer.Exit(0)


@app.callback()
def _top(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    pass


def plain_help(typer_app: typer.Typer) -> None:
    """Plain help for every group, also those other modules made with typer.Typer()."""
    typer_app.rich_markup_mode = None
    for info in typer_app.registered_groups:
        if info.typer_instance is not None:
            plain_help(info.typer_instance)


out = Console()
err = Console(stderr=True)

JSON = typer.Option(False, "--json", help="Machine-readable output (errors too).")
LAB = typer.Option(None, "--lab", "-l", help="Which lab (default: the one that is up).")

# Set by main() when --json is on the line: errors are then JSON on stdout as well.
_json_errors = False


class UserError(Exception):
    pass


def which_lab(positional: str | None, option: str | None) -> str | None:
    """Commands that took the lab as an argument (lab down NAME) take --lab too."""
    if positional and option and positional != option:
        raise UserError(f"two labs named: {positional} and --lab {option}; give one")
    return positional or option


def _user_errors():
    """Failures a user can act on — a bad file, a service that did not come up, Docker
    or libvirtd down, a node or image that would not start or build: one sentence
    naming what failed and where to look, exit code 2, no traceback."""
    from lab.backends import BackendUnavailable
    from lab.backends.base import NodeError
    from lab.images.build import BuildError
    from lab.orchestrator.deploy import DeployError
    from lab.orchestrator.lab import LabError
    from lab.topology import TopologyError

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
    if _json_errors:
        sys.stdout.write(json.dumps({"error": message, "exit_code": code}) + "\n")
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    sys.exit(code)


def pairs(values: list[str], option: str, form: str = "NAME=VALUE") -> dict[str, str]:
    """Repeated NAME=VALUE options as a dict; a malformed one is the user's mistake,
    said with the form it should take (``form``, e.g. "RACK=ZONE, e.g. r1=eu-west-1a")."""
    out = {}
    for v in values:
        name, sep, value = v.partition("=")
        if not sep or not name or not value:
            raise UserError(f"{option} {v!r}: write it as {form}")
        out[name] = value
    return out


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


# Click's own exceptions, found through a public class: typer vendors click in newer
# releases and uses the real package in older ones.
_MRO = {c.__name__: c for c in typer.BadParameter.__mro__}
ClickException, UsageError = _MRO["ClickException"], _MRO["UsageError"]


def _usage_sentence(e) -> str:
    """Click's three-line usage error as one sentence naming the command and its help."""
    where = e.ctx.command_path if getattr(e, "ctx", None) is not None else "lab"
    msg = e.format_message().strip().rstrip(".")
    msg = msg[:1].lower() + msg[1:]
    return f"{where}: {msg} (see `{where} --help`)"


def _json_to_end(argv: list[str]) -> tuple[list[str], bool]:
    """--json anywhere before `--` works: it moves to the end, where the command that
    takes it finds it (`lab --json status` is `lab status --json`)."""
    end = argv.index("--") if "--" in argv else len(argv)
    head, tail = argv[:end], argv[end:]
    if "--json" not in head:
        return argv, False
    return [a for a in head if a != "--json"] + ["--json"] + tail, True


def main() -> None:
    # racklab's own errors arrive here as exceptions and become one sentence; so do
    # Click's usage errors (standalone_mode=False hands them over). With --debug
    # (anywhere on the line) or RACKLAB_DEBUG=1 they keep their traceback.
    global _json_errors
    debug = os.environ.get("RACKLAB_DEBUG", "") not in ("", "0")
    argv = sys.argv[1:]
    end = argv.index("--") if "--" in argv else len(argv)
    if "--debug" in argv[:end]:  # after `--` it belongs to the command (lab exec)
        argv.remove("--debug")
        debug = True
    argv, _json_errors = _json_to_end(argv)
    try:
        code = app(args=argv, prog_name="lab", standalone_mode=False)
    except UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # `lab` or `lab chaos` alone: help
            e.show()
            sys.exit(2)
        _fail(_usage_sentence(e), e.exit_code)
    except ClickException as e:
        _fail(e.format_message(), e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted", 130)
    except Exception as e:
        if debug:
            raise
        if isinstance(e, _user_errors()):  # imported only now: a mistake costs no start-up
            _fail(str(e))
        # a bug of racklab's: still one sentence, and how to see more
        _fail(f"{type(e).__name__}: {e} (unexpected; run again with --debug for the traceback)", 1)
    sys.exit(code if isinstance(code, int) else 0)
