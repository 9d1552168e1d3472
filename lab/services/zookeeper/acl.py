"""ACL schemes: world, digest, ip (and auth, expanded at create/setACL time), with
ZooKeeper's checkACL and fixupACL rules."""

from __future__ import annotations

import base64
import hashlib
import ipaddress

from .proto import ACL, Err, Id, ZKError


def digest(user_password: str) -> str:
    """DigestAuthenticationProvider.generateDigest: user:base64(sha1(user:password))."""
    user = user_password.split(":", 1)[0]
    h = hashlib.sha1(user_password.encode("utf-8")).digest()
    return f"{user}:{base64.b64encode(h).decode('ascii')}"


def _ip_matches(pattern: str, addr: str) -> bool:
    try:
        net = ipaddress.ip_network(pattern, strict=False)
        return ipaddress.ip_address(addr) in net
    except ValueError:
        return False


def _valid_id(scheme: str, ident: str | None) -> bool:
    if ident is None:
        return False
    if scheme == "digest":
        return len(ident.split(":")) == 2
    if scheme == "ip":
        try:
            ipaddress.ip_network(ident, strict=False)
            return True
        except ValueError:
            return False
    return False


def allows(acl, perm: int, auth: list[Id]) -> bool:
    """Whether one of the ACL entries grants perm to one of the ids."""
    if not acl:
        return True
    for a in auth:
        if a.scheme == "super":
            return True
    for entry in acl:
        if not entry.perms & perm:
            continue
        ident = entry.id
        if ident.scheme == "world" and ident.id == "anyone":
            return True
        for a in auth:
            if a.scheme != ident.scheme:
                continue
            if ident.scheme == "digest" and a.id == ident.id:
                return True
            if ident.scheme == "ip" and _ip_matches(ident.id, a.id):
                return True
    return False


def check(acl, perm: int, auth: list[Id]) -> None:
    """Raise NoAuth unless one of the ACL entries grants perm to one of the ids."""
    if not allows(acl, perm, auth):
        raise ZKError(Err.NO_AUTH)


def fixup(acl, auth: list[Id]) -> list[ACL]:
    """Validate a client's ACL list; expand `auth` to the caller's authenticated ids."""
    # PrepRequestProcessor.fixupACL drops repeated entries first (ZOOKEEPER-1877)
    unique: list[ACL] = []
    for entry in acl or ():
        if entry not in unique:
            unique.append(entry)
    if not unique:
        raise ZKError(Err.INVALID_ACL)
    out: list[ACL] = []
    for entry in unique:
        ident = entry.id
        if ident is None or ident.scheme is None:
            raise ZKError(Err.INVALID_ACL)
        if ident.scheme == "world" and ident.id == "anyone":
            out.append(entry)
        elif ident.scheme == "auth":
            # Only schemes that authenticate a person (digest) can stand in for auth.
            ids = [a for a in auth if a.scheme in ("digest", "super")]
            if not ids:
                raise ZKError(Err.INVALID_ACL)
            out.extend(ACL(entry.perms, Id(a.scheme, a.id)) for a in ids)
        elif _valid_id(ident.scheme, ident.id):
            out.append(entry)
        else:
            raise ZKError(Err.INVALID_ACL)
    return out
