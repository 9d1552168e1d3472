"""lab images: build, list and remove racklab's node images."""

from __future__ import annotations

import typer

from lab.cli.common import (
    JSON,
    _emit,
    _need_root,
    err,
    images_app,
    out,
)


@images_app.command("build")
def images_build(
    vm: bool = typer.Option(False, "--vm", help="Also the VM disk and kernel."),
    force: bool = typer.Option(False, help="Rebuild every step even when cached."),
    as_json: bool = JSON,
):
    """Build the container image (and with --vm the VM image) from a debootstrap rootfs.

    \b
    Examples:
      lab images build
      lab images build --vm
    """
    from lab.images import build

    _need_root()
    # a BuildError (exit 1) names the step that failed
    results = [build.build_images(force=force, console=err, progress=not as_json)]
    if vm:
        from lab.images import vm as vmimage

        results.append(vmimage.build_vm_image(force=force, console=err, progress=not as_json))
    data = [r.as_dict() for r in results]
    if not _emit(data, as_json):
        for r in results:
            what = "cached" if r.cached else "built"
            out.print(
                f"{what}: {', '.join(f'{k}={v}' for k, v in r.as_dict().items() if k != 'steps')}"
            )


@images_app.command("ls")
def images_ls(as_json: bool = JSON):
    """racklab's images in the Docker engine.

    \b
    Example:
      lab images ls
    """
    from lab.images import build

    images = build.list_images()
    if not _emit(images, as_json):
        for i in images:
            size = f"{(i['size_bytes'] or 0) / 2**20:.0f} MiB"
            out.print(f"{i['kind'] or '-':<6} {i['id']:<14} {size:>9}  {' '.join(i['tags'])}")


@images_app.command("rm")
def images_rm(
    cache: bool = typer.Option(False, "--cache", help="Also the rootfs tarballs and wheels."),
    as_json: bool = JSON,
):
    """Remove racklab's images (images still used by a container stay).

    \b
    Examples:
      lab images rm
      lab images rm --cache
    """
    from lab.images import build

    _need_root()
    removed = build.remove_images(cache=cache)
    if not _emit({"removed": removed}, as_json):
        for r in removed:
            out.print(f"removed {r}")
