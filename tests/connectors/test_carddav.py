"""The CardDAV connector against a real Radicale server: incremental reads by sync-token and
by the ETag fallback (deletions included), resuming, writes that keep what they do not own,
concurrent edits, bad cards, and errors an ops person can act on."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.carddav.connector import CardDavConnector
from hub.connector import Cursor, NativeRecord, Page, WriteOp
from hub.errors import AuthError, TransientError
from tests.connectors.radicale_server import PASSWORD, Radicale, radicale_fixture  # noqa: F401

MODES = ["sync-token", "etag"]
VCARD = "text/vcard; charset=utf-8"


def vcf(uid: str, *lines: str, version: str = "3.0") -> str:
    body = ["BEGIN:VCARD", f"VERSION:{version}", f"UID:{uid}", *lines, "END:VCARD"]
    return "\r\n".join(body) + "\r\n"


def person(uid: str, given: str, family: str = "Doe", *extra: str) -> str:
    return vcf(uid, f"FN:{given} {family}", f"N:{family};{given};;;",
               f"EMAIL;TYPE=work:{given.lower()}@example.com", *extra)


def pages(c: CardDavConnector, cursor: Cursor | None = None, *, incremental: bool = True,
          size: int = 100) -> list[Page]:
    if cursor is not None:
        cursor = json.loads(json.dumps(cursor))  # as the engine stores it
    return list(c.read("contacts", cursor, incremental=incremental, page_size=size))


def records(found: list[Page]) -> list[NativeRecord]:
    return [r for p in found for r in p.records]


def by_uid(found: list[Page]) -> dict[str, NativeRecord]:
    return {r["uid"]: r for r in records(found) if "uid" in r}


@pytest.fixture
def book(radicale: Radicale) -> str:
    """A new empty address book's path."""
    return radicale.addressbook()


def connector(server: Radicale, book: str, **settings: Any) -> CardDavConnector:
    return CardDavConnector(server.connection("carddav", book, **settings))


# -- reading ------------------------------------------------------------------------------------


def test_check_says_how_changes_are_found(radicale: Radicale, book: str) -> None:
    auto = connector(radicale, book).check()
    assert auto.ok and "offers sync-collection" in auto.message
    assert auto.message.endswith("changes are found by sync-token")
    forced = connector(radicale, book, sync="etag").check()
    assert forced.ok and forced.message.endswith("changes are found by etag")
    wrong = connector(radicale, book, sync="sometimes").check()
    assert not wrong.ok and "setting 'sync' must be one of auto, sync-token, etag" in wrong.message


@pytest.mark.parametrize("mode", MODES)
def test_incremental_reads_report_changes_new_cards_and_deletions(
        radicale: Radicale, book: str, mode: str) -> None:
    for uid, name in (("a", "Ana"), ("b", "Bea"), ("c", "Cy")):
        assert radicale.put(f"{book}{uid}.vcf", person(uid, name), VCARD).status_code == 201
    c = connector(radicale, book, sync=mode)
    first = pages(c, size=2)
    assert sorted(by_uid(first)) == ["a", "b", "c"]
    assert first[-1].cursor is not None and first[-1].cursor["sync"] == {"sync-token": "token", "etag": "etag"}[mode]

    radicale.put(f"{book}a.vcf", person("a", "Ana", "Doe", "TITLE:CEO"), VCARD)
    radicale.request("DELETE", f"{book}b.vcf")
    radicale.put(f"{book}d.vcf", person("d", "Dee"), VCARD)
    again = records(pages(c, first[-1].cursor, size=2))
    changed = {r["uid"]: r for r in again if not r.get("deleted")}
    assert sorted(changed) == ["a", "d"] and changed["a"]["title"] == "CEO"
    assert [r for r in again if r.get("deleted")] == [{"href": f"{book}b.vcf",
                                                       "deleted": True}]
    idle = pages(c, pages(c, first[-1].cursor)[-1].cursor)
    assert records(idle) == [], "nothing changed, nothing read"


