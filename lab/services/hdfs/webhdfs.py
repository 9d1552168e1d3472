"""WebHDFS parameters and JSON bodies as Hadoop's org.apache.hadoop.hdfs.web.resources
defines them: the op enums per HTTP method, typed parameters with their domains, and the
error text Hadoop produces for a bad value."""

from __future__ import annotations

import re

from ..hadoop.errors import IllegalArgumentException, InvalidPathException

PREFIX = "/webhdfs/v1"

OPS = {
    "GET": {
        "OPEN",
        "GETFILESTATUS",
        "LISTSTATUS",
        "GETCONTENTSUMMARY",
        "GETFILECHECKSUM",
        "GETHOMEDIRECTORY",
        "GETTRASHROOT",
        "GETFILEBLOCKLOCATIONS",
        "GETBLOCKLOCATIONS",
        "GETACLSTATUS",
        "GETXATTRS",
        "LISTXATTRS",
        "GETDELEGATIONTOKEN",
        "CHECKACCESS",
        "GETALLSTORAGEPOLICY",
        "GETSTORAGEPOLICY",
        "GETSNAPSHOTDIFF",
        "GETSNAPSHOTTABLEDIRECTORYLIST",
        "LISTSTATUS_BATCH",
        "GETSERVERDEFAULTS",
        "GETQUOTAUSAGE",
        "GETFILELINKSTATUS",
        "GETSTATUS",
        "NULL",
    },
    "PUT": {
        "CREATE",
        "MKDIRS",
        "CREATESYMLINK",
        "RENAME",
        "SETREPLICATION",
        "SETOWNER",
        "SETPERMISSION",
        "SETTIMES",
        "RENEWDELEGATIONTOKEN",
        "CANCELDELEGATIONTOKEN",
        "MODIFYACLENTRIES",
        "REMOVEACLENTRIES",
        "REMOVEDEFAULTACL",
        "REMOVEACL",
        "SETACL",
        "SETXATTR",
        "REMOVEXATTR",
        "ENABLEECPOLICY",
        "DISABLEECPOLICY",
        "SETECPOLICY",
        "ALLOWSNAPSHOT",
        "DISALLOWSNAPSHOT",
        "CREATESNAPSHOT",
        "RENAMESNAPSHOT",
        "SETSTORAGEPOLICY",
        "SATISFYSTORAGEPOLICY",
        "SETQUOTA",
        "SETQUOTABYSTORAGETYPE",
        "NULL",
    },
    "POST": {"APPEND", "CONCAT", "TRUNCATE", "UNSETECPOLICY", "UNSETSTORAGEPOLICY", "NULL"},
    "DELETE": {"DELETE", "DELETESNAPSHOT", "NULL"},
}
ENUM_CLASS = {
    "GET": "GetOpParam",
    "PUT": "PutOpParam",
    "POST": "PostOpParam",
    "DELETE": "DeleteOpParam",
}


def _bad(name: str, detail: str) -> IllegalArgumentException:
    return IllegalArgumentException(f'Invalid value for webhdfs parameter "{name}": {detail}')


def parse_op(method: str, query: dict[str, str]) -> str:
    if method not in OPS:
        raise IllegalArgumentException(f"Unsupported HTTP method {method}")
    raw = query.get("op")
    if raw is None:
        # Hadoop defaults op to NULL, which no handler accepts.
        raise IllegalArgumentException(
            f'Invalid value for webhdfs parameter "op": op=NULL is not supported ({method})'
        )
    op = raw.upper()
    if op not in OPS[method]:
        raise _bad(
            "op",
            f"No enum constant org.apache.hadoop.hdfs.web.resources.{ENUM_CLASS[method]}.Op.{raw}",
        )
    return op


def get_bool(query: dict[str, str], name: str, default: bool) -> bool:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise _bad(name, f'Failed to parse "{raw}" to Boolean.')


def get_long(
    query: dict[str, str],
    name: str,
    default: int | None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "" or raw.lower() == "null":
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise _bad(name, f'Failed to parse "{raw}" as a radix-10 long integer.') from None
    if minimum is not None and value < minimum:
        raise _bad(name, f"Invalid parameter range: {name} = {value} < {minimum}")
    if maximum is not None and value > maximum:
        raise _bad(name, f"Invalid parameter range: {name} = {value} > {maximum}")
    return value


def get_permission(
    query: dict[str, str], default: int | None, name: str = "permission"
) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "" or raw.lower() == "null":
        return default
    if not re.fullmatch(r"[01]?[0-7]{1,3}", raw):
        raise _bad(name, f'Failed to parse "{raw}" as a radix-8 short integer.')
    return int(raw, 8)


# Hadoop's dfs.webhdfs.user.provider.user.pattern default (UserParam's domain).
USER_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]*[$]?$")


