"""What the app holds (set once by :func:`baton.server.app.create_app`): reached by its routes
through the request, never through a global.

The store is held once per caller's protocol, so each route reaches only the verbs it is typed
for: reads for pages and status, the operator's verbs for submit, cancel and rerun, the workers'
link for ``/worker/v1``, tokens and sessions for the front door, webhooks for their admins. They
may all be one object; the types are what limit each route (no route can migrate or close the
store)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request

from baton.server.auth import Authenticator
from baton.server.bodies import BodyBudget
from baton.server.changes import ChangeWatch
from baton.server.gathering import Gatherer
from baton.server.ui.views import Views
from baton.settings import Settings
from baton.store.protocol import GatheringLink, OperatorStore, ReadStore, SchemaStore, TokenStore, WebhookStore

if TYPE_CHECKING:  # the metrics module reaches its own through this state
    from baton.server.metrics import Metrics


@dataclass
class AppState:
    reads: ReadStore
    operator: OperatorStore
    link: GatheringLink
    tokens: TokenStore
    schema: SchemaStore
    webhooks: WebhookStore
    settings: Settings
    auth: Authenticator
    changes: ChangeWatch
    metrics: Metrics
    gatherer: Gatherer  # the workers' claims, several to a transaction when they arrive together
    bodies: BodyBudget  # request bodies being read and parsed at once
    views: Views  # what the pages of one event share
    allowed: dict[str, frozenset[str]] = field(default_factory=dict)  # each path's methods (405's Allow)


def state_of_app(app: FastAPI) -> AppState:
    state: AppState = app.state.baton
    return state


def state_of(request: Request) -> AppState:
    return state_of_app(request.app)


def reads_of(request: Request) -> ReadStore:
    return state_of(request).reads


def link_of(request: Request) -> GatheringLink:
    return state_of(request).link


def operator_of(request: Request) -> OperatorStore:
    return state_of(request).operator


def webhooks_of(request: Request) -> WebhookStore:
    return state_of(request).webhooks
