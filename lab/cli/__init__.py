"""The `lab` command: parses, prints, and calls the layers below; no logic of its own.

A user mistake (bad file, unknown node, no such lab) prints one sentence and exits 2.
Each module here registers one group of commands on the app in `common`; a new group
is a new module, found and imported below (core groups first, so `lab --help` keeps
its order).
"""

import importlib
import pkgutil

from lab.cli.common import app, main, plain_help

CORE = ("labs", "services", "chaos", "images", "bench", "demo")
for _name in CORE + tuple(
    sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in CORE + ("common",))
):
    importlib.import_module(f"{__name__}.{_name}")

plain_help(app)  # groups made by modules that did not use common.group()

__all__ = ["app", "main"]
