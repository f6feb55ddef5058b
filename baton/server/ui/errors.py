"""Errors on the UI's pages as pages: a browser asking for a page gets HTML with the same status
the API would answer (401 shows the login form), a script fetching a fragment or posting an
action gets the problem+json body."""

from __future__ import annotations

import json

from fastapi import Request
from fastapi.responses import Response

from baton.server.ui.render import html
from baton.server.ui.session import login_form, safe_next

PAGES = "/ui/"


def page_for(request: Request, problem: Response) -> Response:
    """The page to answer instead of ``problem`` (itself, when a script asked)."""
    if not request.url.path.startswith(PAGES) or request.method != "GET" or request.headers.get("x-baton-fragment"):
        return problem
    try:
        body = json.loads(bytes(problem.body))
    except ValueError:
        return problem
    status = problem.status_code
    if status == 401:
        target = safe_next(request.url.path + ("?" + request.url.query if request.url.query else ""))
        return login_form(request, status=401, next=target)
    return html(request, "error.html", status=status, title=body.get("title", "Error"), detail=body.get("detail", ""))
