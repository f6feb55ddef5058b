"""``/api/v1/webhooks``: add, list and remove webhooks, and read their delivery log.

Administrators only: a webhook's URL may carry a receiver's token, and its deliveries tell of
events of every type. A secret goes in when a webhook is added and never comes out: answers
carry a few digits of its SHA-256 instead. The bodies' bounds in the OpenAPI document are the
ones the store enforces (:mod:`baton.engine.webhooks`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from baton.access import Action
from baton.engine.webhooks import NAME_PATTERN
from baton.server.auth import needs, token_of
from baton.server.door import GuardedRoute
from baton.server.problems import responses
from baton.server.state import webhooks_of
from baton.wire.api import (
    DeliveryOut,
    DeliveryPage,
    DeliveryState,
    WebhookIn,
    WebhookName,
    WebhookOut,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=GuardedRoute)
Cursor = Annotated[str | None, Query(max_length=40, pattern=r"^[0-9]{1,18}$", description="from next_cursor")]


@router.get("", response_model=list[WebhookOut], **needs(Action.ADMIN))
def list_webhooks(request: Request) -> list[WebhookOut]:
    """Every webhook, removed ones too (``enabled`` false), by name; never a secret."""
    return [WebhookOut.of(w) for w in webhooks_of(request).webhooks()]


@router.post("", status_code=201, response_model=WebhookOut, responses=responses(409),
             **needs(Action.ADMIN, body="small"))  # fmt: skip
def add_webhook(request: Request, body: WebhookIn) -> WebhookOut:
    """Add a webhook; a removed one of that name is enabled again with what is sent. One that
    exists and is enabled is refused (409) unless ``replace`` is true (to change its URL, kinds
    or secret)."""
    record = webhooks_of(request).add_webhook(body.name, body.url, body.secret, body.kinds, body.event_types,
                                              replace=body.replace, actor=f"token:{token_of(request).id}")  # fmt: skip
    return WebhookOut.of(record)


@router.get("/deliveries", response_model=DeliveryPage, responses=responses(404), **needs(Action.ADMIN))
def list_deliveries(
    request: Request,
    webhook: Annotated[WebhookName | None, Query(description="only this webhook's")] = None,
    state: Annotated[DeliveryState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Cursor = None,
) -> DeliveryPage:
    """The delivery log, newest first, one keyset page at a time: each notification to each
    webhook, with its tries and how the last one went."""
    rows = webhooks_of(request).deliveries(webhook=webhook, state=state, limit=limit + 1,
                                           before=None if cursor is None else int(cursor))  # fmt: skip
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(deliveries=[DeliveryOut.of(d) for d in rows], next_cursor=str(rows[-1].id) if more else None)


@router.delete("/{name}", response_model=WebhookOut, **needs(Action.ADMIN))
def remove_webhook(
    request: Request, name: Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]
) -> WebhookOut:
    """Remove a webhook: it receives nothing more and its pending deliveries are cancelled; it
    stays listed, with its delivery log. Removing it again answers the same."""
    return WebhookOut.of(webhooks_of(request).remove_webhook(name, actor=f"token:{token_of(request).id}"))
