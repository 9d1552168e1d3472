"""Reaching the Docker engine, for the image builder and the container and pod
backends alike: one client, and one sentence when the engine does not answer."""

from __future__ import annotations

import os


class EngineUnreachable(OSError):
    """The Docker engine does not answer; the message says where and why."""


def connect(timeout: float):
    """A docker SDK client whose engine answered a ping."""
    import docker

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except Exception as exc:  # the SDK raises several unrelated types for "no engine"
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        raise EngineUnreachable(
            f"cannot reach the Docker engine at {where} ({reason(exc)}); `make docker` starts dockerd"
        ) from exc
    return client


def reason(exc: BaseException) -> str:
    """The system's reason under the SDK's wrappings (requests and urllib3 nest the
    OSError in their exceptions' arguments), else the exception's own words."""
    todo: list = [exc]
    while todo:
        e = todo.pop(0)
        if isinstance(e, OSError) and e.strerror:
            return e.strerror.lower()
        if isinstance(e, BaseException):
            todo += [*e.args, e.__cause__, e.__context__]
        elif isinstance(e, tuple):
            todo += list(e)
    return str(exc)
