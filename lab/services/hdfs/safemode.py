"""The NameNode's safe mode (Hadoop's BlockManagerSafeMode): after a start nothing changes
until enough complete blocks have been reported (dfs.namenode.safemode.threshold-pct) by
enough DataNodes (dfs.namenode.safemode.min.datanodes), and dfs.namenode.safemode.extension
has passed; or until an administrator's leave. A mixin of NameNode."""

from __future__ import annotations

import logging
import math
import time

from ..hadoop.errors import SafeModeException

log = logging.getLogger("hdfs.namenode")


class SafeMode:
    def safe_blocks(self) -> tuple[int, int]:
        total = safe = 0
        for info in self.bm.blocks.values():
            if info.complete:
                total += 1
                if len(self.bm.live_replicas(info)) >= self.bm.min_replication:
                    safe += 1
        return safe, total

    def _check_safemode(self) -> None:
        if self.safemode_manual:
            return  # entered by an administrator: only an explicit leave ends it
        safe, total = self.safe_blocks()
        threshold = math.ceil(total * self.safemode_pct) if total else 0
        met = safe >= threshold and len(self.bm.live_nodes()) >= self.safemode_min_dn
        if not met:
            self.safemode_reached = None
            return
        if total > 0 and self.safemode_extension > 0:
            if self.safemode_reached is None:
                self.safemode_reached = time.monotonic()
                log.info("safe mode thresholds reached, extension %.1fs", self.safemode_extension)
                return
            if time.monotonic() - self.safemode_reached < self.safemode_extension:
                return
        self.safemode_on = False
        self.bm.recheck_all()
        log.info(
            "leaving safe mode after %.1fs: %d of %d blocks reported",
            time.monotonic() - self.started,
            safe,
            total,
        )

    def safemode_tip(self) -> str:
        if not self.safemode_on:
            return ""
        if self.safemode_manual:
            return (
                'Safe mode is ON. It was turned on manually. Use "hdfs dfsadmin -safemode leave" '
                "to turn safe mode off."
            )
        safe, total = self.safe_blocks()
        threshold = math.ceil(total * self.safemode_pct) if total else 0
        if safe < threshold:
            return (
                f"Safe mode is ON. The reported blocks {safe} needs additional {threshold - safe} blocks to reach "
                f"the threshold {self.safemode_pct:.4f} of total blocks {total}."
            )
        return (
            f"Safe mode is ON. The reported blocks {safe} has reached the threshold {self.safemode_pct:.4f} of "
            f"total blocks {total}. The number of live datanodes {len(self.bm.live_nodes())} has reached the "
            f"minimum number {self.safemode_min_dn}. Safe mode will be turned off automatically soon."
        )

    def check_not_safemode(self, what: str) -> None:
        if self.safemode_on:
            raise SafeModeException(f"{what}. Name node is in safe mode.\n{self.safemode_tip()}")
