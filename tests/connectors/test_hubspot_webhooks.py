"""HubSpot webhooks: signature v3 against independently computed vectors, event parsing, the
sandbox's event recording. (Real HTTP deliveries: tests/integration/test_webhooks.py.)"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.sandbox import HubSpotSandbox
from connectors.hubspot.sandbox_webhooks import signed_headers
from connectors.hubspot.webhooks import (
    MAX_AGE_MS,
    check_signature,
    decode_uri,
    parse_events,
    signature_v3,
)
from hub.config.model import ConnectionConfig, Secret
from hub.connector import WebhookEvent, WebhookRequest
from hub.errors import ConnectorError, WebhookRejected

SECRET = "client-secret-123"
NOW = 1_700_000_000_000
BODY = b'[{"eventId":1,"subscriptionType":"contact.creation","objectId":7}]'


def _hmac_b64(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _request(url: str, body: bytes, signature: str, stamp: int | str,
             method: str = "POST") -> WebhookRequest:
    return WebhookRequest(method=method, url=url, body=body, headers={
        "x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": str(stamp)})


# -- the signature ------------------------------------------------------------------------


def test_signature_matches_an_independently_computed_vector() -> None:
    uri = "https://hub.example.com/webhooks/hubspot?portal=62515"
    expected = _hmac_b64(SECRET, b"POST" + uri.encode() + BODY + b"1700000000000")
    assert signature_v3(SECRET, "POST", uri, BODY, "1700000000000") == expected


def test_documented_escapes_are_decoded_before_signing() -> None:
    encoded = ("https://hub.example.com/webhooks/hubspot?to=a%40b.com%3Bc%2Cd&p=%2Fx%3Fy"
               "&q=%21%24%27%28%29%2A%3a")
    decoded = "https://hub.example.com/webhooks/hubspot?to=a@b.com;c,d&p=/x?y&q=!$'()*:"
    expected = _hmac_b64(SECRET, b"POST" + decoded.encode() + BODY + b"1")
    assert signature_v3(SECRET, "POST", encoded, BODY, "1") == expected
    assert signature_v3(SECRET, "POST", decoded, BODY, "1") == expected


def test_only_the_listed_escapes_are_decoded() -> None:
    # %20 and %2B are not on HubSpot's list; %253A is an escaped '%' followed by "3A".
    assert decode_uri("https://h/x?a=%20b%2Bc&d=%253A") == "https://h/x?a=%20b%2Bc&d=%253A"
    expected = _hmac_b64(SECRET, b"POSThttps://h/x?a=%20b" + BODY + b"1")
    assert signature_v3(SECRET, "POST", "https://h/x?a=%20b", BODY, "1") == expected


def test_a_valid_fresh_signature_passes_and_anything_changed_fails() -> None:
    url = "https://hub.example.com/webhooks/hubspot"
    good = signature_v3(SECRET, "POST", url, BODY, str(NOW))
    check_signature(_request(url, BODY, good, NOW), SECRET, now_ms=NOW)
    for request in (_request(url, BODY + b" ", good, NOW),                 # body
                    _request(url + "?x=1", BODY, good, NOW),               # URL
                    _request(url, BODY, good, NOW + 1),                    # timestamp
                    _request(url, BODY, good, NOW, method="PUT"),          # method
                    _request(url, BODY, good[:-2] + "AA", NOW),            # signature
                    _request(url, BODY, "é" * 44, NOW)):                   # non-ASCII
        with pytest.raises(WebhookRejected) as info:
            check_signature(request, SECRET, now_ms=NOW)
        assert info.value.status == 401
    with pytest.raises(WebhookRejected):
        check_signature(_request(url, BODY, good, NOW), "another-secret", now_ms=NOW)


def test_the_five_minute_window() -> None:
    url = "https://h/webhooks/hubspot"

    def at(stamp: int) -> WebhookRequest:
        return _request(url, BODY, signature_v3(SECRET, "POST", url, BODY, str(stamp)), stamp)

    check_signature(at(NOW - MAX_AGE_MS), SECRET, now_ms=NOW)  # exactly 5 min: still fine
    with pytest.raises(WebhookRejected, match="too old") as info:
        check_signature(at(NOW - MAX_AGE_MS - 1), SECRET, now_ms=NOW)
    assert info.value.status == 401
    with pytest.raises(WebhookRejected, match="future"):
        check_signature(at(NOW + MAX_AGE_MS + 1), SECRET, now_ms=NOW)


@pytest.mark.parametrize("headers, message", [
    ({}, "missing X-HubSpot-Signature-v3"),
    ({"x-hubspot-signature-v3": "abc"}, "missing X-HubSpot-Request-Timestamp"),
    ({"x-hubspot-signature-v3": "abc", "x-hubspot-request-timestamp": "yesterday"},
     "not epoch milliseconds"),
])
def test_missing_or_malformed_headers_are_401(headers: dict[str, str], message: str) -> None:
    request = WebhookRequest("POST", "https://h/w", headers, BODY)
    with pytest.raises(WebhookRejected, match=message) as info:
        check_signature(request, SECRET, now_ms=NOW)
    assert info.value.status == 401


@given(secret=st.text(min_size=1, max_size=40), body=st.binary(max_size=300),
       query=st.text(alphabet="abc=&%3AF2@;,!()*+ ", max_size=30))
def test_what_the_sandbox_signs_the_connector_accepts(secret: str, body: bytes,
                                                      query: str) -> None:
    url = f"https://hub.example.com/webhooks/hubspot?{query}"
    headers = {k.lower(): v for k, v in signed_headers(secret, "POST", url, body, NOW).items()}
    check_signature(WebhookRequest("POST", url, headers, body), secret, now_ms=NOW)
    if body:
        flipped = bytes([body[0] ^ 1]) + body[1:]
        with pytest.raises(WebhookRejected):
            check_signature(WebhookRequest("POST", url, headers, flipped), secret, now_ms=NOW)


# -- the events ---------------------------------------------------------------------------


def test_events_are_parsed_from_hubspots_array() -> None:
    body = orjson.dumps([
        {"eventId": 100, "subscriptionId": 1, "portalId": 62515, "appId": 54321,
         "occurredAt": 1564113600000, "subscriptionType": "contact.propertyChange",
         "attemptNumber": 0, "objectId": 123, "propertyName": "email",
         "propertyValue": "a@b.com", "changeSource": "CRM_UI"},
        {"eventId": 101, "subscriptionType": "company.creation", "objectId": 9,
         "occurredAt": 1564113600123, "changeFlag": "NEW"},
        {"eventId": 102, "subscriptionType": "contact.deletion", "objectId": 5},
        {"eventId": 103, "subscriptionType": "contact.restore", "objectId": 5},
        {"eventId": 104, "subscriptionType": "contact.merge", "objectId": 6,
         "primaryObjectId": 6, "mergedObjectIds": [5]},
        {"eventId": 105, "subscriptionType": "contact.privacyDeletion", "objectId": 8},
        {"eventId": 106, "subscriptionType": "object.creation", "objectTypeId": "0-2",
         "objectId": 10},
        {"eventId": 107, "subscriptionType": "ticket.creation", "objectId": 11},
    ])
    assert parse_events(body) == [
        WebhookEvent("100", "contacts", "123", "updated", "2019-07-26T04:00:00.000Z"),
        WebhookEvent("101", "companies", "9", "created", "2019-07-26T04:00:00.123Z"),
        WebhookEvent("102", "contacts", "5", "deleted"),
        WebhookEvent("103", "contacts", "5", "restored"),
        WebhookEvent("104", "contacts", "6", "merged"),
        WebhookEvent("105", "contacts", "8", "deleted"),
        WebhookEvent("106", "companies", "10", "created"),
        # tickets are not synced: left out, not refused (HubSpot would retry for a day)
    ]
    assert parse_events(b"[]") == []


@pytest.mark.parametrize("body, message", [
    (b"not json", "not JSON"),
    (b'{"eventId": 1}', "JSON object, expected an array"),
    (b"[1]", "event 0 is a JSON number"),
    (b'[{"subscriptionType": "contact.creation", "objectId": 1}]', "event 0: eventId"),
    (b'[{"eventId": 1, "objectId": 1}]', "subscriptionType"),
    (b'[{"eventId": 1, "subscriptionType": "contact.creation", "objectId": null}]',
     "objectId"),
    (b'[{"eventId": 1, "subscriptionType": "contact.creation", "objectId": {"a": 1}}]',
     "objectId"),
])
def test_malformed_bodies_are_400(body: bytes, message: str) -> None:
    with pytest.raises(WebhookRejected, match=message) as info:
        parse_events(body)
    assert info.value.status == 400


# -- the connector ------------------------------------------------------------------------


def _connection(**settings: object) -> ConnectionConfig:
    return ConnectionConfig(name="crm", connector="hubspot", settings=settings,
                            base_dir=Path("."), where="hub.yaml:7")


def test_the_connector_declares_webhooks_and_a_secret_client_secret() -> None:
    caps = HubSpotConnector.capabilities
    assert caps.webhooks
    assert "client_secret" in caps.settings
    assert "client_secret" in caps.secret_settings


def test_verify_webhook_checks_with_the_secret_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_HS_SECRET", SECRET)
    connector = HubSpotConnector(_connection(client_secret=Secret("T_HS_SECRET")))
    url = "http://127.0.0.1:8000/webhooks/crm"
    headers = {k.lower(): v for k, v in
               signed_headers(SECRET, "POST", url, BODY, _now_ms()).items()}
    events = connector.verify_webhook(WebhookRequest("POST", url, headers, BODY))
    assert events == [WebhookEvent("1", "contacts", "7", "created")]
    monkeypatch.setenv("T_HS_SECRET", "rotated")
    with pytest.raises(WebhookRejected):
        connector.verify_webhook(WebhookRequest("POST", url, headers, BODY))


def test_verify_webhook_without_a_client_secret_names_the_setting() -> None:
    connector = HubSpotConnector(_connection())
    with pytest.raises(ConnectorError, match="client_secret.*hub.yaml:7|hub.yaml:7.*client_"):
        connector.verify_webhook(WebhookRequest("POST", "http://h/w", {}, BODY))


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


# -- the sandbox --------------------------------------------------------------------------


def test_the_sandbox_announces_changes_made_after_start_up_only() -> None:
    sandbox = HubSpotSandbox(seed=3, count=5)
    assert sandbox.webhooks.pending() == []  # the seed data is not "new"
    cid = sandbox.create("contacts", email="new@example.com", firstname="New")
    sandbox.touch("contacts", cid, firstname="Newer", lastname=None)
    sandbox.touch("contacts", cid, firstname="Newer")  # no change: no event
    sandbox.archive("contacts", cid)
    events = sandbox.webhooks.take()
    assert [(e["subscriptionType"], e["objectId"], e.get("propertyName")) for e in events] == [
        ("contact.creation", int(cid), None),
        ("contact.propertyChange", int(cid), "firstname"),
        ("contact.deletion", int(cid), None),
    ]
    assert len({e["eventId"] for e in events}) == 3
    assert all(e["changeSource"] == "CRM_UI" and e["attemptNumber"] == 0 for e in events)
    assert events[1]["propertyValue"] == "Newer"
    assert sandbox.webhooks.pending() == []
