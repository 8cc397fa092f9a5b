"""Laws of composing an email (no server needed): what goes in comes back out of a standard
parser, and nothing in a value can add a header."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from connectors.smtp.addresses import parse_address
from connectors.smtp.compose import Defaults, compose, message_token
from connectors.smtp.templates import parse_template

HEADERS = {"from", "to", "subject", "date", "message-id", "mime-version", "content-type",
           "content-transfer-encoding"}
DEFAULTS = Defaults(sender="accounts@example.com")
_text = st.text(st.characters(codec="utf-8"), max_size=200)  # any text but lone surrogates


def parsed(record: dict[str, Any]) -> EmailMessage:
    out = compose(record, token="t0", defaults=DEFAULTS, templates=None)
    msg = email.message_from_bytes(out.data, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


@settings(max_examples=300, deadline=None)
@given(_text.filter(lambda s: s.replace("\x00", " ").split()))  # NULs become spaces
@example("Invoice\r\nBcc: victim@example.com")
@example("=?utf-8?q?not_really?= \u2028 tab\there")
def test_any_subject_comes_back_folded_to_one_line_and_adds_no_header(subject: str) -> None:
    msg = parsed({"to": "bob@example.com", "subject": subject, "text": "x"})
    assert {k.lower() for k in msg} == HEADERS
    assert " ".join(str(msg["Subject"]).split()) == " ".join(
        subject.replace("\x00", " ").split())


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60))
@example('Müller, "Jürgen" <evil@example.com>')
def test_any_display_name_round_trips(name: str) -> None:
    """Compared without whitespace: Python's address parser puts a space between two
    adjacent encoded words of a name, which RFC 2047 (6.2) says to drop; the generated
    header is right. A name holding a literal encoded word ("=?utf-8?q?x?=") is decoded by
    the email package when the header is built, so it is left out of the law."""
    assume("=?" not in name)
    msg = parsed({"to": {"address": "bob@example.com", "name": name}, "subject": "s",
                  "text": "x"})
    mailbox, = msg["To"].addresses
    assert mailbox.addr_spec == "bob@example.com"
    assert mailbox.display_name.split() == name.split() or \
        "".join(mailbox.display_name.split()) == "".join(name.split())


_line = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                              blacklist_characters="\x85"), max_size=1200)


@settings(max_examples=200, deadline=None)
@given(st.lists(_line, max_size=8))
@example([".", "..", ".hidden", "From here", "x" * 3000])
def test_any_body_round_trips(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    msg = parsed({"to": "bob@example.com", "subject": "s", "text": text})
    part = msg.get_body(("plain",))
    assert part is not None
    assert part.get_content().replace("\r\n", "\n") == text


_atom = st.text(st.sampled_from("abcxyz0129!#$%&'*+/=?^_`{|}~-"), min_size=1, max_size=10)
_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)


@given(st.lists(_atom, min_size=1, max_size=3), st.lists(_label, min_size=2, max_size=4))
def test_a_valid_address_parses_to_itself(atoms: list[str], labels: list[str]) -> None:
    address = f"{'.'.join(atoms)}@{'.'.join(labels)}"
    assert parse_address(address).address == address
    assert parse_address(f"Some One <{address}>") == parse_address(address, "Some One")


@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=20))
def test_a_message_token_is_stable_and_names_one_record(system: str, record: str,
                                                        template: str) -> None:
    token = message_token(system, record, template)
    assert token == message_token(system, record, template)
    assert token != message_token(system, record + "x", template)
    assert len(token) == 32 and token.isalnum()


@given(_text)
def test_literal_template_text_renders_as_itself(text: str) -> None:
    escaped = text.replace("{", "{{").replace("}", "}}")
    template = parse_template("t", f"Subject: s\n\n{escaped}", "t.txt")
    _, body, _ = template.render({})
    assert body == text.replace("\r\n", "\n")


@given(st.dictionaries(st.from_regex(r"[a-z]{1,8}", fullmatch=True), _text, min_size=1))
def test_placeholders_render_their_values_verbatim(values: dict[str, str]) -> None:
    body = "|".join(f"{{{k}?}}" for k in values)
    _, text, _ = parse_template("t", body, "t.txt").render(values)
    assert text == "|".join(values.values())
