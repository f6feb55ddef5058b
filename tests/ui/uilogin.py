"""Logging in to the UI as its form does, for tests that are not a browser: fetch the login page
(it sets the pre-session cookie and holds the login CSRF token), then post the form with it."""

from __future__ import annotations

import re

import httpx

from baton.server.ui.session import LOGIN_FIELD

FIELD = re.compile(rf'name="{LOGIN_FIELD}" value="([0-9a-f]+)"')


def login_token(http: httpx.Client) -> str:
    """The login CSRF token of the form the login page shows ``http`` (its cookie is kept)."""
    page = http.get("/ui/login")
    found = FIELD.search(page.text)
    assert page.status_code == 200 and found, page.text[:500]
    return found[1]


def form_login(http: httpx.Client, token: str, next_page: str = "/ui/events") -> httpx.Response:
    """Post the login form as a browser would (without following the redirect)."""
    return http.post("/ui/login", data={"token": token, "next": next_page, LOGIN_FIELD: login_token(http)})
