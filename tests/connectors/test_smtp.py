"""The smtp connector against a real SMTP server on loopback: sending, at most once, errors.

Every test observes what arrived at the server (tests/connectors/smtp_server.py), never a
mock of our own code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.smtp.connector import SmtpConnector
from connectors.smtp.sentlog import SentLog, sent_log_location
from hub.config.model import ConnectionConfig, Secret
from hub.connector import WriteOp, WriteResult
from hub.errors import AuthError, ConnectorError, PermanentError, SecretError, TransientError
from tests.connectors.smtp_server import Certificate, SmtpServer, make_certificate

ROOT = Path(__file__).resolve().parents[2]
Make = Callable[..., SmtpConnector]


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    """A plain SMTP server recording what arrives."""
    with SmtpServer() as s:
        yield s


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def make(server: SmtpServer, tmp_path: Path) -> Iterator[Make]:
    """make(**settings) -> a connector for `server` (settings override the defaults); all
    connectors made share the sent log in tmp_path, as one system's do, and are closed."""
    made: list[SmtpConnector] = []

    def build(target: SmtpServer | None = None, **settings: Any) -> SmtpConnector:
        base = (target or server).settings(**settings)
        conn = ConnectionConfig(name="mailer", connector="smtp",
                                settings={k: v for k, v in base.items() if v is not None},
                                base_dir=tmp_path)
        c = SmtpConnector(conn)
        made.append(c)
        return c
    yield build
    for c in made:
        c.close()


def create(record: dict[str, Any], key: str = "k", canonical_id: str = "") -> WriteOp:
    return WriteOp("create", key, record, canonical_id=canonical_id)


def send(c: SmtpConnector, *records: dict[str, Any]) -> list[WriteResult]:
    return c.write("messages", [create(r, f"k{i}", f"rec-{i}") for i, r in enumerate(records)])


def failed(result: WriteResult) -> str:
    assert not result.ok and result.error is not None, f"expected a failure, got {result}"
    return str(result.error)


HELLO = {"to": "bob@example.com", "subject": "Hello", "text": "Hi Bob"}


# -- sending ------------------------------------------------------------------------------


def test_a_record_arrives_with_its_headers_and_bodies(make: Make, server: SmtpServer) -> None:
    c = make(bcc="archive@example.com")
    result, = send(c, {"from": {"address": "ana@example.com", "name": "Ana Silva"},
                       "to": [{"address": "bob@example.com", "name": "Bob"}],
                       "cc": "Cy <cy@example.com>; dee@example.com", "bcc": "eve@example.com",
                       "reply_to": "help@example.com", "subject": "Quote",
                       "text": "Hello Bob,\n. a line starting with a dot\n",
                       "html": "<p>Hello Bob</p>", "headers": {"X-Ticket": "42"}})
    assert result.ok, result.error
    got, = server.messages
    msg = got.message
    assert got.mail_from == "ana@example.com"
    assert sorted(got.rcpt_tos) == ["archive@example.com", "bob@example.com", "cy@example.com",
                                    "dee@example.com", "eve@example.com"]
    assert str(msg["From"]) == "Ana Silva <ana@example.com>"
    assert str(msg["To"]) == "Bob <bob@example.com>"
    assert str(msg["Cc"]) == "Cy <cy@example.com>, dee@example.com"
    assert "Bcc" not in msg, "Bcc recipients must not be shown to the others"
    assert str(msg["Reply-To"]) == "help@example.com" and str(msg["X-Ticket"]) == "42"
    assert str(msg["Subject"]) == "Quote" and msg["Date"]
    assert got.text() == "Hello Bob,\n. a line starting with a dot\n"
    assert got.html() == "<p>Hello Bob</p>\n"
    assert result.external_id == got.message_id
    assert result.record is not None and result.record["message_id"] == got.message_id


def test_the_from_setting_is_the_default_sender(make: Make, server: SmtpServer) -> None:
    result, = send(make(), HELLO)
    assert result.ok, result.error
    assert str(server.messages[0].message["From"]) == "Accounts <accounts@example.com>"
    assert result.external_id is not None and result.external_id.endswith("@example.com>")


def test_a_record_with_its_own_message_id_and_thread_keeps_them(make: Make,
                                                                server: SmtpServer) -> None:
    result, = send(make(), {**HELLO, "message_id": "reply-1@example.com",
                            "in_reply_to": "<orig@example.com>",
                            "references": ["<root@example.com>", "<orig@example.com>"]})
    assert result.ok and result.external_id == "<reply-1@example.com>"
    msg = server.messages[0].message
    assert str(msg["Message-ID"]) == "<reply-1@example.com>"
    assert str(msg["In-Reply-To"]) == "<orig@example.com>"
    assert str(msg["References"]) == "<root@example.com> <orig@example.com>"


