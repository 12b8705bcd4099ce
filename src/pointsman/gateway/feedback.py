"""``POST /v1/feedback``: a quality label for one answered request.

Body: ``{"request_id": "...", "score": 0.8}`` (a number in [0, 1]) or ``"thumbs": "up" |
"down"`` (1 or 0), with an optional ``source`` (default ``user``; one label per request and
source, so sending again replaces it) and ``comment``. The id is the answer's
``x-pointsman-request-id`` (or the Messages / Responses answer's own ``msg_<id>`` /
``resp_<id>``). A key labels only its own requests (403 for another key's);
admin keys (and an open loopback gateway) label any; an id the log does not hold is a 404.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pointsman.doors.chat import ChatDoor
from pointsman.errors import InputError, PermissionDeniedError, PointsmanError, RouteNotFoundError
from pointsman.gateway.auth import Principal
from pointsman.gateway.endpoints import authenticate
from pointsman.gateway.errors import door_error
from pointsman.gateway.parse import read_json
from pointsman.gateway.runtime import Gateway
from pointsman.stores.labels import Label, LabelStore

SOURCE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_COMMENT = 4000
THUMBS = {"up": 1.0, "down": 0.0}
ID_PREFIXES = ("msg_", "resp_")


def parse_feedback(body: Mapping[str, Any], key: str | None) -> Label:
    """The label a feedback body gives (every mistake a 400 naming its field)."""
    unknown = sorted(set(body) - {"request_id", "score", "thumbs", "source", "comment"})
    if unknown:
        raise InputError(f"unknown feedback field(s) {unknown}", unknown[0])
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not request_id or len(request_id) > 128:
        raise InputError("'request_id' must be the answer's x-pointsman-request-id",
                         "request_id")
    source = body.get("source", "user")
    if not isinstance(source, str) or not SOURCE.fullmatch(source):
        raise InputError("'source' must be 1-64 letters, digits or _.:-", "source")
    comment = body.get("comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        raise InputError(f"'comment' must be a string of at most {MAX_COMMENT} characters",
                         "comment")
    for prefix in ID_PREFIXES:  # the Messages and Responses doors' ids name it too
        request_id = request_id.removeprefix(prefix)
    return Label(request_id, source, _score(body), comment=comment, key=key)


def _score(body: Mapping[str, Any]) -> float:
    score, thumbs = body.get("score"), body.get("thumbs")
    if (score is None) == (thumbs is None):
        raise InputError("give exactly one of 'score' (a number in [0, 1]) and 'thumbs' "
                         "('up' or 'down')", "score")
    if thumbs is not None:
        if thumbs not in THUMBS:
            raise InputError("'thumbs' must be 'up' or 'down'", "thumbs")
        return THUMBS[thumbs]
    if isinstance(score, bool) or not isinstance(score, int | float) \
            or not math.isfinite(score) or not 0.0 <= score <= 1.0:
        raise InputError("'score' must be a number in [0, 1]", "score")
    return float(score)


async def label_request(gw: Gateway, store: LabelStore, principal: Principal,
                        label: Label) -> bool:
    """Check ownership and store; True when the label replaced the source's earlier one."""
    owner = await store.owner(label.request_id)
    if not owner.found and gw.log is not None:
        await gw.log.flush()  # the answer may have gone out before its record was written
        owner = await store.owner(label.request_id)
    if not owner.found:
        raise RouteNotFoundError(f"no logged request {label.request_id!r}: feedback needs "
                                 "the x-pointsman-request-id of an answer from this gateway",
                                 "request_id")
    if not principal.admin and owner.key != principal.name:
        raise PermissionDeniedError(f"request {label.request_id!r} was made by another key: "
                                    "a key labels only its own requests")
    return await store.put(label)


async def feedback_endpoint(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    door = ChatDoor()
    try:
        principal = authenticate(gw, request)
        body = await read_json(request, 64 * 1024, gw.config.gateway.body_timeout_s)
        if gw.labels is None:
            raise InputError("feedback needs the request log's database: this gateway has "
                             "none (gateway.request_log.enabled is false)")
        label = parse_feedback(body, principal.name)
        replaced = await label_request(gw, gw.labels, principal, label)
    except PointsmanError as exc:
        return door_error(door, exc)
    return JSONResponse({"object": "feedback", "request_id": label.request_id,
                         "source": label.source, "score": label.score,
                         "comment": label.comment, "replaced": replaced})
