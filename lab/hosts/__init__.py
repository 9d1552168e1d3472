"""A lab over several machines: SSH control of the hosts, and simulated hosts to try it.

simulate.py  ``lab hosts simulate``: hosts made of namespaces on this machine, each with
             its own root filesystem and Debian's real sshd
keys.py      SSH keys and known_hosts lines racklab writes itself
"""
