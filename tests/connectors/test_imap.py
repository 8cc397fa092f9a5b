"""The imap connector against a real Dovecot: fields, incremental reads, flags, expunges,
UIDVALIDITY changes, resumable cursors, TLS, log-in and mail that is not well formed."""

from __future__ import annotations

import glob
import json
import os
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import pytest

from connectors.imap.connector import ImapConnector
from connectors.imap.reader import ERROR_KEY
from connectors.imap.wire import mailbox_arg
from hub.canonical import validate
from hub.config.model import ConnectionConfig
from hub.connector import Cursor, NativeRecord, WriteOp
from hub.errors import AuthError, PermanentError, TransientError
from hub.mapping import compile_mapping, load_mapping
from tests.servers.dovecot import (  # noqa: F401 - fixtures
    Dovecot,
    append,
    dovecot,
    dovecot_plain,
)

MAPPING = compile_mapping(load_mapping("imap/message"))


def connector(server: Dovecot, user: str, **over: Any) -> ImapConnector:
    """A connector on `user`'s mailbox (closed by the test's `with`)."""
    return ImapConnector(ConnectionConfig(name="mail", connector="imap",
                                          settings=server.settings(user, **over),
                                          base_dir=Path(".")))


def read(conn: ImapConnector, cursor: Cursor | None = None, *, incremental: bool = True,
         page_size: int = 50) -> tuple[list[NativeRecord], Cursor]:
    """Every record of one read and its last cursor (passed through JSON, as stored)."""
    records: list[NativeRecord] = []
    last: Cursor | None = None
    for page in conn.read("messages", cursor, incremental=incremental, page_size=page_size):
        assert len(page.records) <= page_size
        records.extend(page.records)
        last = json.loads(json.dumps(page.cursor))
    assert last is not None
    return records, last


