"""``lab images build``: base rootfs -> base image -> wheels -> node image.

Each step is skipped when its content-derived output already exists (tarball in
the cache, image tag in Docker), so a second build with unchanged inputs does no
work. A failing step raises BuildError naming the step and the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Column

from lab.images import engine, rootfs, wheels
from lab.images.cache import cache_dir, digest, recipes_dir, source_digest, tree_digest
from lab.images.sources import host_mirror

NODE_REPO = "racklab/node"
# The tag the backends use when a node names no image: moved to every fresh build.
NODE_LATEST = f"{NODE_REPO}:latest"
LABEL = "racklab.image"


class BuildError(RuntimeError):
    def __init__(self, step: str, reason: str):
        self.step, self.reason = step, reason
        super().__init__(f"image build failed at step '{step}': {reason}")


@dataclass
class StepResult:
    name: str
    status: str  # "built" or "cached"
    seconds: float
    detail: str = ""


@dataclass
class BuildResult:
    base_tag: str
    node_tag: str
    steps: list[StepResult] = field(default_factory=list)

    @property
    def cached(self) -> bool:
        """True when nothing had to be built."""
        return all(s.status == "cached" for s in self.steps)

    def as_dict(self) -> dict:
        return {
            "base": self.base_tag,
            "node": self.node_tag,
            "steps": [vars(s) for s in self.steps],
        }


def docker_client():
    try:
        return engine.connect(timeout=600)
    except engine.EngineUnreachable as e:
        raise BuildError("connect to docker", str(e)) from e.__cause__


def _image_exists(client, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


class _Steps:
    """Runs named steps under a rich progress display and records what each did."""

    def __init__(self, progress: Progress | None):
        self.progress = progress
        self.results: list[StepResult] = []

    def run(self, name: str, fn: Callable[[Callable[[str], None]], tuple[str, object]]):
        task = self.progress.add_task(name, total=None, detail="") if self.progress else None

        def log(line: str) -> None:
            if self.progress is not None and line.strip():
                self.progress.update(task, detail=line.strip()[:70])

        started = time.monotonic()
        try:
            status, value = fn(log)
        except BuildError:
            raise
        except subprocess.CalledProcessError as exc:
            out = (exc.output or "").strip() if isinstance(exc.output, str) else ""
            raise BuildError(
                name, f"command exited with status {exc.returncode}: {out or exc.cmd}"
            ) from exc
        except Exception as exc:
            raise BuildError(name, f"{type(exc).__name__}: {exc}") from exc
        finally:
            if self.progress is not None:
                self.progress.update(task, total=1, completed=1)
        seconds = time.monotonic() - started
        shown = f"{len(value)} wheels" if isinstance(value, list) else str(value)
        self.results.append(StepResult(name, status, round(seconds, 2), shown))
        if self.progress is not None:
            self.progress.update(task, detail=f"[green]{status}[/] {shown}")
        return value


def build_images(
    *, force: bool = False, console: Console | None = None, progress: bool = True
) -> BuildResult:
    """Build (or find cached) the base and node images; returns their tags.

    force: rebuild every step even when its output exists.
    """
    client = docker_client()
    # One build at a time on this machine: two `lab up`s (or test sessions) starting
    # together must not debootstrap or docker-build the same thing twice.
    with open(cache_dir() / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(client, force, console, progress)


def progress_bar(console: Console | None, progress: bool) -> Progress | None:
    """The step list every image build shows (None: quiet)."""
    if not progress:
        return None
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", table_column=Column(min_width=20, no_wrap=True)),
        TimeElapsedColumn(),
        TextColumn(
            "[dim]{task.fields[detail]}", table_column=Column(no_wrap=True, overflow="ellipsis")
        ),
        console=console or Console(stderr=True),
    )


def base_rootfs_steps(steps: _Steps, force: bool, take_lock: bool = False):
    """The first two steps of every image: the host's apt mirror and the debootstrap
    tarball built from it (cached). -> (mirror, tarball)

    take_lock: for a caller that does not hold build.lock already (the VM build): it is
    taken only while a tarball is really built, never to find a cached one."""
    mirror = steps.run("find mirror", lambda log: ("found", host_mirror()))
    tarball = rootfs.tarball_path(mirror)

    def do_rootfs(log):
        if tarball.is_file() and not force:
            return "cached", tarball
        with contextlib.ExitStack() as held:
            if take_lock:
                lock = held.enter_context(open(cache_dir() / "build.lock", "w"))
                fcntl.flock(lock, fcntl.LOCK_EX)
            if force or not tarball.is_file():  # another build may have made it meanwhile
                rootfs.debootstrap(mirror, tarball, log)
        return "built", tarball

    steps.run("debootstrap rootfs", do_rootfs)
    return mirror, tarball


def _build_locked(client, force: bool, console: Console | None, progress: bool) -> BuildResult:
    bar = progress_bar(console, progress)
    steps = _Steps(bar)
    if bar is not None:
        bar.start()
    try:
        mirror, tarball = base_rootfs_steps(steps, force)

        base_tag = f"{rootfs.BASE_REPO}:{rootfs.base_digest(mirror)}"

        def do_import(log):
            if _image_exists(client, base_tag) and not force:
                return "cached", base_tag
            repo, tag = base_tag.split(":")
            client.api.import_image_from_file(
                str(tarball),
                repository=repo,
                tag=tag,
                changes=["ENV LANG=C.UTF-8", 'CMD ["/bin/bash"]', f"LABEL {LABEL}=base"],
            )
            if not _image_exists(client, base_tag):
                raise RuntimeError(f"docker import finished but {base_tag} is not there")
            _prune_superseded(client, rootfs.BASE_REPO, keep=base_tag, log=log)
            # older rootfs tarballs (other mirrors, package lists) are not needed any more
            keep = {tarball, tarball.with_suffix(".python.json")}
            for old in tarball.parent.glob("base-*"):
                if old not in keep and old.is_file():
                    old.unlink(missing_ok=True)
                    log(f"removed superseded {old.name}")
            return "built", base_tag

        steps.run("import base image", do_import)

        def do_wheels(log):
            fresh = not wheels.racklab_wheel_cached()
            own = wheels.racklab_wheel(log)
            deps = wheels.dependency_wheels(log, image_python(client, base_tag, tarball))
            return ("built" if fresh else "cached"), [own, *deps]

        wheel_files: list[Path] = steps.run("build wheels", do_wheels)
        recipe = recipes_dir() / "container"
        node_tag = f"{NODE_REPO}:" + digest(
            base_tag,
            tree_digest(recipe, [p for p in recipe.rglob("*") if p.is_file()]),
            source_digest(),
            sorted(p.name for p in wheel_files if not p.name.startswith("racklab-")),
        )

        def do_node(log):
            if _image_exists(client, node_tag) and not force:
                client.images.get(node_tag).tag(NODE_LATEST)
                return "cached", node_tag
            _docker_build(client, recipe, base_tag, node_tag, wheel_files, log)
            client.images.get(node_tag).tag(NODE_LATEST)
            _prune_superseded(client, NODE_REPO, keep=node_tag, log=log)
            return "built", node_tag

        steps.run("build node image", do_node)
    finally:
        if bar is not None:
            bar.stop()
    result = BuildResult(base_tag, node_tag, steps.results)
    # "ready"/"found" steps do no building; fold them into the cached/built verdict.
    for step in result.steps:
        if step.status in ("ready", "found"):
            step.status = "cached"
    return result


def image_python(client, base_tag: str, tarball: Path) -> dict:
    """The base image's Python version, glibc and machine (wheels must fit them),
    asked once per base image and remembered beside its tarball."""
    import json

    memo = tarball.with_suffix(".python.json")
    if memo.is_file():
        return json.loads(memo.read_text())
    script = (
        "import json, platform, sys; print(json.dumps({'python': '%d.%d' % sys.version_info[:2], "
        "'glibc': platform.libc_ver()[1], 'arch': platform.machine()}))"
    )
    out = client.containers.run(
        base_tag,
        ["python3", "-c", script],
        network_mode="none",
        remove=True,
        labels={LABEL: "probe"},
    )
    info = json.loads(out.decode().strip().splitlines()[-1])
    memo.write_text(json.dumps(info))
    return info


def _docker_build(
    client, recipe: Path, base_tag: str, tag: str, wheel_files: list[Path], log
) -> None:
    ctx = Path(tempfile.mkdtemp(prefix="racklab-image-", dir=cache_dir()))
    try:
        shutil.copytree(recipe, ctx, dirs_exist_ok=True)
        (ctx / "deps").mkdir()
        (ctx / "racklab").mkdir()
        for whl in wheel_files:
            sub = "racklab" if whl.name.startswith("racklab-") else "deps"
            shutil.copy2(whl, ctx / sub / whl.name)
        last = []
        # network_mode none: the build must not depend on any network, and cannot.
        for chunk in client.api.build(
            path=str(ctx),
            tag=tag,
            buildargs={"BASE": base_tag},
            network_mode="none",
            rm=True,
            forcerm=True,
            decode=True,
            labels={LABEL: "node"},
        ):
            if "error" in chunk:
                detail = "\n".join(last[-8:])
                raise RuntimeError(f"{chunk['error'].strip()}\n{detail}".strip())
            for line in str(chunk.get("stream", "")).splitlines():
                if line.strip():
                    log(line)
                    last.append(line)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)


def _prune_superseded(client, repo: str, keep: str, log) -> None:
    """Remove older content tags of ``repo`` so rebuilds do not pile up layers.
    An image still used by a container stays (Docker refuses, which is what we want)."""
    import docker.errors

    keep_id = client.images.get(keep).id
    for image in client.images.list(name=repo):
        if image.id == keep_id:
            continue
        for tag in image.tags:
            if not tag.startswith(repo + ":"):
                continue  # another name for the same image (a pin, a user's tag): keep it
            try:
                client.images.remove(tag)
                log(f"removed superseded {tag}")
            except docker.errors.APIError:
                pass


def ensure_node_image(console: Console | None = None, progress: bool = True) -> str:
    """The node image tag, building whatever is missing (cheap when all is cached)."""
    return build_images(console=console, progress=progress).node_tag


def list_images() -> list[dict]:
    """racklab's images in the Docker engine (for `lab images ls`)."""
    client = docker_client()
    out = []
    for image in client.images.list(filters={"label": LABEL}):
        out.append(
            {
                "tags": sorted(image.tags),
                "kind": image.labels.get(LABEL),
                "id": image.short_id.split(":")[-1],
                "size_bytes": image.attrs.get("Size"),
                "created": image.attrs.get("Created"),
            }
        )
    return sorted(out, key=lambda i: (i["kind"] or "", i["tags"]))


def remove_images(cache: bool = False) -> list[str]:
    """Remove racklab's images (and with cache=True the rootfs tarballs and wheels):
    `lab images rm`. Images still used by a container stay, with Docker's reason."""
    import docker.errors

    client = docker_client()
    removed = []
    # node images before the base image they are built on
    images = sorted(
        client.images.list(filters={"label": LABEL}), key=lambda i: i.labels.get(LABEL) == "base"
    )
    for image in images:
        for tag in image.tags or [image.id]:
            try:
                client.images.remove(tag)
                removed.append(f"image {tag}")
            except docker.errors.APIError as exc:
                removed.append(f"kept {tag}: {exc.explanation or exc}")
    if cache:
        for sub in ("rootfs", "wheels"):
            path = cache_dir() / sub
            if path.exists():
                shutil.rmtree(path)
                removed.append(f"cache {path}")
    return removed
