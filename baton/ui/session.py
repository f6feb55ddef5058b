"""Logging in to the web UI: paste a token, get a session cookie.

The cookie's value is random (256 bits); the store keeps only its SHA-256 and the token it stands
for (``open_session``), so a session ends when it expires, when its person logs out, or when its
token is revoked. The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's
page sends it) and Secure whenever the server speaks TLS. Pages put the session's CSRF token in a
``<meta>`` tag; the UI's script sends it with every request that may change something.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import parse_qs

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from baton.access import token_digest
from baton.api.auth import PUBLIC, SESSION_COOKIE, needs
from baton.api.state import state_of
from baton.errors import Unauthenticated
from baton.ui.render import html

router = APIRouter(include_in_schema=False)
LOGIN = "/ui/login"
HOME = "/ui/events"
MAX_FORM_BYTES = 4096
Next = Annotated[str | None, Query(max_length=500)]


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a page of this UI only (never another site)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


@router.get("/", **needs(PUBLIC))
def root() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get(LOGIN, **needs(PUBLIC))
def login_page(request: Request, next: Next = None) -> Response:
    return html(request, "login.html", next=safe_next(next), problem=None)


@router.post(LOGIN, **needs(PUBLIC))
async def login(request: Request) -> Response:
    """Check the pasted token and open a session for it (a form post: it works without script)."""
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"), max_num_fields=4)
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or [""])[0])
    state = state_of(request)
    try:
        record = await anyio.to_thread.run_sync(state.auth.lookup, token)
    except Unauthenticated as exc:
        return html(request, "login.html", status=401, next=target, problem=str(exc))
    if record.role.value == "worker":
        return html(request, "login.html", status=403, next=target, problem="a worker token cannot open the UI")
    cookie = secrets.token_urlsafe(32)
    lifetime_s = state.settings.session_s
    await anyio.to_thread.run_sync(state.store.open_session, token_digest(cookie), record.id, lifetime_s)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=int(lifetime_s), path="/ui/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")  # fmt: skip
    return response


@router.post("/ui/logout", **needs("read"))
def logout(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    state = state_of(request)
    if cookie:
        state.store.close_session(token_digest(cookie))
        state.auth.drop_session(cookie)
    response = RedirectResponse(LOGIN, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui/")
    return response