def get_user(query: dict[str, str], default: str) -> str:
    """The caller's user name (user.name, else doas, else the static user), refused as
    Hadoop's UserParam refuses one outside its domain (a NUL, a space, a slash...)."""
    for name in ("user.name", "doas"):
        raw = query.get(name)
        if raw:
            if len(raw) > 255 or not USER_PATTERN.match(raw):
                raise IllegalArgumentException(
                    f'Invalid value: "{raw[:100]}" does not belong to the domain '
                    f"{USER_PATTERN.pattern}"
                )
            return raw
    return default


def get_required(query: dict[str, str], name: str) -> str:
    raw = query.get(name)
    if raw is None or raw == "":
        raise _bad(name, "the parameter is required for this operation and is missing.")
    return raw


def hdfs_path(url_path: str) -> str:
    """The HDFS path of a WebHDFS URL path."""
    if not url_path.startswith(PREFIX):
        raise InvalidPathException(f"Invalid path name {url_path}: not under {PREFIX}")
    path = url_path[len(PREFIX) :] or "/"
    if not path.startswith("/"):
        path = "/" + path
    return path


def file_status(node, name: str | None = None) -> dict:
    """The FileStatus JSON object of an inode."""
    is_dir = node.is_dir
    status = {
        "accessTime": 0 if is_dir else node.atime,
        "blockSize": 0 if is_dir else node.block_size,
        "childrenNum": len(node.children) if is_dir else 0,
        "fileId": node.inode_id,
        "group": node.group,
        "length": 0 if is_dir else node.length,
        "modificationTime": node.mtime,
        "owner": node.owner,
        "pathSuffix": node.name if name is None else name,
        "permission": format(node.mode, "o"),
        "replication": 0 if is_dir else node.replication,
        "storagePolicy": 0,
        "type": "DIRECTORY" if is_dir else "FILE",
    }
    if node.acl:
        status["aclBit"] = True  # as JsonUtil adds it, only when true
    return status


def block_locations(located: dict, op: str, pool: str | None) -> dict:
    """GETFILEBLOCKLOCATIONS (Hadoop 3's BlockLocation[]) or GETBLOCKLOCATIONS (LocatedBlocks)."""
    if op == "GETFILEBLOCKLOCATIONS":
        items = []
        for lb in located["blocks"]:
            locs = lb["locations"]
            items.append(
                {
                    "cachedHosts": [],
                    "corrupt": lb["corrupt"],
                    "hosts": [d["hostName"] for d in locs],
                    "names": [f"{d['ip']}:{d['xferPort']}" for d in locs],
                    "offset": lb["offset"],
                    "length": lb["block"]["numBytes"],
                    "storageIds": [f"DS-{d['uuid']}" for d in locs],
                    "storageTypes": ["DISK"] * len(locs),
                    "topologyPaths": [f"{d['rack']}/{d['ip']}:{d['xferPort']}" for d in locs],
                }
            )
        return {"BlockLocations": {"BlockLocation": items}}
    blocks = []
    for lb in located["blocks"]:
        b = lb["block"]
        blocks.append(
            {
                "block": {
                    "blockId": b["blockId"],
                    "blockPoolId": pool,
                    "generationStamp": b["genStamp"],
                    "numBytes": b["numBytes"],
                },
                "blockToken": {"urlString": ""},
                "cachedLocations": [],
                "isCorrupt": lb["corrupt"],
                "startOffset": lb["offset"],
                "storageTypes": ["DISK"] * len(lb["locations"]),
                "locations": [
                    {
                        "hostName": d["hostName"],
                        "ipAddr": d["ip"],
                        "xferPort": d["xferPort"],
                        "infoPort": d["infoPort"],
                        "ipcPort": d.get("ipcPort", 0),
                        "networkLocation": d["rack"],
                        "datanodeUuid": d["uuid"],
                        "adminState": "NORMAL",
                    }
                    for d in lb["locations"]
                ],
            }
        )
    return {
        "LocatedBlocks": {
            "fileLength": located["fileLength"],
            "isUnderConstruction": located["underConstruction"],
            "isLastBlockComplete": not located["underConstruction"],
            "locatedBlocks": blocks,
            "lastLocatedBlock": blocks[-1] if blocks else None,
        }
    }
