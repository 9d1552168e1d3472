"""The image builder: base rootfs (debootstrap), base image, node image (images/ recipes)."""

from lab.images.build import (
    NODE_LATEST,
    BuildError,
    BuildResult,
    build_images,
    ensure_node_image,
    list_images,
    remove_images,
)

__all__ = [
    "NODE_LATEST",
    "BuildError",
    "BuildResult",
    "build_images",
    "ensure_node_image",
    "list_images",
    "remove_images",
]
