"""Hadoop's trash on the NameNode's side: fs.trash.interval (minutes; 0, Hadoop's default,
turns trash off) given to clients in getServerDefaults, and the emptier the NameNode runs
when it is on (TrashPolicyDefault.Emptier): every fs.trash.checkpoint.interval (the
interval when 0 or larger) each user's /user/<name>/.Trash/Current is renamed to a
checkpoint named for the time (yyMMddHHmmss), and checkpoints older than the interval
are deleted. What a client moves into the trash is its own business (hdfs-native's
Client.trash, `lab hdfs dfs -rm`)."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("hdfs.namenode")

CURRENT = "Current"
CHECKPOINT_FORMAT = "%y%m%d%H%M%S"  # SimpleDateFormat("yyMMddHHmmss")


def trash_minutes(conf) -> float:
    return float(conf.get("fs.trash.interval") or 0)


def checkpoint_time(name: str) -> float | None:
    """The time a checkpoint's name says (DateFormat.parse reads the leading digits, so
    a "-1" suffix added on a clash is ignored); None for anything else."""
    try:
        return time.mktime(time.strptime(name[:12], CHECKPOINT_FORMAT))
    except ValueError:
        return None


class TrashEmptier:
    def __init__(self, nn) -> None:
        self.nn = nn
        self.deletion = trash_minutes(nn.conf) * 60  # seconds
        every = float(nn.conf.get("fs.trash.checkpoint.interval") or 0) * 60
        self.every = every if 0 < every <= self.deletion else self.deletion
        self.next = self._ceiling(time.time()) if self.deletion > 0 else None

    def _ceiling(self, now: float) -> float:
        return (now // self.every + 1) * self.every

    def tick(self) -> None:
        """From the NameNode's monitor: a pass when the interval's boundary has passed."""
        if self.next is None or self.nn.safemode_on:
            return
        now = time.time()
        if now < self.next:
            return
        self.next = self._ceiling(now)
        for root in self._roots():
            self._delete_checkpoints(root, now)
            self._create_checkpoint(root, now)

    def _roots(self) -> list[str]:
        """FileSystem.getTrashRoots(allUsers): every /user/<name>/.Trash directory."""
        users = self.nn.ns.lookup("/user")
        if users is None or not users.is_dir:
            return []
        return [
            f"/user/{name}/.Trash"
            for name, home in sorted(users.children.items())
            if home.is_dir and getattr(home.children.get(".Trash"), "is_dir", False)
        ]

    def _create_checkpoint(self, root: str, now: float) -> None:
        if self.nn.ns.lookup(f"{root}/{CURRENT}") is None:
            return
        base = f"{root}/{time.strftime(CHECKPOINT_FORMAT, time.localtime(now))}"
        checkpoint, attempt = base, 0
        while self.nn.ns.lookup(checkpoint) is not None:
            attempt += 1
            checkpoint = f"{base}-{attempt}"
        self.nn.rename(f"{root}/{CURRENT}", checkpoint, self.nn.superuser)
        log.info("Created trash checkpoint: %s", checkpoint)

    def _delete_checkpoints(self, root: str, now: float) -> None:
        node = self.nn.ns.lookup(root)
        for name in sorted(node.children) if node is not None else []:
            if name == CURRENT:
                continue
            path = f"{root}/{name}"
            made = checkpoint_time(name)
            if made is None:
                log.warning("Unexpected item in trash: %s. Ignoring.", path)
                continue
            if now - self.deletion > made:
                self.nn.delete(path, True, self.nn.superuser)
                log.info("Deleted trash checkpoint: %s", path)
