"""Each request's id, its access-log line and its metrics.

The id comes from the reverse proxy's ``X-Request-ID`` when it is well formed (the proxy's
own logs then match ours), else it is made here; it is sent back in the response, written on
every log line of the request, and carried into the jobs the request enqueues. The access
line names the route's rule, never the path or the query string (a search term would be a
person's name).
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from shared import metrics
from shared.logs import new_request_id, request_id, safe_request_id

access_log = logging.getLogger("icli.access")
HEADER = "X-Request-ID"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def init_app(app: Flask) -> None:
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_forget)


def _start() -> None:
    g.request_started = time.perf_counter()
    g.request_id_token = request_id.set(safe_request_id(request.headers.get(HEADER))
                                        or new_request_id())


def _finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    # A client chooses the method ("DUPONTJEAN /x" reaches the app): any other than HTTP's
    # own is "other", or each would be a new series, growing without limit, and typed text.
    method = request.method if request.method in HTTP_METHODS else "other"
    metrics.observe_request(route, method, response.status_code, seconds)
    access_log.info("%s %s %d %.1f ms", method, route, response.status_code,
                    seconds * 1000, extra={"method": method, "route": route,
                                           "status": response.status_code,
                                           "duration_ms": round(seconds * 1000, 1)})
    current = request_id.get()
    if current is not None:
        response.headers[HEADER] = current
    return response


def _forget(_error: BaseException | None) -> None:
    token = g.pop("request_id_token", None)
    if token is not None:
        request_id.reset(token)
