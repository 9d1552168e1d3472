"""Launching a container (Hadoop's ContainerLaunch and its container executors): where
its processes live (a cgroup of its own, or a session where cgroups cannot be made),
the launch_container.sh that moves itself into that cgroup, exports the launch
context's environment and execs the commands, and the exit status and diagnostics
YARN reports when it ends."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
from pathlib import Path

from .cgroups import CgroupManager
from .conf import Configuration
from .nmcontainer import NMContainer
from .processtree import ProcessTreeManager
from .records import KILLED_EXCEEDED_PMEM

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def container_executor(conf: Configuration) -> CgroupManager | ProcessTreeManager:
    """A cgroup per container where this node can make them; where it cannot (a
    read-only cgroupfs, no memory controller) or the site asks for Hadoop's
    DefaultContainerExecutor, containers run in sessions of their own instead."""
    executor = conf.get("yarn.nodemanager.container-executor.class") or ""
    if executor.endswith("DefaultContainerExecutor"):
        manager = ProcessTreeManager(f"{executor} configured")
        manager.setup()
        return manager
    try:
        manager = CgroupManager(
            conf.get("yarn.nodemanager.linux-container-executor.cgroups.mount-path")
            or "/sys/fs/cgroup",
            conf.get("yarn.nodemanager.linux-container-executor.cgroups.hierarchy")
            or "/hadoop-yarn",
            conf.get_bool(
                "yarn.nodemanager.linux-container-executor.cgroups.strict-resource-usage"
            ),
        )
        manager.setup()
    except OSError as e:
        manager = ProcessTreeManager(str(e))
        manager.setup()
    return manager


def environment(c: NMContainer, ctx: dict, node_env: dict[str, str]) -> dict[str, str]:
    """The container's environment: a few of the NM's own, what YARN sets for every
    container (`node_env`: the NM's addresses and the app's local dirs), then the launch
    context's, which wins."""
    env = {k: os.environ[k] for k in ("PATH", "LANG", "PYTHONPATH", "TZ") if k in os.environ}
    env.update({"PYTHON": sys.executable, "CONTAINER_ID": c.id, **node_env})
    env.update(
        {
            "LOG_DIRS": str(c.log_dir),
            "USER": c.user,
            "LOGNAME": c.user,
            "HOME": str(c.work_dir),
            "PWD": str(c.work_dir),
        }
    )
    user_env = ctx.get("environment") or {}
    if not isinstance(user_env, dict):
        raise ValueError("launchContext.environment must be an object")
    env.update({str(k): str(v) for k, v in user_env.items()})
    return env


def command_line(c: NMContainer, commands: list) -> str:
    """Hadoop's expansion: <LOG_DIR>, <CPS>, and {{VAR}} for the container's $VAR."""
    cmd = " ".join(str(x) for x in commands)
    cmd = cmd.replace("<LOG_DIR>", str(c.log_dir)).replace("<CPS>", ":")
    return re.sub(r"\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}", r"$\1", cmd)


def write_script(c: NMContainer, env: dict[str, str], cmd: str) -> Path:
    """launch_container.sh: join the container's cgroup, export, cd, exec the commands."""
    lines = ["#!/bin/bash", "set -e"]
    lines += [f"echo $$ > {shlex.quote(str(p))}" for p in c.cgroup.procs_files]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items() if _ENV_NAME.match(k)]
    lines += [
        f"cd {shlex.quote(str(c.work_dir))}",
        "set +e",
        f"exec /bin/bash -c {shlex.quote(cmd)}",
    ]
    script = c.work_dir / "launch_container.sh"
    script.write_text("\n".join(lines) + "\n")
    return script


async def spawn(c: NMContainer, env: dict[str, str], commands: list) -> asyncio.subprocess.Process:
    """Start c's launch script (its cgroup made already) in a session of its own, its
    output appended to the container's stdout and stderr logs."""
    script = write_script(c, env, command_line(c, commands))
    out = open(c.log_dir / "stdout", "ab")
    err = open(c.log_dir / "stderr", "ab")
    try:
        return await asyncio.create_subprocess_exec(
            "/bin/bash",
            str(script),
            cwd=str(c.work_dir),
            stdout=out,
            stderr=err,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=True,
            env={"PATH": env.get("PATH", "/usr/bin:/bin")},
        )
    finally:
        out.close()
        err.close()


def exit_report(c: NMContainer, code: int) -> tuple[int, str]:
    """The exit status and diagnostics YARN reports for a container whose process
    returned `code`: a kill's reason, the kernel's OOM kill in its cgroup, or the tail of
    its stderr."""
    if c.cgroup and c.kill_status is None and c.cgroup.oom_kills() > 0:
        c.kill_status = KILLED_EXCEEDED_PMEM
        c.kill_reason = (
            f"Container [pid={c.proc.pid},containerID={c.id}] is running beyond the 'PHYSICAL' memory limit. "
            f"Current usage: more than {c.resource.memory} MB of {c.resource.memory} MB physical memory used "
            "(killed by the kernel's OOM killer in the container's cgroup). Killing container."
        )
    if c.kill_status is not None:
        return (
            c.kill_status,
            f"{c.kill_reason}\nContainer killed on request. Exit code is {_shell_code(code)}",
        )
    if code == 0:
        return 0, ""
    status = _shell_code(code)
    tail = _tail(c.log_dir / "stderr", 4096)
    return status, (
        f"Exception from container-launch.\nContainer id: {c.id}\nExit code: {status}\n"
        + (f"Last 4096 bytes of stderr :\n{tail}" if tail else "")
    )


def _shell_code(code: int) -> int:
    return 128 - code if code < 0 else code  # -9 (SIGKILL) -> 137, as a shell reports it


def _tail(path: Path, n: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode(errors="replace")
    except OSError:
        return ""
