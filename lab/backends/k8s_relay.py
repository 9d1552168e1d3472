"""The host link of a lab whose rack network the pods carry (lab/backends/k8s_overlay.py):
Ethernet frames between a TAP on this machine and a TAP in the lab's router pod,
carried over one TCP stream.

    this machine                                  router pod
    tap rl<id>-t 10.X.0.2  <- connect ==TCP==> serve ->  tap ctl 10.X.0.1
    route 10.X.0.0/16 via 10.X.0.1                       (routes to the rack bridges)

The stream is a direct connection where this machine reaches the pod (podman here, a
cluster whose pod IPs are routed to it), or the API server's port-forward to the pod
(any cluster: the way `kubectl port-forward` and telepresence reach pods). Only the
machine running `lab` uses it (clients, readiness, `lab status`); traffic between
the lab's nodes stays on the cluster's pod network.

Each frame is sent as a two-byte length and the frame. A TAP without a vnet header
gets whole frames with their checksums done (the kernel segments large packets
before handing them to it), so frames cross as they are.

    python -m lab.backends.k8s_relay serve --tap ctl --port 7946 [--listen 0.0.0.0]
    python -m lab.backends.k8s_relay connect --tap rl1a2b-t --address 10.X.0.2/24 \\
        --route 10.X.0.0/16=10.X.0.1 --mtu 1400 (--tcp IP:PORT | --pod NS/NAME --port P ...)
"""

from __future__ import annotations

import argparse
import fcntl
import os
import select
import socket
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
PORT = 7946  # the relay's TCP port in the router pod
HEADER = struct.Struct("!H")


def open_tap(name: str) -> int:
    if not os.path.exists("/dev/net/tun"):
        # a pod's /dev has no tun node; the runtime's device rules allow it (10:200)
        os.makedirs("/dev/net", exist_ok=True)
        os.mknod("/dev/net/tun", 0o666 | 0o020000, os.makedev(10, 200))
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def pump(tap: int, sock) -> None:
    """Frames both ways until the stream ends (returns) or fails (raises OSError)."""
    sock.setblocking(True)
    pending = b""
    while True:
        readable, _, _ = select.select([tap, sock], [], [])
        if tap in readable:
            out = []
            for _ in range(64):  # what is there now, in one send
                try:
                    frame = os.read(tap, 65535)
                except BlockingIOError:
                    break
                out.append(HEADER.pack(len(frame)) + frame)
            if out:
                sock.sendall(b"".join(out))
        if sock in readable:
            data = sock.recv(262144)
            if not data:
                return
            pending += data
            while len(pending) >= HEADER.size:
                (size,) = HEADER.unpack_from(pending)
                if len(pending) < HEADER.size + size:
                    break
                frame = pending[HEADER.size : HEADER.size + size]
                pending = pending[HEADER.size + size :]
                try:
                    os.write(tap, frame)
                except OSError:
                    pass  # the interface is down or full: a lost frame, as on a wire


def serve(tap_name: str, port: int, listen: str = "127.0.0.1") -> None:
    """In the router pod: one client at a time; a new one replaces the old (a
    reconnecting `lab` after its port-forward broke). ``listen``: loopback where the
    port-forward is the way in (it connects inside the pod, and nothing else on the
    cluster can then send frames into the lab), the pod's addresses where this
    machine connects directly."""
    tap = open_tap(tap_name)
    listener = socket.create_server((listen, port))
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            pump(tap, conn)
        except OSError:
            pass
        finally:
            conn.close()


def _direct(address: str):
    host, _, port = address.rpartition(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _forwarded(pod: str, port: int, kubeconfig: str, context: str | None):
    """A socket to ``port`` of ``pod`` (NS/NAME) through the API server's port-forward."""
    from kubernetes import client, config
    from kubernetes.stream import portforward

    api = client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig, context=context))
    namespace, _, name = pod.partition("/")
    forward = portforward(
        api.connect_get_namespaced_pod_portforward, name, namespace, ports=str(port)
    )
    return forward.socket(port)


def connect(args) -> None:
    """On this machine: the TAP with the host's address and the route to the lab, then
    the stream, made again whenever it breaks (until the process is killed)."""
    from pyroute2 import IPRoute

    tap = open_tap(args.tap)
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=args.tap)[0]
        ipr.link("set", index=idx, mtu=args.mtu, state="up")
        addr, _, plen = args.address.partition("/")
        ipr.addr("add", index=idx, address=addr, prefixlen=int(plen))
        for route in args.route:
            net, _, via = route.partition("=")
            dst, _, dlen = net.partition("/")
            ipr.route("replace", dst=dst, dst_len=int(dlen), gateway=via, oif=idx)
    try:
        with open(f"/proc/sys/net/ipv6/conf/{args.tap}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass
    first = True
    while True:
        try:
            if args.tcp:
                sock = _direct(args.tcp)
            else:
                sock = _forwarded(args.pod, args.port, args.kubeconfig, args.context)
        except Exception as exc:  # noqa: BLE001 - any failure to reach the pod: try again
            if first:
                print(f"cannot reach the router pod: {exc}", flush=True)
                sys.exit(1)
            time.sleep(1)
            continue
        if first:
            print("ready", flush=True)
            os.close(1)
            first = False
        try:
            pump(tap, sock)
        except OSError:
            pass
        finally:
            sock.close()
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lab.backends.k8s_relay")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="in the router pod")
    s.add_argument("--tap", default="ctl")
    s.add_argument("--port", type=int, default=PORT)
    s.add_argument("--listen", default="127.0.0.1")
    c = sub.add_parser("connect", help="on the machine running lab")
    c.add_argument("--tap", required=True)
    c.add_argument("--address", required=True, help="this machine's address, CIDR")
    c.add_argument("--route", action="append", default=[], help="NET=VIA")
    c.add_argument("--mtu", type=int, default=1400)
    c.add_argument("--tcp", help="IP:PORT of the router pod's relay")
    c.add_argument("--pod", help="NS/NAME of the router pod, through the port-forward")
    c.add_argument("--port", type=int, default=PORT)
    c.add_argument("--kubeconfig")
    c.add_argument("--context")
    a = p.parse_args(argv)
    try:
        if a.cmd == "serve":
            serve(a.tap, a.port, a.listen)
        else:
            connect(a)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
