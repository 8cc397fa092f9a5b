"""The imap connector's pure parts: IMAP answers, UID sets, folder names, MIME details,
the XOAUTH2 string and the cursor. No server needed."""

from __future__ import annotations

import base64
import quopri
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.imap import parse
from connectors.imap.client import xoauth2_string
from connectors.imap.connector import ImapConnector
from connectors.imap.reader import ReadState
from connectors.imap.wire import (
    Atom,
    UidSet,
    WireError,
    decode_mailbox,
    encode_mailbox,
    parse_fetch,
)
from hub.config.model import ConnectionConfig
from hub.errors import ConnectorError, PermanentError

uids = st.integers(min_value=1, max_value=300)


# -- UID sets -----------------------------------------------------------------------------------

@given(st.sets(uids), st.lists(uids))
def test_a_uid_set_behaves_like_a_set_of_numbers(start: set[int], removed: list[int]) -> None:
    found = UidSet(start)
    expected = set(start)
    for uid in removed:
        found.discard(uid)
        expected.discard(uid)
    assert list(found) == sorted(expected)
    assert len(found) == len(expected) and bool(found) == bool(expected)
    assert all((u in found) == (u in expected) for u in range(302))
    assert found.max() == max(expected, default=0)


@given(st.sets(uids))
def test_a_uid_set_survives_its_text_form(start: set[int]) -> None:
    text = str(UidSet(start))
    assert UidSet.parse(text) == UidSet(start)
    assert list(UidSet.parse(text)) == sorted(start)


def test_a_uid_set_is_written_as_ranges() -> None:
    assert str(UidSet([1, 2, 3, 5, 7, 8])) == "1:3,5,7:8"
    assert list(UidSet.parse("9:7,1")) == [1, 7, 8, 9]
    with pytest.raises(ValueError, match="not positive"):
        UidSet.parse("0:3")


# -- folder names -------------------------------------------------------------------------------

@given(st.text())
def test_folder_names_survive_modified_utf7(name: str) -> None:
    encoded = encode_mailbox(name)
    assert encoded.isascii()
    assert decode_mailbox(encoded) == name


@pytest.mark.parametrize(("name", "wire"), [
    ("INBOX", "INBOX"), ("Entwürfe", "Entw&APw-rfe"), ("A&B", "A&-B"),
    ("台北", "&U,BTFw-"), ("~peter/mail/日本語", "~peter/mail/&ZeVnLIqe-"),
])
def test_folder_names_are_encoded_as_rfc_3501_says(name: str, wire: str) -> None:
    assert encode_mailbox(name) == wire


# -- FETCH answers ------------------------------------------------------------------------------

def test_a_fetch_answer_with_literals_and_section_names_is_parsed() -> None:
    data = [
        ((b'1 (UID 7 FLAGS (\\Seen $Label1) BODYSTRUCTURE ("text" "plain" ("charset" "utf-8")'
          b' NIL NIL "7bit" 12 1 NIL NIL NIL NIL) BODY[HEADER.FIELDS (DATE FROM)]<0> {18}'),
         b"From: a@b.com\r\n\r\n"),
        b")",
        b'2 (FLAGS (\\Answered) UID 9 INTERNALDATE "01-Oct-2024 10:00:00 +0200")',
        b'3 (FLAGS (\\Deleted))',  # no UID: not addressable, ignored
        b'1 (UID 7 MODSEQ (12))',  # a later answer for the same message is merged
    ]
    found = parse_fetch(data)
    assert set(found) == {7, 9}
    assert found[7]["FLAGS"] == [Atom("\\Seen"), Atom("$Label1")]
    assert found[7]["BODY[HEADER.FIELDS (DATE FROM)]<0>"] == b"From: a@b.com\r\n\r\n"
    assert found[7]["BODYSTRUCTURE"][2] == [b"charset", b"utf-8"]
    assert found[7]["BODYSTRUCTURE"][3] is None
    assert found[7]["MODSEQ"] == [Atom("12")]
    assert found[9]["INTERNALDATE"] == b"01-Oct-2024 10:00:00 +0200"


@pytest.mark.parametrize("bad", [
    [b'1 (UID 7 FLAGS (\\Seen)'],  # the list never closes
    [b'X (UID 7)'],  # not a message number
    [b'1 (UID 7 "unterminated)'],
    [(b"1 (UID 7 BODY[] no-size-marker", b"x"), b")"],
])
def test_an_unreadable_fetch_answer_is_a_wire_error(bad: list[object]) -> None:
    with pytest.raises(WireError):
        parse_fetch(bad)


