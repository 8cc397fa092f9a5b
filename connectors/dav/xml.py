"""WebDAV request bodies and the multistatus (207) parser.

Answers are parsed with defusedxml: a server (or whatever answers at its address) must not
be able to expand entities or fetch external ones through us. Element names are handled in
Clark notation ("{DAV:}getetag"), so any namespace prefix the server picks works.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # building only: parsing goes through defusedxml
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit

import defusedxml.ElementTree as SafeET

DAV = "DAV:"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
CALDAV = "urn:ietf:params:xml:ns:caldav"
_STATUS = re.compile(r"^\S+\s+(\d{3})")
_HREF_SAFE = "/:@!$&'()*+,;=~"


def clark(ns: str, name: str) -> str:
    """The Clark-notation name of an element: {namespace}name."""
    return f"{{{ns}}}{name}"


GETETAG = clark(DAV, "getetag")
RESOURCETYPE = clark(DAV, "resourcetype")
SYNC_TOKEN = clark(DAV, "sync-token")
SUPPORTED_REPORTS = clark(DAV, "supported-report-set")
SYNC_COLLECTION = clark(DAV, "sync-collection")
COLLECTION = clark(DAV, "collection")


def normalize_href(href: str) -> str:
    """The path of an href (full URLs lose scheme and host), percent-encoded one way only."""
    path = urlsplit(href.strip()).path or "/"
    return quote(unquote(path), safe=_HREF_SAFE)


def status_code(text: str | None) -> int | None:
    """200 from "HTTP/1.1 200 OK"; None when absent or unreadable."""
    found = _STATUS.match(text.strip()) if text else None
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class DavResponse:
    """One <response> of a multistatus: its href, status and the properties found (200)."""

    href: str
    status: int | None  # the response-level status (404: a member removed, in sync-collection)
    props: Mapping[str, ET.Element] = field(default_factory=dict)

    @property
    def etag(self) -> str | None:
        """The getetag value, as the server wrote it (quotes kept: it goes back in If-Match)."""
        return self.text(GETETAG)

    def text(self, tag: str) -> str | None:
        """The text of a found property (None when the server did not return it)."""
        element = self.props.get(tag)
        if element is None or element.text is None:
            return None
        return element.text.strip() if tag == GETETAG else element.text

    def has(self, tag: str, child: str) -> bool:
        """Whether property `tag` holds an element named `child` (resourcetype, reports)."""
        element = self.props.get(tag)
        return element is not None and element.find(f".//{child}") is not None


@dataclass(frozen=True)
class MultiStatus:
    """A parsed 207 answer."""

    responses: list[DavResponse]
    sync_token: str | None = None


def parse_multistatus(body: bytes) -> MultiStatus:
    """Parse a 207 body; ValueError (with the parser's reason) when it is not usable XML."""
    try:
        root = SafeET.fromstring(body)
    except Exception as exc:  # noqa: BLE001 - ParseError and defusedxml's refusals alike
        raise ValueError(f"not valid XML ({type(exc).__name__}: {exc})") from None
    if root.tag != clark(DAV, "multistatus"):
        raise ValueError(f"expected a DAV:multistatus document, got {root.tag}")
    responses = []
    for node in root.findall(clark(DAV, "response")):
        href_node = node.find(clark(DAV, "href"))
        if href_node is None or not (href_node.text or "").strip():
            continue
        props: dict[str, ET.Element] = {}
        for propstat in node.findall(clark(DAV, "propstat")):
            code = status_code(propstat.findtext(clark(DAV, "status")))
            prop = propstat.find(clark(DAV, "prop"))
            if prop is None or (code is not None and not 200 <= code < 300):
                continue
            for element in prop:
                props[element.tag] = element
        responses.append(DavResponse(normalize_href(href_node.text or ""),
                                     status_code(node.findtext(clark(DAV, "status"))), props))
    token = root.findtext(SYNC_TOKEN)
    return MultiStatus(responses, token.strip() if token else None)


# -- request bodies ---------------------------------------------------------------------------


def _xml(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="utf-8"?>' + body


def _prop(parent: ET.Element, names: Iterable[str]) -> None:
    prop = ET.SubElement(parent, clark(DAV, "prop"))
    for name in names:
        ET.SubElement(prop, name)


def propfind(names: Iterable[str]) -> bytes:
    """A PROPFIND body asking for the named properties."""
    root = ET.Element(clark(DAV, "propfind"))
    _prop(root, names)
    return _xml(root)


def sync_collection(token: str, props: Iterable[str]) -> bytes:
    """An RFC 6578 sync-collection REPORT body; token "" asks for every member."""
    root = ET.Element(clark(DAV, "sync-collection"))
    ET.SubElement(root, SYNC_TOKEN).text = token
    ET.SubElement(root, clark(DAV, "sync-level")).text = "1"
    _prop(root, props)
    return _xml(root)


def multiget(report: str, data: str, hrefs: Iterable[str]) -> bytes:
    """An addressbook-multiget or calendar-multiget REPORT body for the given hrefs."""
    root = ET.Element(report)
    _prop(root, (GETETAG, data))
    for href in hrefs:
        ET.SubElement(root, clark(DAV, "href")).text = href
    return _xml(root)


def mkcol(resource_types: Iterable[str], extra: Mapping[str, Iterable[str]] | None = None
          ) -> bytes:
    """An extended MKCOL (RFC 5689) body creating a collection of the given resource types."""
    root = ET.Element(clark(DAV, "mkcol"))
    prop = ET.SubElement(ET.SubElement(root, clark(DAV, "set")), clark(DAV, "prop"))
    kinds = ET.SubElement(prop, RESOURCETYPE)
    ET.SubElement(kinds, COLLECTION)
    for kind in resource_types:
        ET.SubElement(kinds, kind)
    for name, components in (extra or {}).items():
        holder = ET.SubElement(prop, name)
        for component in components:
            ET.SubElement(holder, clark(CALDAV, "comp"), {"name": component})
    return _xml(root)