def test_one_session_sends_a_batch_and_each_record_gets_its_own_result(
        make: Make, server: SmtpServer) -> None:
    results = send(make(), *[{**HELLO, "to": f"p{i}@example.com"} for i in range(5)])
    assert all(r.ok for r in results) and [r.key for r in results] == [f"k{i}" for i in
                                                                        range(5)]
    assert len({r.external_id for r in results}) == 5
    assert sorted(m.rcpt_tos[0] for m in server.messages) == [f"p{i}@example.com"
                                                              for i in range(5)]


# -- at most once -------------------------------------------------------------------------


def test_the_same_op_written_twice_is_sent_once(make: Make, server: SmtpServer) -> None:
    op = create(HELLO, "key-1", "rec-1")
    first, = make().write("messages", [op])
    # A retried delivery, as from a new process: a new connector on the same sent log.
    second, = make().write("messages", [op])
    assert first.ok and second.ok
    assert first.external_id == second.external_id
    assert len(server.messages) == 1


def test_a_retry_with_changed_content_is_still_the_same_message(make: Make,
                                                                 server: SmtpServer) -> None:
    """The engine's key changes with the content; the record's identity does not."""
    first, = make().write("messages", [create(HELLO, "rec-1:aaaa", "rec-1")])
    again, = make().write("messages", [create({**HELLO, "text": "Changed"}, "rec-1:bbbb",
                                              "rec-1")])
    other, = make().write("messages", [create(HELLO, "rec-2:aaaa", "rec-2")])
    assert first.external_id == again.external_id != other.external_id
    assert len(server.messages) == 2


def test_update_archive_and_delete_send_nothing(make: Make, server: SmtpServer) -> None:
    c = make()
    sent, = send(c, HELLO)
    ops = [WriteOp(action, action, {**HELLO, "subject": "Changed"},
                   external_id=sent.external_id) for action in ("update", "archive", "delete")]
    results = c.write("messages", ops)
    assert all(r.ok and r.external_id == sent.external_id for r in results), results
    assert len(server.messages) == 1


def test_process_dying_after_the_server_accepted_sends_no_duplicate(
        make: Make, server: SmtpServer) -> None:
    """The server said 250 and the sent log says "sent"; the engine never stored the link
    (the process died before write() returned to it). The retry is ok and sends nothing."""
    op = create(HELLO, "rec-7:1", "rec-7")
    first, = make().write("messages", [op])
    entry = SentLog(sent_log_location(make().connection)).by_message_id(str(first.external_id))
    assert [e.status for e in entry] == ["sent"]
    retry, = make().write("messages", [op])
    assert retry.ok and retry.external_id == first.external_id
    assert len(server.messages) == 1


CLIENT = """
import json, sys
from pathlib import Path
from connectors.smtp.connector import SmtpConnector
from hub.config.model import ConnectionConfig
from hub.connector import WriteOp
settings, base, record = json.loads(sys.argv[1])
c = SmtpConnector(ConnectionConfig(name="mailer", connector="smtp", settings=settings,
                                   base_dir=Path(base)))
print(c.write("messages", [WriteOp("create", "k", record, canonical_id="rec-9")]))
"""


def killed_mid_send(server: SmtpServer, tmp_path: Path,
                    settings: dict[str, Any] | None = None) -> None:
    """Run a client process (config folder `tmp_path`, connection `settings`, by default
    the server's) that the server kills once the whole message has arrived and before it
    answers: the client's last moment is between "." and "250"."""
    ready = threading.Event()
    pid: list[int] = []

    def kill(_got: Any) -> None:
        ready.wait(10)
        os.kill(pid[0], signal.SIGKILL)

    server.recorder.on_data = kill
    proc = subprocess.Popen([sys.executable, "-c", CLIENT,
                             json.dumps([settings or server.settings(), str(tmp_path),
                                         HELLO])], cwd=ROOT)
    pid.append(proc.pid)
    ready.set()
    assert proc.wait(timeout=60) == -signal.SIGKILL
    server.recorder.on_data = None


