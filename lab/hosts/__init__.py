"""A lab over several machines: SSH control of the hosts, the racklab agent on each,
and simulated hosts to try it on one machine.

ssh.py        one paramiko connection per host per command, host keys checked
trust.py      `lab hosts trust`: record the hosts' keys on purpose
preflight.py  every check of every host before anything is made
agent.py      racklab installed on a host from racklab's own wheels, reused, purged
agentd.py     the agent's side: node contract calls on the host, one JSON line each
client.py     this machine's side of that conversation
relay.py      a command in a node on another host, as a local process (lab exec)
images.py     racklab's node image sent into a host's Docker engine
simulate.py   `lab hosts simulate`: hosts made of namespaces, own root fs, real sshd
"""