def message(subject: str = "Hello", *, sender: str = "Ana Silva <ana@example.com>",
            to: str = "bob@example.org", body: str = "Hi Bob,\nthe quote is attached.",
            msgid: str | None = "<m1@example.com>",
            date: str | None = "Tue, 01 Oct 2024 10:00:00 +0200",
            **headers: str) -> bytes:
    """An RFC 5322 message with CRLF line ends."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    if msgid is not None:
        msg["Message-ID"] = msgid
    if date is not None:
        msg["Date"] = date
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Iterator[tuple[Dovecot, str]]:  # noqa: F811
    """A fresh, empty mailbox on the shared server."""
    yield dovecot, dovecot.new_user()


def by_subject(records: list[NativeRecord]) -> dict[str, NativeRecord]:
    return {r["subject"]: r for r in records if not r.get("deleted")}


# -- what a message reads as ------------------------------------------------------------------

def test_a_message_reads_as_a_valid_canonical_message_with_every_field(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "Ana Silva <Ana@Example.com>"
    msg["To"] = 'bob@example.org, "Doe, Jane" <jane@example.net>'
    msg["Cc"] = "Ana@example.com, carl@example.org"
    msg["Subject"] = "Grüße – Angebot"  # encoded as RFC 2047 words by the policy
    msg["Date"] = "Tue, 01 Oct 2024 10:00:00 +0200"
    msg["Message-ID"] = "<reply@example.com>"
    msg["In-Reply-To"] = "<first@example.com>"
    msg["References"] = "<root@example.com> <first@example.com>"
    msg.set_content("Hello Bob,\n\n  the   quote is attached.\n" + "word " * 100)
    msg.add_alternative("<p>Hello <b>Bob</b></p>", subtype="html")
    msg.add_attachment(b"%PDF-1.4 " + bytes(range(256)) * 40, maintype="application",
                       subtype="pdf", filename="Angebot Nr 7.pdf")
    msg.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="data.csv")
    server.append(user, "INBOX", msg.as_bytes())
    with connector(server, user) as conn:
        (record,), _ = read(conn)
    assert record["subject"] == "Grüße – Angebot"
    assert record["from"] == {"address": "Ana@Example.com", "name": "Ana Silva"}
    assert record["to"] == [{"address": "bob@example.org", "name": None},
                            {"address": "jane@example.net", "name": "Doe, Jane"}]
    assert [c["address"] for c in record["cc"]] == ["Ana@example.com", "carl@example.org"]
    assert record["date"] == "2024-10-01T08:00:00Z" and record["date_source"] == "header"
    assert record["message_id"] == "<reply@example.com>"
    assert record["in_reply_to"] == "<first@example.com>"
    assert record["references"] == ["<root@example.com>", "<first@example.com>"]
    assert record["thread_id"] == "<root@example.com>"
    assert record["snippet"].startswith("Hello Bob, the quote is attached. word word")
    assert len(record["snippet"]) <= 200
    assert record["participants"] == ["ana@example.com", "bob@example.org",
                                      "jane@example.net", "carl@example.org"]
    pdf, csv = record["attachments"]
    assert pdf["name"] == "Angebot Nr 7.pdf" and pdf["content_type"] == "application/pdf"
    assert abs(pdf["size"] - (9 + 256 * 40)) <= 2
    assert csv["name"] == "data.csv" and csv["content_type"] == "text/csv"
    assert 8 <= csv["size"] <= 10  # estimated from the base64 size: the padding is unknown
    assert all(set(a) == {"name", "size", "content_type"} for a in record["attachments"])
    assert record["folder"] == "INBOX" and record["uid"] == 1
    assert record["id"] == f"INBOX:{record['uidvalidity']}:1"
    assert record["flags"] == [] and record["notes"] == []

    canonical = MAPPING.inbound(record, {}).data
    assert validate("message", canonical) == []
    assert canonical["from"]["address"] == "ana@example.com"
    assert canonical["attachments"][0]["name"] == "Angebot Nr 7.pdf"


def test_an_html_only_message_gives_the_text_without_tags(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"], msg["Subject"] = "a@example.com", "b@example.com", "News"
    msg.set_content("<html><head><style>p {color: red}</style><title>T</title></head>"
                    "<body><p>Caf&eacute; &amp; more</p><script>alert(1)</script>"
                    "<div>today</div></body></html>", subtype="html")
    server.append(user, "INBOX", msg.as_bytes())
    with connector(server, user) as conn:
        (record,), _ = read(conn)
    assert record["snippet"] == "Café & more today"


def test_reading_does_not_mark_mail_as_read(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    server.append(user, "INBOX", message())
    with connector(server, user) as conn:
        read(conn)
        (again,), _ = read(conn, incremental=False)
    assert "\\Seen" not in again["flags"]


# -- incremental reads ----------------------------------------------------------------------

def test_an_incremental_read_returns_only_new_messages(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    for i in range(3):
        server.append(user, "INBOX", message(f"old {i}", msgid=f"<old{i}@x.com>"))
    with connector(server, user) as conn:
        first, cursor = read(conn)
        assert sorted(by_subject(first)) == ["old 0", "old 1", "old 2"]
        nothing, cursor2 = read(conn, cursor)
        assert nothing == [] and cursor2 == cursor
        server.append(user, "INBOX", message("new", msgid="<new@x.com>"))
        found, _ = read(conn, cursor)
    assert [r["subject"] for r in found] == ["new"]


def test_a_flag_change_is_read_incrementally_through_condstore(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    for i in range(3):
        server.append(user, "INBOX", message(f"m{i}", msgid=f"<m{i}@x.com>"))
    with connector(server, user) as conn:
        _, cursor = read(conn)
        assert conn.session.condstore and conn.session.qresync
        with server.session(user) as imap:
            imap.select("INBOX")
            imap.uid("STORE", "2", "+FLAGS", "(\\Flagged \\Seen)")
        found, cursor = read(conn, cursor)
        assert [(r["subject"], r["flags"]) for r in found] == [("m1", ["\\Flagged", "\\Seen"])]
        assert MAPPING.inbound(found[0], {}).data["flags"] == ["\\Flagged", "\\Seen"]
        again, _ = read(conn, cursor)
    assert again == []


def test_an_expunged_message_reads_as_a_deleted_record(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    for i in range(3):
        server.append(user, "INBOX", message(f"m{i}", msgid=f"<m{i}@x.com>"))
    with connector(server, user) as conn:
        first, cursor = read(conn)
        gone = by_subject(first)["m1"]["id"]
        _expunge(server, user, "INBOX", "2")
        found, cursor = read(conn, cursor)
        assert found == [{"id": gone, "folder": "INBOX", "uidvalidity": first[0]["uidvalidity"],
                          "uid": 2, "deleted": True}]
        assert MAPPING.inbound(found[0], {}).deleted
        again, _ = read(conn, cursor)
    assert again == []


def _expunge(server: Dovecot, user: str, folder: str, uids: str) -> None:
    with server.session(user) as imap:
        imap.select(mailbox_arg(folder))
        imap.uid("STORE", uids, "+FLAGS", "(\\Deleted)")
        imap.expunge()


def test_without_condstore_expunges_are_found_by_comparing_uid_lists(dovecot_plain) -> None:  # type: ignore[no-untyped-def] # noqa: F811
    server = dovecot_plain
    user = server.new_user()
    for i in range(4):
        server.append(user, "INBOX", message(f"m{i}", msgid=f"<m{i}@x.com>"))
    with connector(server, user) as conn:
        first, cursor = read(conn)
        assert len(first) == 4
        assert not conn.session.condstore and not conn.session.qresync
        assert cursor["folders"]["INBOX"]["modseq"] is None
        _expunge(server, user, "INBOX", "1,3")
        server.append(user, "INBOX", message("m4", msgid="<m4@x.com>"))
        found, cursor = read(conn, cursor)
        assert [(r["uid"], r.get("deleted", False)) for r in found] == [
            (1, True), (3, True), (5, False)]
        again, _ = read(conn, cursor)
    assert again == []


def test_a_changed_uidvalidity_deletes_the_old_ids_and_reads_the_folder_again(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    for i in range(2):
        server.append(user, "Sales", message(f"s{i}", msgid=f"<s{i}@x.com>"))
    with connector(server, user, folders=["INBOX", "Sales"]) as conn:
        first, cursor = read(conn)
        old = {r["id"] for r in first}
        old_validity = server.uidvalidity(user, "Sales")
        with server.session(user) as imap:
            assert imap.delete("Sales")[0] == "OK"
        server.append(user, "Sales", message("s0", msgid="<s0@x.com>"))  # created again
        server.append(user, "Sales", message("s2", msgid="<s2@x.com>"))
        assert server.uidvalidity(user, "Sales") != old_validity
        found, cursor = read(conn, cursor, page_size=1)
        deleted = {r["id"] for r in found if r.get("deleted")}
        assert deleted == old
        fresh = [r for r in found if not r.get("deleted")]
        assert sorted(r["subject"] for r in fresh) == ["s0", "s2"]
        assert all(r["uidvalidity"] != old_validity for r in fresh)
        again, _ = read(conn, cursor)
    assert again == []


def test_resuming_an_incremental_read_from_any_page_cursor_reads_exactly_the_rest(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    for folder in ("INBOX", "Kunden Ärger"):
        for i in range(5):
            server.append(user, folder, message(f"{folder} {i}", msgid=f"<{i}@{len(folder)}>"))
    with connector(server, user, folders="INBOX, Kunden Ärger") as conn:
        _, base = read(conn)
        with server.session(user) as imap:
            for folder in ("INBOX", "Kunden Ärger"):
                imap.select(mailbox_arg(folder))
                imap.uid("STORE", "2,4", "+FLAGS", "(\\Answered)")
                imap.uid("STORE", "3", "+FLAGS", "(\\Deleted)")
                imap.expunge()
                for i in range(5, 8):
                    append(imap, folder, message(f"{folder} {i}"))
        pages = list(conn.read("messages", base, incremental=True, page_size=2))
        everything = [(r["id"], bool(r.get("deleted"))) for p in pages for r in p.records]
        assert len(everything) == len(set(everything)) == 2 * (1 + 2 + 3)
        for at, page in enumerate(pages[:-1]):
            cursor = json.loads(json.dumps(page.cursor))
            rest = [(r["id"], bool(r.get("deleted")))
                    for p in conn.read("messages", cursor, incremental=True, page_size=2)
                    for r in p.records]
            expected = [(r["id"], bool(r.get("deleted"))) for p in pages[at + 1:]
                        for r in p.records]
            assert rest == expected, f"resuming after page {at + 1}"


def test_a_full_read_reads_everything_and_reports_no_deletions(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    for i in range(3):
        server.append(user, "INBOX", message(f"m{i}"))
    with connector(server, user) as conn:
        _, cursor = read(conn)
        _expunge(server, user, "INBOX", "1")
        found, _ = read(conn, cursor, incremental=False)
    assert sorted(r["subject"] for r in found) == ["m1", "m2"]
    assert not any(r.get("deleted") for r in found)


def test_folders_with_spaces_and_umlauts_are_read(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    server.append(user, "Entwürfe & Co", message("draft"))
    with connector(server, user, folders=["Entwürfe & Co"]) as conn:
        (record,), cursor = read(conn)
    assert record["folder"] == "Entwürfe & Co" and record["subject"] == "draft"
    assert list(cursor["folders"]) == ["Entwürfe & Co"]


def test_a_folder_that_does_not_exist_is_named_with_the_ones_that_do(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    server.append(user, "Sent", message())
    with connector(server, user, folders=["INBOX", "Archiv"]) as conn:
        health = conn.check()
        assert not health.ok and "'Archiv'" in health.message and "Sent" in health.message
        with pytest.raises(PermanentError, match=r"folder 'Archiv' cannot be opened.*INBOX"):
            read(conn)


# -- connecting and logging in ---------------------------------------------------------------

@pytest.mark.parametrize("security", ["starttls", "none"])
def test_starttls_and_plain_connections_read_mail(mailbox, security: str) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    server.append(user, "INBOX", message())
    with connector(server, user, security=security, port=server.imap_port) as conn:
        assert conn.check().ok
        (record,), _ = read(conn)
    assert record["subject"] == "Hello"


def test_an_untrusted_certificate_says_to_set_ca_file(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    with connector(server, user, ca_file="") as conn:
        health = conn.check()
    assert not health.ok
    assert "certificate is not trusted" in health.message and "ca_file" in health.message
    assert "'mail'" in health.message


def test_tls_against_a_plain_port_says_to_check_security(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    with (connector(server, user, port=server.imap_port, timeout=5) as conn,
          pytest.raises(PermanentError, match="TLS handshake failed.*`security`")):
        read(conn)


def test_a_wrong_password_is_an_auth_error_naming_the_connection_and_user(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    with connector(server, user, password="not-the-password") as conn:
        with pytest.raises(AuthError) as caught:
            read(conn)
        assert not conn.check().ok
    text = str(caught.value)
    assert "'mail'" in text and repr(user) in text and "user name or password" in text
    assert "not-the-password" not in text


def test_xoauth2_logs_in_with_an_access_token(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    server.append(user, "INBOX", message())
    token = server.token(user)
    with connector(server, user, auth="xoauth2", password=None, access_token=token) as conn:
        (record,), _ = read(conn)
    assert record["subject"] == "Hello"


def test_a_refused_access_token_is_an_auth_error_that_does_not_show_it(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    with (connector(server, user, auth="xoauth2", access_token="expired-token-123") as conn,
          pytest.raises(AuthError, match="access token.*get a new one") as caught):
        read(conn)
    assert "expired-token-123" not in str(caught.value)


def test_a_server_that_is_not_running_is_a_transient_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        conn = ImapConnector(ConnectionConfig(
            name="mail", connector="imap", base_dir=Path("."),
            settings={"host": "127.0.0.1", "port": port, "user": "u", "password": "p"}))
        with pytest.raises(TransientError, match="refused the connection"):
            read(conn)
        conn.close()


def test_writing_is_refused_per_op_and_fetch_reads_one_message(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    server.append(user, "INBOX", message())
    with connector(server, user) as conn:
        (result,) = conn.write("messages", [WriteOp("create", "k", {"subject": "x"})])
        assert not result.ok and "only reads mail" in str(result.error)
        (record,), _ = read(conn)
        assert conn.fetch("messages", record["id"]) == record
        _expunge(server, user, "INBOX", "1")
        assert conn.fetch("messages", record["id"]) is None
        assert conn.fetch("messages", "INBOX:1:1") is None  # another UIDVALIDITY


# -- mail that is not well formed -------------------------------------------------------------

def test_malformed_mime_is_synced_with_what_can_be_read(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    broken = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: broken\r\n"
              b"Message-ID: <broken@x.com>\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/mixed; boundary=\"never-closed\r\n\r\n"
              b"--never-closed\r\nContent-Type: text/plain; charset=\"utf-8\r\n"
              b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64 at all===\r\n"
              b"--never-closed\r\nContent-Type: ;;;\r\n\r\n\x00\x01\x02garbage\r\n")
    server.append(user, "INBOX", broken)
    server.append(user, "INBOX", message("after"))
    with connector(server, user) as conn:
        records, _ = read(conn)
    assert [r["subject"] for r in records] == ["broken", "after"]
    assert ERROR_KEY not in records[0]
    assert validate("message", MAPPING.inbound(records[0], {}).data) == []


def test_unknown_charsets_decode_with_replacement_characters(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    raw = (b"From: =?x-klingon?q?Kor=FF?= <kor@example.com>\r\nTo: b@example.com\r\n"
           b"Subject: =?x-klingon?b?/w==?= plan\r\nMessage-ID: <k@x.com>\r\n"
           b"Content-Type: text/plain; charset=x-klingon\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\nQapla\xff\xfe!\r\n")
    server.append(user, "INBOX", raw)
    with connector(server, user) as conn:
        (record,), _ = read(conn)
    assert record["subject"] == "\ufffd plan"
    assert record["from"] == {"address": "kor@example.com", "name": "Kor\ufffd"}
    assert record["snippet"].startswith("Qapla\ufffd")
    assert any("x-klingon" in n for n in record["notes"])


def test_a_huge_message_is_read_without_downloading_its_body(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"], msg["Subject"] = "a@example.com", "b@example.com", "big"
    msg.set_content("The scans are attached. " * 2000)  # 48 kB of text, beyond the cap
    blob = os.urandom(6 * 1024 * 1024)
    msg.add_attachment(blob, maintype="application", subtype="octet-stream",
                       filename="scan.bin")
    server.append(user, "INBOX", msg.as_bytes())
    with connector(server, user) as conn:
        (record,), _ = read(conn)
        received = conn.bytes_received
    assert received < 64 * 1024, f"{received} bytes came down for a 8 MB message"
    assert record["size"] > 8 * 1024 * 1024
    (attachment,) = record["attachments"]
    assert abs(attachment["size"] - len(blob)) <= 2
    assert record["snippet"].startswith("The scans are attached.")


def test_messages_without_message_id_or_date_are_synced_with_a_note(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    server.append(user, "INBOX", message("no id", msgid=None))
    server.append(user, "INBOX", message("no date", date=None))
    server.append(user, "INBOX", message("bad date", date=None).replace(
        b"Subject:", b"Date: the day after tomorrow\r\nSubject:"))
    with connector(server, user) as conn:
        records, _ = read(conn)
    no_id, no_date, bad_date = records
    assert no_id["message_id"] is None and no_id["thread_id"] is None
    assert "no Message-ID header" in no_id["notes"]
    for record in (no_date, bad_date):
        assert record["date"] == record["received"] and record["date_source"] == "received"
        assert validate("message", MAPPING.inbound(record, {}).data) == []
    assert "no Date header" in no_date["notes"][0]
    assert "'the day after tomorrow' is not a date" in bad_date["notes"][0]


def test_odd_addresses_and_raw_utf8_headers_still_validate(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    raw = ("From: Jürgen Groß <juergen@example.de>\r\nTo: undisclosed-recipients:;\r\n"
           "Cc: root@localhost, <>\r\nSubject: Größe\r\nMessage-ID: <u@x.com>\r\n\r\nhi\r\n")
    server.append(user, "INBOX", raw.encode())
    with connector(server, user) as conn:
        (record,), _ = read(conn)
    assert record["subject"] == "Größe"
    assert record["from"] == {"address": "juergen@example.de", "name": "Jürgen Groß"}
    assert record["to"] == []
    assert record["cc"] == [{"address": None, "name": "root@localhost"}]
    assert record["participants"] == ["juergen@example.de"]
    assert validate("message", MAPPING.inbound(record, {}).data) == []


def test_a_message_the_server_cannot_read_is_dead_lettered_naming_folder_and_uid(mailbox) -> None:  # type: ignore[no-untyped-def]
    server, user = mailbox
    for i in range(3):
        server.append(user, "INBOX", message(f"m{i}"))
    files = glob.glob(str(server.root / "mail" / user / "*" / "*,S=*"))
    (second,) = [f for f in files if b"Subject: m1" in Path(f).read_bytes()]
    os.chmod(second, 0)  # the server's mail user can no longer read it
    with connector(server, user) as conn:
        records, cursor = read(conn)
        assert [r.get("subject") for r in records] == ["m0", None, "m2"]
        error = records[1][ERROR_KEY]
        assert error.startswith("folder 'INBOX' UID 2: the message could not be read")
        assert "127.0.0.1" in error and "'mail'" in error
        again, _ = read(conn, cursor)  # the cursor moved past it: no endless retry
    assert again == []