@pytest.mark.parametrize("mode", MODES)
def test_a_resumed_read_loses_no_change(radicale: Radicale, book: str,
                                        mode: str) -> None:
    for i in range(5):
        radicale.put(f"{book}m{i}.vcf", person(f"m{i}", f"Name{i}"), VCARD)
    c = connector(radicale, book, sync=mode)
    done = pages(c)[-1].cursor
    for i in range(5):
        radicale.put(f"{book}m{i}.vcf", person(f"m{i}", f"Name{i}", "Doe", "TITLE:v2"), VCARD)
    partial = pages(c, done, size=2)
    mid = partial[0].cursor  # as if the run died after its first page
    assert [r["uid"] for r in partial[0].records] == ["m0", "m1"]
    # Both a card already read (m0) and one not yet read (m4) change before the resume.
    radicale.put(f"{book}m0.vcf", person("m0", "Name0", "Doe", "TITLE:v3"), VCARD)
    radicale.put(f"{book}m4.vcf", person("m4", "Name4", "Doe", "TITLE:v3"), VCARD)
    resumed = pages(c, mid, size=2)
    assert {r["uid"] for r in records(resumed)} >= {"m2", "m3", "m4"}
    assert by_uid(resumed)["m4"]["title"] == "v3"
    after = by_uid(pages(c, resumed[-1].cursor))
    seen_m0 = [r["title"] for r in (by_uid(resumed).get("m0"), after.get("m0")) if r]
    assert "v3" in seen_m0, "the change made mid-read was lost"


def test_an_expired_sync_token_reads_everything_again(radicale: Radicale,
                                                      book: str) -> None:
    radicale.put(f"{book}a.vcf", person("a", "Ana"), VCARD)
    c = connector(radicale, book, sync="sync-token")
    stale = {"sync": "token", "token": "http://radicale.org/ns/sync/" + "0" * 64}
    found = pages(c, stale)
    assert list(by_uid(found)) == ["a"]
    assert found[-1].cursor is not None and found[-1].cursor["token"] != stale["token"]


def test_a_cursor_of_the_other_mode_starts_a_full_read(radicale: Radicale,
                                                       book: str) -> None:
    radicale.put(f"{book}a.vcf", person("a", "Ana"), VCARD)
    etag_cursor = pages(connector(radicale, book, sync="etag"))[-1].cursor
    assert etag_cursor is not None and "etags" in etag_cursor
    found = pages(connector(radicale, book, sync="sync-token"), etag_cursor)
    assert list(by_uid(found)) == ["a"]


def test_bad_cards_are_read_the_sane_way_and_broken_files_do_not_stop_the_read(
        radicale: Radicale, book: str) -> None:
    # Radicale takes these by PUT: the connector reads them the sane way.
    assert radicale.put(f"{book}two-fn.vcf", vcf("two-fn", "FN:Ana Doe", "FN:Anna D.",
                                                 "N:Doe;Ana;;;"), VCARD).status_code == 201
    assert radicale.put(f"{book}no-n.vcf", vcf("no-n", "FN:Bea Maria Roe",
                                               "REV:sometime"), VCARD).status_code == 201
    assert radicale.put(f"{book}v4.vcf", vcf("v4", "FN:Cy", "EMAIL;PREF=1:cy@example.com",
                                             version="4.0"), VCARD).status_code == 201
    # Radicale refuses these by PUT (no FN; two N; a broken line), so they are planted in its
    # storage as another client or a restore might leave them: Radicale skips them.
    folder = radicale.folder(book)
    (folder / "no-fn.vcf").write_text(vcf("no-fn", "EMAIL:x@example.com"), encoding="utf-8")
    (folder / "two-n.vcf").write_text(vcf("two-n", "FN:A", "N:A;B;;;", "N:C;D;;;"),
                                      encoding="utf-8")
    (folder / "broken.vcf").write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:broken\r\nFN:x\r\n"
                                       "EMAIL what\r\n", encoding="utf-8")
    for mode in MODES:
        found = by_uid(pages(connector(radicale, book, sync=mode), size=2))
        assert sorted(found) == ["no-n", "two-fn", "v4"], mode
        assert found["two-fn"]["fn"] == "Ana Doe"
        assert any("FN appears 2 times" in w for w in found["two-fn"]["warnings"])
        assert found["no-n"]["n"]["given"] == "Bea Maria" and found["no-n"]["rev"] is None
        assert found["v4"]["emails"] == [{"value": "cy@example.com", "type": None}]


# -- writing ------------------------------------------------------------------------------------