# -- structure and text -------------------------------------------------------------------------

def test_rfc_2231_and_rfc_2047_file_names_are_decoded() -> None:
    value = [b"filename*0*", b"utf-8''%E2%82%AC%20", b"filename*1", b"invoice.pdf",
             b"name", b"=?iso-8859-1?q?R=E9sum=E9.pdf?=", b"x*", b"x-unknown''%FF"]
    found = parse.params(value)
    assert found["filename"] == "€ invoice.pdf"
    assert found["name"] == "Résumé.pdf"
    assert found["x"] == "\ufffd"


def test_multipart_sections_are_numbered_and_the_plain_text_is_chosen() -> None:
    structure = [
        [[b"text", b"plain", [b"charset", b"utf-8"], None, None, b"quoted-printable",
          Atom("20"), Atom("1"), None, None, None, None],
         [b"text", b"html", [b"charset", b"utf-8"], None, None, b"7bit", Atom("40"),
          Atom("1"), None, None, None, None],
         b"alternative", [b"boundary", b"x"], None, None],
        [b"application", b"pdf", [b"name", b"a.pdf"], None, None, b"base64", Atom("154"),
         None, [b"attachment", [b"filename", b"b.pdf"]], None, None],
        [b"message", b"rfc822", None, None, None, b"7bit", Atom("300"), None,
         [b"text", b"plain", None, None, None, b"7bit", Atom("3"), Atom("1")], Atom("9"),
         None, None, None, None],
        b"mixed", [b"boundary", b"y"], None, None, None,
    ]
    leaves, part, notes = parse.structure(structure)
    assert leaves is not None and notes == []
    assert [p.section for p in leaves] == ["1.1", "1.2", "2", "3"]
    assert part is not None and part.section == "1.1" and part.type == "text/plain"
    assert parse.attachments(leaves, part) == [
        {"name": "b.pdf", "size": 114, "content_type": "application/pdf"},
        {"name": None, "size": 300, "content_type": "message/rfc822"}]


def test_a_structure_that_is_not_one_becomes_a_note() -> None:
    leaves, part, notes = parse.structure([b"text"])
    assert leaves is None and part is None
    assert notes and notes[0].startswith("the MIME structure could not be read")


@given(st.binary(max_size=300), st.integers(min_value=0, max_value=400))
def test_a_base64_part_cut_anywhere_decodes_to_a_prefix(data: bytes, cut: int) -> None:
    encoded = base64.encodebytes(data)
    assert data.startswith(parse.transfer_decode(encoded[:cut], "base64"))


# No bare CR: in MIME text a CR only comes as part of a CRLF line break, and the encoder
# used as the oracle (quopri) turns "\r\n\n" into two CRLF breaks, which no decoder can undo.
@given(st.text(st.characters(blacklist_characters="\r"), max_size=200),
       st.integers(min_value=0, max_value=900))
def test_a_quoted_printable_part_cut_anywhere_decodes_to_a_prefix(text: str, cut: int) -> None:
    encoded = quopri.encodestring(text.encode())
    whole = parse.transfer_decode(encoded, "quoted-printable")
    assert whole == text.encode()
    assert whole.startswith(parse.transfer_decode(encoded[:cut], "quoted-printable"))


def test_a_multibyte_character_cut_by_the_limit_is_dropped() -> None:
    part = parse.Part(section="1", type="text/plain", params={"charset": "utf-8"})
    assert parse.snippet("Grüße".encode()[:3], part, []) == "Gr"


@pytest.mark.parametrize(("header", "expected"), [
    ("Tue, 01 Oct 2024 10:00:00 +0200", "2024-10-01T08:00:00Z"),
    ("1 Oct 2024 10:00 -0000", "2024-10-01T10:00:00Z"),  # -0000: UTC, zone unknown
    ("Tue, 01 Oct 2024 10:00:00 PDT", "2024-10-01T17:00:00Z"),
    ("Mon, 1 Jan 0999 00:00:00 +0000", "0999-01-01T00:00:00Z"),
    ("Mon, 1 Jan 99 00:00:00 +0000", "1999-01-01T00:00:00Z"),  # RFC 5322 two-digit year
    ("Mon, 1 Jan 0001 00:30:00 +0100", "2000-12-31T23:30:00Z"),
    ("Fri, 31 Dec 9999 23:00:00 -0200", None),  # past year 9999 in UTC
    ("not a date", None), ("", None), (None, None),
])
def test_date_headers_become_utc(header: str | None, expected: str | None) -> None:
    moment = parse.header_date(header)
    assert (parse.iso(moment) if moment else None) == expected


