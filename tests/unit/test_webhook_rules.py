"""The rules of webhooks, without a store: signatures a receiver can check (and replays it can
refuse), the retry pauses, which notices a webhook receives, and definitions checked the same
way by the store and by the API's bodies (so a body the OpenAPI document allows is one the store
takes, and the other way round)."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from baton.engine.webhooks import (
    NAME_PATTERN,
    SECRET_PATTERN,
    URL_PATTERN,
    receives,
    retry_delay_s,
    sign,
    verify,
    webhook_problems,
)
from baton.store.records import NOTICE_KINDS
from baton.wire.api import WebhookIn

SECRET = "whsec-0123456789-abcdefghij"
BODY = b'{"id":"d1","kind":"event.failed"}'
GOOD = {"name": "ops", "url": "https://hooks.example/x", "secret": SECRET, "kinds": ["event.failed"]}


def test_the_signature_is_the_hmac_of_the_timestamp_a_dot_and_the_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1_700_000_000, BODY) == f"sha256={expected}"


def test_a_receiver_accepts_the_signed_body_and_refuses_a_change_another_secret_or_a_replay() -> None:
    signature = sign(SECRET, 1_700_000_000, BODY)
    assert verify(SECRET, "1700000000", signature, BODY, now=1_700_000_100)
    assert not verify(SECRET, "1700000000", signature, BODY + b" ", now=1_700_000_100)
    assert not verify(SECRET[::-1], "1700000000", signature, BODY, now=1_700_000_100)
    assert not verify(SECRET, "1700000001", signature, BODY, now=1_700_000_100)  # the timestamp is signed
    assert not verify(SECRET, "1700000000", signature, BODY, now=1_700_000_301)  # too old: perhaps a replay
    assert not verify(SECRET, "-1", signature, BODY, now=0)


def test_retries_wait_5_s_doubling_to_10_minutes_a_fifth_either_way() -> None:
    assert [retry_delay_s(n, 0.5) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]
    assert retry_delay_s(1, 0.0) == 4.0 and retry_delay_s(1, 1.0) == pytest.approx(6.0)
    assert retry_delay_s(10**9, 0.5) == 600.0  # no overflow however many tries


def test_a_webhook_receives_its_kinds_and_only_its_event_types() -> None:
    assert receives({"event.failed"}, None, "event.failed", "any")
    assert receives({"event.failed"}, None, "event.failed", None)
    assert not receives({"event.failed"}, None, "event.succeeded", "any")
    assert receives({"event.failed"}, {"a"}, "event.failed", "a")
    assert not receives({"event.failed"}, {"a"}, "event.failed", "b")
    assert not receives({"event.failed"}, {"a"}, "event.failed", None)  # tied to no type: not one of its types


def _stored(fields: dict[str, Any]) -> bool:
    problems = webhook_problems(fields["name"], fields["url"], fields["secret"], fields["kinds"],
                                fields.get("event_types"), NOTICE_KINDS)  # fmt: skip
    return not problems


def _wired(fields: dict[str, Any]) -> bool:
    try:
        WebhookIn.model_validate(fields)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"url": "http://127.0.0.1:8080/hook?x=1#y"},
        {"url": "http://[::1]:9/"},
        {"url": "https://user@hooks.example/"},
        {"url": "https://hooks.example/" + "a" * 2048},
        {"url": "https://hooks.exämple/"},
        {"url": "HTTPS://hooks.example/"},
        {"url": "https://hooks.example/\n"},
        {"secret": "x" * 15},
        {"secret": "x" * 256},
        {"secret": "x" * 257},
        {"secret": SECRET + "\n"},
        {"kinds": list(NOTICE_KINDS)},
        {"kinds": ["event.failed", "event.failed"]},
        {"kinds": ["event.failedx"]},
        {"event_types": ["a", "b"]},
        {"event_types": ["a\x00"]},
        {"event_types": ["x" * 201]},
        {"event_types": ["t"] * 101},
        {"name": "a" * 100},
        {"name": "a" * 101},
        {"name": "ops\n"},
        {"name": "_ops"},
    ],
)
def test_the_store_and_the_api_body_take_the_same_definitions(change: dict[str, Any]) -> None:
    fields = {**GOOD, **change}
    assert _stored(fields) == _wired(fields), fields


@given(st.from_regex(URL_PATTERN, fullmatch=True), st.from_regex(SECRET_PATTERN, fullmatch=True))
def test_every_url_and_secret_the_patterns_allow_within_the_lengths_is_stored(url: str, secret: str) -> None:
    fields = {**GOOD, "url": url, "secret": secret}
    assert _stored(fields) == _wired(fields) == (len(url) <= 2048)


@given(st.text(max_size=40))
def test_any_text_as_a_name_is_taken_by_both_or_by_neither(name: str) -> None:
    fields = {**GOOD, "name": name}
    assert _stored(fields) == _wired(fields) == bool(re.fullmatch(NAME_PATTERN, name))


def test_a_problem_names_the_field_and_never_quotes_the_secret() -> None:
    secret = "has spaces, so it is refused"
    problems = webhook_problems("ops", "ftp://x", secret, ["nope"], [], NOTICE_KINDS)
    assert [p.split(":")[0] for p in problems] == ["url", "secret", "kinds", "event types"]
    assert secret not in " ".join(problems)
