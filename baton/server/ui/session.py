"""Logging in to the web UI: paste a token, get a session cookie.

The cookie's value is random (256 bits); the store keeps only its SHA-256 and the token it stands
for (``open_session``), so a session ends when it expires, when its person logs out, or when its
token is revoked. The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's
page sends it) and Secure whenever the server speaks TLS. Pages put the session's CSRF token in a
``<meta>`` tag; the UI's script sends it with every request that may change something.

Logging in is guarded too, or another site's page could post its own token to ``/ui/login`` and
put a victim's browser in the attacker's session (login CSRF). Two checks, each enough alone
against a browser:

- the form's ``Origin`` (or ``Referer``) must name this server's own origin
  (:func:`baton.server.ui.security.foreign_origin`); a browser always sends one with a form;
- the login page sets a pre-session cookie (random, HttpOnly, SameSite=Strict, for ``/ui/login``
  only, LOGIN_COOKIE_S long) and puts a token derived from it in the form
  (:func:`login_csrf`); the post must carry both, and only a page of this server could have
  read the token. A client that is not a browser must do the same (fetch the form first); a
  script should rather send a bearer token to ``/api/v1``: the UI is for browsers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Annotated
from urllib.parse import parse_qs

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from baton.access import token_digest
from baton.errors import Unauthenticated
from baton.server.auth import PUBLIC, SESSION_COOKIE, needs
from baton.server.door import GuardedRoute
from baton.server.state import state_of
from baton.server.ui.render import html
from baton.server.ui.security import foreign_origin

router = APIRouter(include_in_schema=False, route_class=GuardedRoute)
LOGIN = "/ui/login"
HOME = "/ui/"  # the overview
MAX_FORM_BYTES = 4096
LOGIN_COOKIE = "baton_login"  # the pre-session cookie of the login form
LOGIN_COOKIE_S = 1800
LOGIN_FIELD = "login_csrf"
_COOKIE_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
Next = Annotated[str | None, Query(max_length=500)]


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a page of this UI only (never another site)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return HOME


def login_csrf(cookie: str) -> str:
    """The login form's CSRF token: derived from the pre-session cookie, which only the browser
    that fetched the form holds."""
    return hashlib.sha256(b"baton-login-csrf:" + cookie.encode()).hexdigest()[:32]


def _pre_session(request: Request) -> str | None:
    cookie = request.cookies.get(LOGIN_COOKIE)
    return cookie if cookie is not None and _COOKIE_SHAPE.fullmatch(cookie) else None


def login_form(request: Request, status: int = 200, next: str = HOME, problem: str | None = None) -> Response:
    """The login page: its form holds the login CSRF token of the browser's pre-session cookie,
    which it sets (again, or anew when the browser sent none)."""
    cookie = _pre_session(request) or secrets.token_urlsafe(32)
    response = html(request, "login.html", status=status, next=next, problem=problem, login_csrf=login_csrf(cookie))
    response.set_cookie(LOGIN_COOKIE, cookie, max_age=LOGIN_COOKIE_S, path=LOGIN, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")  # fmt: skip
    return response


def _login_refusal(request: Request, form: dict[str, list[str]]) -> str | None:
    """Why a posted login form is not this browser's own, or None when it is."""
    elsewhere = foreign_origin(request)
    if elsewhere is not None:
        return f"refused: this login form was posted from another site ({elsewhere}); log in on this server's own page"
    cookie = _pre_session(request)
    sent = (form.get(LOGIN_FIELD) or [""])[0]
    if cookie is None or not hmac.compare_digest(sent.encode(), login_csrf(cookie).encode()):
        return ("refused: this login form has expired or was not made by this server's login page; "
                "reload the login page and log in again (a script should send a bearer token to /api/v1)")  # fmt: skip
    return None


@router.get("/", **needs(PUBLIC))
def root() -> Response:
    return RedirectResponse(HOME, status_code=303)


@router.get(LOGIN, **needs(PUBLIC))
def login_page(request: Request, next: Next = None) -> Response:
    return login_form(request, next=safe_next(next))


@router.post(LOGIN, **needs(PUBLIC, body="form"))
async def login(request: Request) -> Response:
    """Check the pasted token and open a session for it (a form post: it works without script).
    A form from another origin, or without this browser's login CSRF token, is refused (403)
    before its token is looked up; a form with no token opens nothing and is shown again (401)."""
    body = await request.body()
    form = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"), max_num_fields=4)
    token = (form.get("token") or [""])[0].strip()
    target = safe_next((form.get("next") or [""])[0])
    if not token and foreign_origin(request) is None:  # nothing to open a session with
        return login_form(request, status=401, next=target, problem="paste a token to log in")
    refusal = _login_refusal(request, form)
    if refusal is not None:
        return login_form(request, status=403, next=target, problem=refusal)
    state = state_of(request)
    try:
        record = await anyio.to_thread.run_sync(state.auth.lookup, token)
    except Unauthenticated as exc:
        return login_form(request, status=401, next=target, problem=str(exc))
    if record.role.value == "worker":
        return login_form(request, status=403, next=target, problem="a worker token cannot open the UI")
    cookie = secrets.token_urlsafe(32)
    lifetime_s = state.settings.session_s
    await anyio.to_thread.run_sync(state.tokens.open_session, token_digest(cookie), record.id, lifetime_s)
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN)  # the form is spent
    response.set_cookie(SESSION_COOKIE, cookie, max_age=int(lifetime_s), path="/ui/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")  # fmt: skip
    return response


@router.post("/ui/logout", **needs("read"))
def logout(request: Request) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    state = state_of(request)
    if cookie:
        state.tokens.close_session(token_digest(cookie))
        state.auth.drop_session(cookie)
    response = RedirectResponse(LOGIN, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/ui/")
    return response