def test_internaldate_is_read_without_the_locale() -> None:
    moment = parse.internal_date(" 1-Oct-2024 10:00:00 +0200")
    assert moment is not None and parse.iso(moment) == "2024-10-01T08:00:00Z"
    assert parse.internal_date("1-Okt-2024 10:00:00 +0200") is None


@given(st.text(min_size=1).filter(lambda s: "\x00" not in s),
       st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=2**32))
def test_record_ids_split_back_into_folder_uidvalidity_and_uid(folder: str, validity: int,
                                                              uid: int) -> None:
    assert parse.split_id(parse.record_id(folder, validity, uid)) == (folder, validity, uid)


# -- XOAUTH2 and the cursor ---------------------------------------------------------------------

def test_the_xoauth2_string_is_exactly_what_google_and_microsoft_document() -> None:
    raw = xoauth2_string("someuser@example.com", "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg")
    assert raw == (b"user=someuser@example.com\x01auth=Bearer "
                   b"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01")
    # The example from Google's XOAUTH2 documentation, once base64 encoded:
    assert base64.b64encode(raw) == (
        b"dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52"
        b"YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==")


def test_a_cursor_survives_json_and_a_foreign_one_is_refused_with_the_fix() -> None:
    cursor = {"folders": {"INBOX": {"uidvalidity": 5, "uidnext": 9, "modseq": 3,
                                    "uids": "1:4,6:8"}}}
    assert ReadState.load(cursor, "here").dump() == cursor
    for bad in ({"folders": []}, {"folders": {"INBOX": {"uidnext": 1}}},
                {"since": "2024-01-01"} | {"folders": {"X": {"uidvalidity": "x"}}},
                {"folders": {}, "pass": {"stage": "weird", "done": []}}):
        with pytest.raises(PermanentError, match="run the flow with --full"):
            ReadState.load(bad, "IMAP server h:993 (connection 'mail')")


# -- settings -----------------------------------------------------------------------------------

def _connector(**settings: object) -> ImapConnector:
    return ImapConnector(ConnectionConfig(name="mail", connector="imap", settings=settings,
                                          base_dir=Path("/etc/liaison")))


@pytest.mark.parametrize(("settings", "expected"), [
    ({"security": "tls"}, "'security' must be one of ssl, starttls, none, got 'tls'"),
    ({"auth": "oauth"}, "'auth' must be one of password, xoauth2, got 'oauth'"),
    ({"port": "imaps"}, "'port' must be a whole number from 1 to 65535, got 'imaps'"),
    ({"port": 0}, "'port' must be a whole number from 1 to 65535, got 0"),
    ({"preview_bytes": -5}, "'preview_bytes' must be a whole number"),
    ({"folders": " , "}, "'folders' names no folder"),
    ({"timeout": "soon"}, "'timeout' must be a number"),
])
def test_bad_settings_are_refused_naming_the_setting(settings: dict[str, object],
                                                     expected: str) -> None:
    with pytest.raises(ConnectorError, match=re.escape(expected)):
        _connector(**settings)


def test_settings_have_sensible_defaults() -> None:
    plain = _connector(security="starttls", folders="INBOX, Sent Items ,INBOX",
                       ca_file="certs/ca.pem")
    assert plain.port == 143 and plain.folders == ["INBOX", "Sent Items"]
    assert plain.ca_file == Path("/etc/liaison/certs/ca.pem")
    tls = _connector()
    assert tls.port == 993 and tls.folders == ["INBOX"] and tls.auth == "password"


@pytest.mark.parametrize(("settings", "missing"), [
    ({"user": "u", "password": "p"}, "host"),
    ({"host": "h", "password": "p"}, "user"),
    ({"host": "h", "user": "u"}, "password"),
    ({"host": "h", "user": "u", "auth": "xoauth2", "password": "p"}, "access_token"),
])
def test_a_missing_setting_is_named_before_connecting(settings: dict[str, object],
                                                      missing: str) -> None:
    health = _connector(**settings).check()
    assert not health.ok and f"setting {missing!r} is missing" in health.message
