"""What a host's node kinds need there (a Docker engine, libvirt and QEMU, ...): asked
of the host's agent, and installed by `lab hosts install`.

The controller never says which kind needs what. The agent answers, for each kind a
host's nodes use, that kind's ``Backend.facts()`` on the host (the engine's version,
the VM accelerator), or the one sentence its backend gave when the machinery did not
answer; `lab up` and `lab hosts check` both stop on that sentence. What installing
means is each backend's too (``host_packages``, ``host_daemons``): Debian's packages,
from the host's own repositories, and the daemons started where none runs.
"""

from __future__ import annotations

import shlex

from lab.hosts.ssh import Host, HostError


def kinds_on(topo) -> dict[str, set[str]]:
    """The node kinds of a topology's nodes on each of its hosts."""
    out: dict[str, set[str]] = {h: set() for h in topo.hosts}
    for nd in topo.nodes.values():
        out[topo.rack_host[nd.rack]].add(nd.kind)
    return out


def check(host: Host, agent, kinds) -> dict[str, dict]:
    """Each kind's facts on ``host``, asked of its ``agent``; HostError naming the first
    kind whose machinery does not answer there, and how to get it."""
    got = agent.call("machinery", kinds=sorted(set(kinds)))
    for kind in sorted(got):
        problem = got[kind].get("error")
        if problem:
            # the backend's sentence says what is wrong and how to fix it on this
            # machine; on a host, racklab installs it
            what = problem.split("; ")[0]
            raise HostError(
                host.spec,
                f"its {kind} nodes cannot run there: {what}; `lab hosts install FILE` "
                f"installs and starts {_spell(kind)}",
            )
    return got


def _spell(kind: str) -> str:
    from lab.backends import get_backend

    b = get_backend(kind)
    words = [*b.host_packages, *(unit for unit, _, _ in b.host_daemons)]
    return "what they need (" + ", ".join(dict.fromkeys(words)) + ")"


# Packages missing from the host: installed with apt where it has it; else the sentence
# names them (exit 3). Each daemon that is not running is started, by systemd where it
# runs the machine, else in the background of its own session; then waited for.
_INSTALL = r"""
set -e
missing=
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if ! command -v apt-get >/dev/null; then echo "missing:$missing"; exit 3; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends $missing >&2
  echo "installed:$missing"
fi
for d in $DAEMONS; do
  unit=${d%%:*}; rest=${d#*:}; proc=${rest%%:*}; cmd=$(echo "${rest#*:}" | tr , ' ')
  pgrep -x "$proc" >/dev/null && continue
  if [ -d /run/systemd/system ]; then systemctl enable --now "$unit" >&2
  else setsid $cmd </dev/null >>"/var/log/racklab-$proc.log" 2>&1 & fi
  for i in $(seq 1 60); do pgrep -x "$proc" >/dev/null && break; sleep 0.5; done
  pgrep -x "$proc" >/dev/null || { echo "nostart:$proc"; exit 4; }
  echo "started:$proc"
done
"""


def install(host: Host, kinds) -> list[str]:
    """What the node ``kinds`` need on ``host``: what was done, one phrase each
    (nothing when all is there and running); HostError when it cannot be."""
    from lab.backends import get_backend

    packages: list[str] = []
    daemons: list[str] = []
    for kind in sorted(set(kinds)):
        b = get_backend(kind)
        packages += b.host_packages
        daemons += [f"{u}:{p}:{c.replace(' ', ',')}" for u, p, c in b.host_daemons]
    if not packages and not daemons:
        return []
    env = f"PACKAGES={shlex.quote(' '.join(dict.fromkeys(packages)))} " \
          f"DAEMONS={shlex.quote(' '.join(dict.fromkeys(daemons)))}"  # fmt: skip
    r = host.run(f"{env}; {_INSTALL}", timeout=1800)
    done = []
    for line in r.out.splitlines():
        word, _, rest = line.partition(":")
        if word == "missing":
            raise HostError(
                host.spec,
                f"has no apt-get to install what its nodes need; install the packages "
                f"that provide{rest} (their Debian names) and start them",
            )
        if word == "nostart":
            raise HostError(host.spec, f"{rest} did not start (see /var/log/racklab-{rest}.log)")
        if word in ("installed", "started"):
            done.append(f"{word} {rest.strip()}")
    if r.code != 0:
        raise HostError(host.spec, f"installing{' ' + ' '.join(packages)} failed: {r.last_error}")
    return done
