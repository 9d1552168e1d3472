"""`lab hdfs` in-process for the HDFS tests: lab.services.hdfs.shell.run against a
MiniCluster, through the native door (Hadoop IPC and data transfer, as `hdfs dfs`) or
WebHDFS alone."""

from __future__ import annotations

import io

from lab.services.hdfs import shell


def run_shell(cluster, *argv: str, user: str = "root", native: bool = True):
    """-> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    rpc = f"{cluster.nn_ip}:{cluster.nn_rpc}" if native else None
    rc = shell.run(cluster.url, list(argv), out, err, user=user, rpc=rpc)
    return rc, out.getvalue(), err.getvalue()
