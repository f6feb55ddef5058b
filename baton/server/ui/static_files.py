"""The UI's script and stylesheet, served from the package (no build step, nothing fetched from
elsewhere): public, cached by content digest."""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from baton.errors import NotFound
from baton.server.auth import PUBLIC, needs
from baton.server.door import GuardedRoute

router = APIRouter(prefix="/ui/static", include_in_schema=False, route_class=GuardedRoute)
HERE = Path(__file__).parent / "static"
TYPES = {"baton.js": "text/javascript; charset=utf-8", "baton.css": "text/css; charset=utf-8"}


@cache
def _file(name: str) -> tuple[bytes, str]:
    body = (HERE / name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def version(name: str) -> str:
    """A digest to put in the file's URL, so a new release is fetched at once."""
    return _file(name)[1].strip('"')[:10]


@router.get("/{name}", **needs(PUBLIC))
def static(name: str) -> Response:
    if name not in TYPES:
        raise NotFound(f"no static file {name!r}")
    body, tag = _file(name)
    headers = {"ETag": tag, "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return Response(body, media_type=TYPES[name], headers=headers)
