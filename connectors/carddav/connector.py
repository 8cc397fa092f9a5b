"""The CardDAV connector: the contacts of one address book (RFC 6352), as vCards.

Native records and how vCard text is read and written: vcard.py. Reading (sync-token or
the ETag fallback), writing (PUT with If-None-Match / If-Match), concurrent edits and the
settings: connectors.dav (base.py, reading.py). Deleted cards come as tombstones
{"href", "deleted": true}. Address books have no archive.
"""

from __future__ import annotations

from typing import ClassVar

from connectors.carddav import vcard
from connectors.dav import xml
from connectors.dav.base import BATCH_MAX, SETTINGS, DavConnector, Kind
from hub.connector import Capabilities, EntitySupport

ADDRESSBOOK = xml.clark(xml.CARDDAV, "addressbook")


class CardDavConnector(DavConnector):
    """Contacts in a CardDAV address book (Radicale, Nextcloud, Baikal, iCloud, Fastmail)."""

    name: ClassVar[str] = "carddav"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={"contact": EntitySupport(object="contacts", incremental=True, deletes=True)},
        batch_size=BATCH_MAX,
        settings={"base_url": "URL of the address book, e.g. "
                              "https://dav.example.com/ana/contacts/", **SETTINGS},
        secret_settings=frozenset({"password"}),
    )
    kind: ClassVar[Kind] = Kind(
        label="CardDAV", object="contacts", collection="address book", extension=".vcf",
        content_type="text/vcard; charset=utf-8", resource_type=ADDRESSBOOK,
        report=xml.clark(xml.CARDDAV, "addressbook-multiget"),
        data=xml.clark(xml.CARDDAV, "address-data"),
        mkcol=xml.mkcol([ADDRESSBOOK]),
        parse=vcard.parse, create=vcard.create, merge=vcard.merge,
    )