def test_a_send_cut_off_between_the_end_and_the_reply_is_never_repeated(
        make: Make, server: SmtpServer, tmp_path: Path) -> None:
    killed_mid_send(server, tmp_path)
    assert len(server.messages) == 1  # the server kept it; the client never heard
    c = make()
    retry, = c.write("messages", [create(HELLO, "k", "rec-9")])
    reason = failed(retry)
    assert isinstance(retry.error, PermanentError)
    assert "may have arrived" in reason and "not sent again" in reason
    mid = server.messages[0].message_id
    assert mid in reason and "bob@example.com" in reason
    assert f"python -m connectors.smtp.sentlog {c.log.where}" in reason
    again, = make().write("messages", [create(HELLO, "k", "rec-9")])
    assert not again.ok
    assert len(server.messages) == 1


def _settle(log: Path, verdict: str, message_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "connectors.smtp.sentlog", str(log), verdict,
                           message_id], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)


def test_the_operator_settles_a_cut_off_send_as_arrived(make: Make, server: SmtpServer,
                                                        tmp_path: Path) -> None:
    killed_mid_send(server, tmp_path)
    c = make()
    mid = server.messages[0].message_id
    listed = subprocess.run([sys.executable, "-m", "connectors.smtp.sentlog", str(c.log.where),
                             "list"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                            check=True)
    assert "sending" in listed.stdout and mid in listed.stdout
    done = _settle(c.log.where, "sent", mid)
    assert done.returncode == 0, done.stderr
    replay, = c.write("messages", [create(HELLO, "k", "rec-9")])
    assert replay.ok and replay.external_id == mid
    assert len(server.messages) == 1


def test_the_operator_settles_a_cut_off_send_as_lost_and_it_is_sent_once(
        make: Make, server: SmtpServer, tmp_path: Path) -> None:
    killed_mid_send(server, tmp_path)
    c = make()
    mid = server.messages[0].message_id
    assert _settle(c.log.where, "unsent", mid).returncode == 0
    replay, = c.write("messages", [create(HELLO, "k", "rec-9")])
    again, = c.write("messages", [create(HELLO, "k", "rec-9")])
    assert replay.ok and again.ok and replay.external_id == mid
    assert len(server.messages) == 2  # the operator said the first never arrived
    unknown = _settle(c.log.where, "sent", "<nope@example.com>")
    assert unknown.returncode == 1 and "no message" in unknown.stdout


# -- server refusals ----------------------------------------------------------------------


def test_an_unknown_mailbox_is_a_permanent_error_with_the_servers_words(
        make: Make, server: SmtpServer) -> None:
    server.recorder.refuse_rcpt["ghost@example.com"] = "550 5.1.1 <ghost@example.com>: " \
                                                       "Recipient address rejected"
    bad, good = send(make(), {**HELLO, "to": "bob@example.com, ghost@example.com"}, HELLO)
    reason = failed(bad)
    assert isinstance(bad.error, PermanentError) and bad.error.status == 550
    assert "ghost@example.com: 550 5.1.1" in reason and "Recipient address rejected" in reason
    assert "nothing was sent" in reason
    assert good.ok, "the next record of the batch is still sent"
    assert [m.rcpt_tos for m in server.messages] == [("bob@example.com",)]


def test_a_4xx_is_transient_and_the_retry_sends_once(make: Make, server: SmtpServer) -> None:
    server.recorder.data_replies.append("451 4.3.0 Temporary local problem")
    op = create(HELLO, "k", "rec-1")
    first, = make().write("messages", [op])
    assert isinstance(first.error, TransientError) and first.error.status == 451
    assert "451 4.3.0 Temporary local problem" in str(first.error)
    assert server.messages == []
    retry, = make().write("messages", [op])
    assert retry.ok
    assert len(server.messages) == 1


def test_greylisting_of_a_recipient_is_transient(make: Make, server: SmtpServer) -> None:
    server.recorder.refuse_rcpt["bob@example.com"] = "450 4.7.1 Greylisted, try later"
    result, = send(make(), HELLO)
    assert isinstance(result.error, TransientError)
    assert "Greylisted" in str(result.error)


def test_a_server_that_is_down_is_transient_for_every_record(make: Make,
                                                             server: SmtpServer) -> None:
    c = make()
    server.stop()
    results = send(c, HELLO, HELLO)
    assert [type(r.error) for r in results] == [TransientError, TransientError]
    assert f"127.0.0.1:{server.port}" in str(results[0].error)
    health = c.check()
    assert not health.ok and f"127.0.0.1:{server.port}" in health.message


# -- bad input: each record is sent or dead-lettered with a reason -------------------------


@pytest.mark.parametrize(("record", "words"), [
    ({"to": "bob@@example.com"}, "to: 'bob@@example.com' is not an email address"),
    ({"to": "not an address"}, "is not an email address"),
    ({"to": ["ok@example.com", "bob@localhost"]}, "to[1]: 'bob@localhost': the domain"),
    ({"to": "bob@example.com\r\nBcc: victim@example.com"}, "line break"),
    ({"to": {"address": "bob@example.com", "name": "Bob\nBcc: victim@example.com"}},
     "line break"),
    ({"cc": "x@example.com", "to": None, "from": "Me <me@exa mple.com>"}, "from:"),
    ({"to": ""}, "no recipient"),
    ({"to": "bob@example.com", "subject": ""}, "no subject"),
    ({"to": "bob@example.com", "text": None}, "no body"),
    ({"headers": {"X-Evil": "1\r\nBcc: victim@example.com"}}, "headers.X-Evil: holds a line"),
    ({"headers": {"Bcc": "victim@example.com"}}, "headers.Bcc: set by the connector"),
    ({"headers": {"Bad Name": "x"}}, "is not a header name"),
    ({"message_id": "has space@example.com"}, "message_id"),
    ({"references": "<ok@example.com> broken"}, "references[1]"),
    ({"text": 42}, "text: expected text"),
])
def test_a_record_that_cannot_be_an_email_is_refused_with_the_field(
        make: Make, server: SmtpServer, record: dict[str, Any], words: str) -> None:
    bad, good = send(make(), {**HELLO, **record}, HELLO)
    assert isinstance(bad.error, PermanentError)
    assert words in failed(bad)
    assert good.ok, "one bad record does not stop the others"
    assert [m.rcpt_tos for m in server.messages] == [("bob@example.com",)]


def test_line_breaks_in_a_subject_are_folded_into_spaces(make: Make,
                                                         server: SmtpServer) -> None:
    result, = send(make(), {**HELLO, "subject": "Invoice\r\nBcc: victim@example.com\n  due"})
    assert result.ok, result.error
    got, = server.messages
    assert str(got.message["Subject"]) == "Invoice Bcc: victim@example.com due"
    assert "Bcc" not in got.message and got.rcpt_tos == ("bob@example.com",)


def test_non_ascii_names_subjects_and_domains_are_encoded(make: Make,
                                                          server: SmtpServer) -> None:
    result, = send(make(), {"from": "Zoë Ångström <zoe@example.com>",
                            "to": "Jürgen Müller <jurgen@bücher.example>",
                            "subject": "Rechnung fällig – 請求書", "text": "Grüße, 你好\n"})
    assert result.ok, result.error
    got, = server.messages
    assert got.data.isascii(), "without SMTPUTF8 the message must be plain ASCII"
    assert b"=?utf-8?" in got.data
    assert "SMTPUTF8" not in got.mail_options
    assert got.rcpt_tos == ("jurgen@xn--bcher-kva.example",)
    msg = got.message
    assert str(msg["Subject"]) == "Rechnung fällig – 請求書"
    assert msg["From"].addresses[0].display_name == "Zoë Ångström"
    assert msg["To"].addresses[0].display_name == "Jürgen Müller"
    assert got.text() == "Grüße, 你好\n"


def test_a_non_ascii_mailbox_name_is_sent_with_smtputf8(make: Make,
                                                        server: SmtpServer) -> None:
    result, = send(make(), {**HELLO, "to": "josé@example.com", "subject": "Olá"})
    assert result.ok, result.error
    got, = server.messages
    assert "SMTPUTF8" in got.mail_options and got.rcpt_tos == ("josé@example.com",)
    assert str(got.message["Subject"]) == "Olá"


def test_a_non_ascii_mailbox_name_without_smtputf8_is_refused_with_the_reason(
        make: Make) -> None:
    with SmtpServer(smtputf8=False) as plain:
        result, = send(make(plain), {**HELLO, "to": "josé@example.com"})
        assert "josé@example.com" in failed(result) and "SMTPUTF8" in failed(result)
        assert isinstance(result.error, PermanentError)
        assert plain.messages == []


def test_a_huge_body_over_the_configured_limit_is_refused(make: Make,
                                                          server: SmtpServer) -> None:
    big, small = send(make(max_message_bytes=50_000), {**HELLO, "text": "x" * 60_000}, HELLO)
    assert "over the limit of 50,000" in failed(big) and "max_message_bytes" in failed(big)
    assert small.ok and len(server.messages) == 1


def test_a_body_over_the_servers_size_limit_is_refused_before_sending(make: Make) -> None:
    with SmtpServer(size_limit=20_000) as small_server:
        big, ok = send(make(small_server), {**HELLO, "text": "y" * 30_000}, HELLO)
        assert "accepts at most 20,000" in failed(big)
        assert ok.ok and len(small_server.messages) == 1


def test_long_lines_are_wrapped_so_the_server_takes_them(make: Make,
                                                         server: SmtpServer) -> None:
    text = "z" * 5000 + "\n"
    result, = send(make(), {**HELLO, "text": text})
    assert result.ok, result.error
    assert max(len(line) for line in server.messages[0].data.split(b"\r\n")) <= 998
    assert server.messages[0].text() == text


# -- templates ----------------------------------------------------------------------------

INVOICE = {"to": "bob@example.com", "template": "overdue_invoice", "number": "INV-7",
           "due_date": "2024-03-01", "total_amount": "120.00", "balance": "20.00",
           "currency": "EUR", "memo": "PO <1234> & co"}


def test_the_built_in_reminder_template_renders_subject_text_and_html(
        make: Make, server: SmtpServer) -> None:
    result, = send(make(), INVOICE)
    assert result.ok, result.error
    got, = server.messages
    assert str(got.message["Subject"]) == "Reminder: invoice INV-7 is overdue"
    text = got.text()
    assert "invoice INV-7 for 120.00 EUR was due on 2024-03-01" in text
    assert "still open is 20.00 EUR" in text and "PO <1234> & co" in text
    html = got.html()
    assert html is not None and "PO &lt;1234&gt; &amp; co" in html and "<1234>" not in html


def test_a_missing_template_value_names_the_file_line_and_placeholder(
        make: Make, server: SmtpServer) -> None:
    bad, = send(make(), {k: v for k, v in INVOICE.items() if k != "balance"})
    reason = failed(bad)
    assert isinstance(bad.error, PermanentError)
    assert "overdue_invoice.txt:6: {balance} has no value in this record" in reason
    assert server.messages == []


def test_an_optional_placeholder_may_be_empty(make: Make, server: SmtpServer) -> None:
    result, = send(make(), {k: v for k, v in INVOICE.items() if k != "memo"})
    assert result.ok, result.error
    assert "None" not in server.messages[0].text()


def test_templates_dir_overrides_the_built_in_templates(make: Make, server: SmtpServer,
                                                        tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "overdue_invoice.txt").write_text(
        "Subject: {{Late}} {number} / {contact.name}\n\nPay {balance} {currency} by "
        "{lines[0].due}.\n{missing?}-\n", encoding="utf-8")
    result, = send(make(templates_dir="mail"), {
        **INVOICE, "contact": {"name": "Bob"}, "lines": [{"due": "Friday"}]})
    assert result.ok, result.error
    got, = server.messages
    assert str(got.message["Subject"]) == "{Late} INV-7 / Bob"
    assert got.text() == "Pay 20.00 EUR by Friday.\n-\n"
    assert got.html() is None


@pytest.mark.parametrize(("body", "words"), [
    ("Subject: x\n\nHello {name.__class__}\n", "{name.__class__} has no value"),
    ("Subject: x\n\n{items}\n", "is a group of fields"),
    ("Subject: x\nno empty line\n", "overdue_invoice.txt:2: the Subject line must be"),
    ("Subject: x\n\nHello {name\n", "overdue_invoice.txt:3: '{' is not closed"),
    ("Subject: x\n\nok\n\n}\n", "overdue_invoice.txt:5: '}' without '{'"),
])
def test_template_mistakes_are_reported_per_record_with_file_and_line(
        make: Make, server: SmtpServer, tmp_path: Path, body: str, words: str) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "overdue_invoice.txt").write_text(body, encoding="utf-8")
    c = make(templates_dir="mail")
    bad, = send(c, {**INVOICE, "name": "Bob", "items": {"a": 1}})
    assert words in failed(bad)
    assert server.messages == []


