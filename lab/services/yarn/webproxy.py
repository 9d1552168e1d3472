"""The RM's web proxy to ApplicationMasters (Hadoop's WebAppProxyServlet, which the RM
runs itself unless yarn.web-proxy.address names a separate proxy): /proxy/{app}/{rest}
goes to the tracking URL the application's AM registered, plus rest and the query.

As in Hadoop: an unknown application is a 404 page; one with no tracking URL yet (not
registered, or an AM without a web UI) is redirected to its RM page; a finished one is
redirected to its tracking URL (its history: without a history server the client then
meets a refused connection, as it would with Hadoop); a running one is fetched, and its
answer (status, type, body) passed back.
"""

from __future__ import annotations

import asyncio
import html
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING

from . import http
from .records import parse_app_id
from .rmapp import FINAL_STATES

if TYPE_CHECKING:
    from .rm import ResourceManager

PROXY_PATH = re.compile(r"^/proxy/([^/]+)(/.*)?$")
TIMEOUT = 30.0


def page(status: int, message: str) -> http.Response:
    """ProxyUtils.notFound and friends: a small HTML page with the message."""
    body = f"<html><head><title>{html.escape(message)}</title></head><body><h1>{html.escape(message)}</h1></body></html>"
    return http.Response(status, body, "text/html; charset=utf-8")


def redirect(url: str) -> http.Response:
    return http.Response(302, b"", "text/plain", headers={"Location": url})


def target_url(tracking: str, rest: str, query: dict[str, str]) -> str:
    base = tracking if "://" in tracking else f"http://{tracking}"
    # rest is the decoded path: quoted again, as the proxy servlet builds its URI, so a
    # %00 or %20 in it reaches the AM as written instead of failing to make a request
    url = base.rstrip("/") + urllib.parse.quote(rest or "/", safe="/:@!$&'()*+,;=")
    return url + ("?" + urllib.parse.urlencode(query) if query else "")


def _fetch(method: str, url: str, body: bytes, content_type: str) -> http.Response:
    req = urllib.request.Request(url, data=body or None, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return http.Response(r.status, r.read(), r.headers.get("Content-Type", "text/plain"))
    except urllib.error.HTTPError as e:
        return http.Response(e.code, e.read(), e.headers.get("Content-Type", "text/plain"))
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        return page(500, f"Error proxying to {url}: {reason}")


async def handle(rm: ResourceManager, req: http.Request, web: str) -> http.Response:
    """web: the RM's web address (host:port), for the redirect to an app's page."""
    m = PROXY_PATH.match(req.path)
    if not m:
        return page(404, f"Cannot find resource {req.path}")
    app_text, rest = m.group(1), m.group(2) or ""
    try:
        parse_app_id(app_text)
    except ValueError:
        return page(404, f"{app_text} is not a valid application ID")
    app = rm.apps.get(app_text)
    if app is None:
        return page(404, f"Application {app_text} could not be found in RM or history server")
    if not app.tracking_url or app.tracking_url == "N/A":
        return redirect(f"http://{web}/cluster/app/{app.id}")
    url = target_url(app.tracking_url, rest, req.query)
    if app.state in FINAL_STATES:
        return redirect(url)
    if req.method not in ("GET", "HEAD", "PUT", "POST", "DELETE"):
        raise http.HttpError(405, "WebApplicationException", f"{req.method} is not allowed")
    return await asyncio.to_thread(
        _fetch, req.method, url, req.body, req.headers.get("content-type", "")
    )
