"""An application submission as YARN's REST API takes it (ApplicationSubmissionContext
in JSON) and an AM's container asks: parsed and checked before the RM accepts anything,
so a bad field is a 400 naming it."""

from __future__ import annotations

from .records import Resource
from .rmapp import RMApp
from .scheduler import Ask

# yarn.resourcemanager's fixed limits on application tags (YarnConfiguration
# RM_APPLICATION_MAX_TAGS / RM_APPLICATION_MAX_TAG_LENGTH).
MAX_TAGS, MAX_TAG_LENGTH = 10, 100


def tags(ctx: dict) -> list[str]:
    """application-tags as the REST API takes them ({"tag": [..]}, a list or one string),
    checked as ApplicationSubmissionContext.checkTags checks them."""
    tags = ctx.get("application-tags")
    if tags is None:
        return []
    tags = tags.get("tag") if isinstance(tags, dict) else tags
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError("application-tags.tag must be a string or a list of strings")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"Too many applicationTags, a maximum of only {MAX_TAGS} are allowed!")
    for t in tags:
        if len(t) > MAX_TAG_LENGTH:
            raise ValueError(
                f"Tag {t[:MAX_TAG_LENGTH]}..., is too long, maximum allowed length of a tag is "
                f"{MAX_TAG_LENGTH}"
            )
        if not (t.isascii() and t.isprintable()):
            raise ValueError(f"A tag can only have ASCII characters! Invalid tag - {t!r}")
    return tags


def commands(spec: dict) -> list[str]:
    cmds = spec.get("commands")
    if isinstance(cmds, dict):
        cmds = cmds.get("command")
    if isinstance(cmds, str):
        cmds = [cmds]
    if cmds is None:
        return []
    if not isinstance(cmds, list) or not all(isinstance(c, str) for c in cmds):
        raise ValueError("am-container-spec.commands.command must be a string or a list of strings")
    return cmds


def entries(spec: dict, name: str) -> list:
    """A JAXB map as JSON: {"entry": [{"key", "value"}, ...]}, one entry, or a bare list."""
    value = spec.get(name) or {}
    entries = value.get("entry", []) if isinstance(value, dict) else value
    if entries is None:
        return []
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise ValueError(f"am-container-spec.{name}.entry must be a list of key/value objects")
    return entries


def environment(spec: dict) -> dict[str, str]:
    out = {}
    for e in entries(spec, "environment"):
        if not isinstance(e, dict) or "key" not in e:
            raise ValueError("am-container-spec.environment.entry items need key and value")
        out[str(e["key"])] = str(e.get("value", ""))
    return out


def local_resources(spec: dict) -> dict[str, dict]:
    out = {}
    for e in entries(spec, "local-resources"):
        if not isinstance(e, dict) or "key" not in e or not isinstance(e.get("value"), dict):
            raise ValueError(
                "am-container-spec.local-resources.entry items need key and value objects"
            )
        out[str(e["key"])] = e["value"]
    return out


def parse_ask(a: dict) -> Ask:
    if not isinstance(a, dict):
        raise ValueError("each ask must be an object")
    return Ask(
        request_id=int(a["allocationRequestId"]),
        priority=int(a.get("priority", 20)),
        capability=Resource.from_json(a.get("capability"), "capability"),
        num=int(a.get("numContainers", 1)),
        hosts=frozenset(a.get("nodes") or []),
        racks=frozenset(a.get("racks") or []),
        relax_locality=bool(a.get("relaxLocality", True)),
    )


def validate_submission(ctx: dict) -> None:
    """Checks done before accepting (so errors come back as 400s)."""
    spec = ctx.get("am-container-spec") or {}
    if not isinstance(spec, dict):
        raise ValueError("am-container-spec must be an object")
    commands(spec)
    environment(spec)
    local_resources(spec)
    tags(ctx)


def am_resource(ctx: dict) -> Resource:
    """What the AM container asks for (1 GiB and one vcore unless told)."""
    return Resource.from_json(ctx.get("resource") or {"memory": 1024, "vCores": 1}, "resource")


def app_from(ctx: dict, user: str, max_attempts: int, started: int) -> RMApp:
    """The RM's record of submission `ctx` (already checked), as accepted or as read back
    from the state store."""
    return RMApp(
        id=ctx["application-id"],
        name=str(ctx.get("application-name") or "N/A"),
        user=user,
        queue=str(ctx.get("queue") or "default"),
        app_type=str(ctx.get("application-type") or "YARN"),
        tags=tags(ctx),
        priority=int(ctx.get("priority") or 0),
        am_spec=ctx.get("am-container-spec") or {},
        am_resource=am_resource(ctx),
        max_attempts=max_attempts,
        unmanaged=bool(ctx.get("unmanaged-AM", False)),
        started=started,
        ctx=ctx,
    )