def test_a_template_name_cannot_leave_the_templates_folder(make: Make,
                                                           server: SmtpServer) -> None:
    bad, unknown = send(make(), {**INVOICE, "template": "../../etc/passwd"},
                        {**INVOICE, "template": "no_such_template"})
    assert "not a plain file name" in failed(bad)
    assert "template 'no_such_template' not found" in failed(unknown)
    assert server.messages == []


def test_check_reports_a_broken_template(make: Make, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    (folder / "welcome.txt").write_text("Subject: Hi {name\n\nx\n", encoding="utf-8")
    health = make(templates_dir="mail").check()
    assert not health.ok and "welcome.txt:1" in health.message


# -- connection: TLS, login, check --------------------------------------------------------


def test_check_connects_and_says_what_it_found(make: Make, server: SmtpServer) -> None:
    health = make().check()
    assert health.ok, health.message
    assert f"127.0.0.1:{server.port} answered" in health.message
    assert server.messages == []


def test_starttls_with_login_sends_over_tls(make: Make, cert: Certificate,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_TEST_PASSWORD", "s3cret-pw")
    with SmtpServer(tls=cert, users={"mailer": "s3cret-pw"}) as tls:
        c = make(tls, security="starttls", user="mailer", ca_file=str(cert.cert),
                 password=Secret("SMTP_TEST_PASSWORD"))
        health = c.check()
        assert health.ok and "TLS, logged in as mailer" in health.message, health.message
        result, = send(c, HELLO)
        assert result.ok, result.error
        got, = tls.messages
        assert got.tls and got.authenticated_as == "mailer"


def test_implicit_tls(make: Make, cert: Certificate) -> None:
    with SmtpServer(tls=cert, implicit_tls=True) as smtps:
        c = make(smtps, security="ssl", ca_file=str(cert.cert))
        assert c.check().ok
        result, = send(c, HELLO)
        assert result.ok, result.error
        assert smtps.messages[0].tls


def test_a_wrong_password_fails_the_whole_call_without_showing_it(
        make: Make, cert: Certificate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_TEST_PASSWORD", "wrong-horse")
    with SmtpServer(tls=cert, users={"mailer": "right"}) as tls:
        c = make(tls, security="starttls", user="mailer", ca_file=str(cert.cert),
                 password=Secret("SMTP_TEST_PASSWORD"))
        with pytest.raises(AuthError) as caught:
            send(c, HELLO)
        assert "refused the login" in str(caught.value) and "535" in str(caught.value)
        health = c.check()
        assert not health.ok and "refused the login" in health.message
        assert "wrong-horse" not in str(caught.value) + health.message
        assert tls.messages == []


def test_an_untrusted_certificate_is_refused_with_what_to_do(make: Make,
                                                             cert: Certificate) -> None:
    with SmtpServer(tls=cert) as tls:
        c = make(tls, security="starttls")
        with pytest.raises(PermanentError, match="not trusted.*set ca_file"):
            send(c, HELLO)
        assert not c.check().ok
        insecure = make(tls, security="starttls", tls_verify="false")
        assert send(insecure, HELLO)[0].ok
        assert len(tls.messages) == 1


def test_starttls_required_but_not_offered(make: Make, server: SmtpServer) -> None:
    with pytest.raises(PermanentError, match="does not offer STARTTLS"):
        send(make(security="starttls"), HELLO)
    assert server.messages == []


def test_tls_on_a_plain_port_says_to_check_security(make: Make, server: SmtpServer) -> None:
    health = make(security="ssl").check()
    assert not health.ok and "security" in health.message


def test_bad_settings_are_reported_with_the_setting() -> None:
    conn = ConnectionConfig(name="mailer", connector="smtp",
                            settings={"host": "x", "security": "tls"}, base_dir=Path("."))
    with pytest.raises(ConnectorError, match="setting 'security' must be one of starttls"):
        SmtpConnector(conn)
    assert SmtpConnector.capabilities.secret_settings == {"password"}


def test_reading_is_refused_with_a_pointer_to_imap(make: Make) -> None:
    with pytest.raises(PermanentError, match="imap connector"):
        list(make().read("messages", None, incremental=False, page_size=10))


def test_an_unset_password_variable_fails_the_call_naming_it(make: Make, cert: Certificate,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.delenv("SMTP_UNSET_PASSWORD", raising=False)
    with SmtpServer(tls=cert, users={"mailer": "x"}) as tls:
        c = make(tls, security="starttls", user="mailer", ca_file=str(cert.cert),
                 password=Secret("SMTP_UNSET_PASSWORD"))
        with pytest.raises(SecretError, match="SMTP_UNSET_PASSWORD is not set"):
            send(c, HELLO)
        health = c.check()
        assert not health.ok and "SMTP_UNSET_PASSWORD" in health.message
