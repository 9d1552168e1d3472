"""VM nodes that terraform made (terraform/ and `lab terraform render`): racklab reaches
them as it reaches its own VMs, over SSH with the lab's key, checking each node's host
key, and drives their lifecycle through libvirt at the URI of the node's host
(qemu:///system, qemu+ssh://...). What it does not do is make or remove them: `lab up`
finds the domains terraform made, and `lab down` stops racklab's services in them and
leaves the machines to `terraform destroy`.

A node's spec carries, in ``extra["terraform"]``, what the rendered module's output
says of it: the URI, the domain's name, and the key files in the rendered DIR.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from lab.backends.base import NODE_DATA_DIR, Backend, NodeSpec

from .libvirt import VMError
from .node import SVC_DIR, VMNode, boot_timeout


def _open(uri: str):
    import libvirt

    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise VMError(f"cannot reach libvirt at {uri} ({exc.get_error_message()})") from None


class TerraformVMNode(VMNode):
    """A VM node whose domain, disks and network terraform made."""

    def __init__(self, spec: NodeSpec, conn=None, saved: dict | None = None):
        super().__init__(spec, conn, saved)
        tf = dict((saved or {}).get("terraform") or spec.extra.get("terraform") or {})
        if not tf:
            raise VMError(f"node {spec.name}: no terraform facts (uri, domain, keys) for it")
        self.tf = tf
        self.domain_name = tf["domain"]
        self.key_path = Path(tf["key"])
        self.tap = ""  # the NIC is on terraform's libvirt network, not on a racklab tap

    @property
    def conn(self):
        if self._conn is None:
            self._conn = _open(self.tf["uri"])
        return self._conn

    @property
    def host_key(self) -> Path:
        return Path(self.tf["host_key"])

    def boot(self) -> None:
        """Start the domain and wait for SSH: the serial console of a VM on another
        host is not a file here to watch."""
        import libvirt

        try:
            self.domain().create()
        except libvirt.libvirtError as exc:
            raise VMError(f"node {self.name}: libvirt could not start the VM: "
                          f"{exc.get_error_message()}") from None  # fmt: skip
        self.wait_ssh(boot_timeout())

    def _rewire(self) -> None:
        return  # its NIC is on terraform's rack network whenever the domain runs

    def attach_network(self) -> None:
        """Nothing to plug in: terraform put the NIC on its rack's libvirt network, and
        the guest takes its address from its seed."""
        return

    def logs(self) -> str:
        """The guest's kernel log, over SSH (its console is on its own host)."""
        if not self.running() or self.paused():
            return ""
        try:
            return self._run_quiet("dmesg")[1]
        except Exception:  # noqa: BLE001 - a log is best effort: no SSH, no log
            return ""

    def destroy(self) -> None:
        """Remove what racklab put in the guest (its services and their data); the
        machine is terraform's, and stays."""
        if not self.running() or self.paused():
            return
        script = (
            f'for p in {SVC_DIR}/*.pid; do [ -e "$p" ] || continue; '
            'kill -KILL -- -"$(cat "$p")" 2>/dev/null; kill -KILL "$(cat "$p")" 2>/dev/null; '
            f'rm -f "$p"; done; rm -rf {shlex.quote(NODE_DATA_DIR)}/* {SVC_DIR}/*'
        )
        status, out = self._run_quiet(script)
        if status != 0:
            raise VMError(f"node {self.name}: could not clear racklab's files: {out.strip()}")
        self._drop_connection()

    def describe(self) -> dict:
        info = super().describe()
        for local in ("tap", "overlay", "config_disk", "console", "image"):
            info.pop(local, None)  # racklab made none of these for this node
        info.update(backend="vm-terraform", terraform=self.tf, uri=self.tf["uri"])
        return info


class TerraformVMBackend(Backend):
    """Finds the VMs terraform made instead of making them."""

    kind = "vm"

    def create(self, spec: NodeSpec) -> TerraformVMNode:
        import libvirt

        node = TerraformVMNode(spec)
        tf = node.tf
        node.dir.mkdir(parents=True, exist_ok=True)
        pub = Path(tf["host_key"] + ".pub").read_text().split()
        (node.dir / "known_hosts").write_text(f"{node.address} {pub[0]} {pub[1]}\n")
        try:
            dom = node.conn.lookupByName(tf["domain"])
        except libvirt.libvirtError:
            raise VMError(f"node {spec.name}: libvirt at {tf['uri']} has no domain "
                          f"{tf['domain']}: run `terraform -chdir={tf['dir']} apply` "
                          "first") from None  # fmt: skip
        if dom.state()[0] == libvirt.VIR_DOMAIN_PAUSED:
            dom.resume()
        if not dom.isActive():
            node.boot()
        else:
            node.wait_ssh(boot_timeout())
        return node

    def attach(self, spec: NodeSpec, saved: dict) -> TerraformVMNode:
        return TerraformVMNode(spec, saved=saved)