def test_an_update_keeps_what_it_does_not_own_and_the_card_version(
        radicale: Radicale, book: str) -> None:
    original = vcf("u4", "FN:Ana Doe", "N:Doe;Ana;;;", "EMAIL;TYPE=work:ana@example.com",
                   "BDAY:19900401", "X-MASTODON:@ana@example.social",
                   "item1.URL:https://ana.example", "item1.X-ABLabel:blog",
                   "NOTE:met at the fair", version="4.0")
    radicale.put(f"{book}u4.vcf", original, VCARD)
    c = connector(radicale, book)
    read = by_uid(pages(c))["u4"]
    result, = c.write("contacts", [WriteOp("update", "k1", {
        "n": {"given": "Ana", "family": "Smith"}, "title": "CEO",
        "emails": [{"value": "ana@smith.example", "type": "work"}]},
        external_id=read["href"])])
    assert result.ok, result.error
    stored = radicale.request("GET", read["href"]).text
    for kept in ("VERSION:4.0", "BDAY:19900401", "X-MASTODON:@ana@example.social",
                 "item1.URL:https://ana.example", "NOTE:met at the fair"):
        assert kept in stored, f"{kept} was lost:\n{stored}"
    assert "N:Smith;Ana;;;" in stored and "FN:Ana Smith" in stored and "TITLE:CEO" in stored
    assert "ana@example.com" not in stored
    assert result.record is not None and result.record["etag"] != read["etag"]

    etag = radicale.request("GET", read["href"]).headers["ETag"]
    same, = c.write("contacts", [WriteOp("update", "k2", {"title": "CEO"},
                                         external_id=read["href"])])
    assert same.ok and radicale.request("GET", read["href"]).headers["ETag"] == etag, \
        "an update that changes nothing must not PUT"


def test_a_repeated_create_lands_on_the_same_card(radicale: Radicale,
                                                  book: str) -> None:
    c = connector(radicale, book)
    record = {"n": {"given": "Ana", "family": "Doe"},
              "emails": [{"value": "ana@example.com", "type": "work"}]}
    cid = "0190a7e2-7d3c-7abc-8def-0123456789ab"
    first, = c.write("contacts", [WriteOp("create", "k1", record, canonical_id=cid)])
    second, = c.write("contacts", [WriteOp("create", "k2", {**record, "title": "CEO"},
                                           canonical_id=cid)])
    assert first.ok and second.ok and first.external_id == second.external_id
    assert first.external_id == f"{book}{cid}.vcf"
    found = records(pages(c))
    assert len(found) == 1 and found[0]["uid"] == cid and found[0]["title"] == "CEO"


def test_a_card_changed_since_it_was_read_is_not_overwritten(
        radicale: Radicale, book: str) -> None:
    radicale.put(f"{book}a.vcf", person("a", "Ana"), VCARD)
    c = connector(radicale, book)
    href = by_uid(pages(c))["a"]["href"]
    radicale.put(href, person("a", "Ana", "Doe", "TITLE:set by a colleague"), VCARD)
    result, = c.write("contacts", [WriteOp("update", "k", {"title": "set by Liaison"},
                                           external_id=href)])
    assert not result.ok and isinstance(result.error, TransientError)
    assert result.error.status == 412
    assert f"{href}: not overwritten: it changed on the server after this run read it" \
        in str(result.error)
    assert "conflict policy" in str(result.error)
    assert "TITLE:set by a colleague" in radicale.request("GET", href).text
    # The next run reads the new version first; then the write goes through.
    pages(c)
    retried, = c.write("contacts", [WriteOp("update", "k", {"title": "set by Liaison"},
                                            external_id=href)])
    assert retried.ok and "TITLE:set by Liaison" in radicale.request("GET", href).text


def test_a_change_between_reading_and_putting_is_caught_by_if_match(
        radicale: Radicale, book: str, monkeypatch: pytest.MonkeyPatch) -> None:
    radicale.put(f"{book}a.vcf", person("a", "Ana"), VCARD)
    c = connector(radicale, book)
    href = f"{book}a.vcf"
    real_put = c.client.put

    def colleague_first(*args: Any, **kwargs: Any) -> str | None:
        radicale.put(href, person("a", "Ana", "Doe", "TITLE:colleague"), VCARD)
        return real_put(*args, **kwargs)
    monkeypatch.setattr(c.client, "put", colleague_first)
    result, = c.write("contacts", [WriteOp("update", "k", {"title": "Liaison"},
                                           external_id=href)])
    assert not result.ok and isinstance(result.error, TransientError)
    assert result.error.status == 412
    assert "TITLE:colleague" in radicale.request("GET", href).text


def test_delete_removes_a_card_and_refuses_one_changed_since_it_was_read(
        radicale: Radicale, book: str) -> None:
    radicale.put(f"{book}a.vcf", person("a", "Ana"), VCARD)
    radicale.put(f"{book}b.vcf", person("b", "Bea"), VCARD)
    c = connector(radicale, book)
    pages(c)
    radicale.put(f"{book}b.vcf", person("b", "Bea", "Doe", "TITLE:new"), VCARD)
    gone, kept = c.write("contacts", [WriteOp("delete", "d1", {}, external_id=f"{book}a.vcf"),
                                      WriteOp("delete", "d2", {}, external_id=f"{book}b.vcf")])
    assert gone.ok and radicale.request("GET", f"{book}a.vcf").status_code == 404
    assert not kept.ok and isinstance(kept.error, TransientError)
    assert radicale.request("GET", f"{book}b.vcf").status_code == 200
    again, = c.write("contacts", [WriteOp("delete", "d3", {}, external_id=f"{book}a.vcf")])
    assert again.ok, "deleting what is already gone is done"


def test_archive_is_refused_with_what_to_do_instead(radicale: Radicale,
                                                    book: str) -> None:
    radicale.put(f"{book}a.vcf", person("a", "Ana"), VCARD)
    result, = connector(radicale, book).write(
        "contacts", [WriteOp("archive", "k", {}, external_id=f"{book}a.vcf")])
    assert not result.ok and "delete_policy to delete or ignore" in str(result.error)


# -- errors -------------------------------------------------------------------------------------


def test_a_wrong_password_is_named_without_showing_it(radicale: Radicale, book: str,
                                                      monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    monkeypatch.setenv("LIAISON_TEST_DAV_PASSWORD", "not-the-password")
    c = connector(radicale, book)
    health = c.check()
    assert not health.ok
    assert "wrong user or password for connection dav (user 'tester'" in health.message
    with pytest.raises(AuthError, match="wrong user or password for connection dav") as caught:
        pages(c)
    assert "not-the-password" not in str(caught.value) and PASSWORD not in str(caught.value)


def test_a_missing_address_book_is_named_and_created_when_asked(
        radicale: Radicale) -> None:
    path = f"/{radicale.user}/not-yet/"
    health = connector(radicale, path).check()
    assert not health.ok and f"CardDAV address book {path} does not exist" in health.message
    assert "create_collection: true" in health.message
    made = connector(radicale, path, create_collection=True)
    assert made.check().ok
    result, = made.write("contacts", [WriteOp("create", "k", {"fn": "Ana"})])
    assert result.ok and records(pages(made))[0]["fn"] == "Ana"


def test_a_calendar_url_is_not_taken_for_an_address_book(radicale: Radicale) -> None:
    health = connector(radicale, radicale.calendar()).check()
    assert not health.ok and "is not a CardDAV address book" in health.message


def test_a_server_that_is_down_is_a_transient_failure(radicale: Radicale) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    c = CardDavConnector(radicale.connection("carddav", "/x/", base_url=f"http://127.0.0.1:"
                                                                         f"{port}/x/"))
    with pytest.raises(TransientError, match="connection failed"):
        pages(c)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except OSError:
                continue
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        sock.close()


def test_a_server_that_does_not_answer_in_time_is_a_transient_failure(
        radicale: Radicale, silent_server: int) -> None:
    c = CardDavConnector(radicale.connection(
        "carddav", "/x/", base_url=f"http://127.0.0.1:{silent_server}/x/", timeout=0.3))
    with pytest.raises(TransientError, match="timed out"):
        pages(c)


def test_fetch_reads_one_card_by_href_or_name_and_none_once_it_is_gone(
        radicale: Radicale, book: str) -> None:
    # fetch() is what `hub dlq replay` uses to read a record again at its source.
    radicale.put(f"{book}a.vcf", person("a", "Ana"), VCARD)
    c = connector(radicale, book)
    by_href = c.fetch("contacts", f"{book}a.vcf")
    by_name = c.fetch("contacts", "a.vcf")
    assert by_href is not None and by_name is not None
    assert by_href["uid"] == "a" and by_name["href"] == f"{book}a.vcf"
    assert c.fetch("contacts", f"{book}nobody.vcf") is None
