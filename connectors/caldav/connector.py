"""The CalDAV connector: the tasks (VTODO) of one calendar (RFC 4791).

Native records and how iCalendar text is read and written: vtodo.py. Reading (sync-token
or the ETag fallback), writing (PUT with If-None-Match / If-Match), concurrent edits and the
settings: connectors.dav (base.py, reading.py). Resources without a VTODO (events in a
mixed calendar) are not read. Deleted tasks come as tombstones {"href", "deleted": true};
archiving a task sets STATUS:CANCELLED.
"""

from __future__ import annotations

from typing import ClassVar

from connectors.caldav import vtodo
from connectors.dav import xml
from connectors.dav.base import BATCH_MAX, SETTINGS, DavConnector, Kind
from hub.connector import Capabilities, EntitySupport

CALENDAR = xml.clark(xml.CALDAV, "calendar")


def archive(text: str, href: str) -> str | None:
    """An archived task is a cancelled one (the text unchanged if it already is)."""
    return vtodo.merge(text, {"status": "CANCELLED"}, href)


class CalDavConnector(DavConnector):
    """Tasks in a CalDAV calendar (Radicale, Nextcloud, Baikal, iCloud, Fastmail)."""

    name: ClassVar[str] = "caldav"
    capabilities: ClassVar[Capabilities] = Capabilities(
        entities={"task": EntitySupport(object="tasks", incremental=True, deletes=True,
                                        archive=True)},
        batch_size=BATCH_MAX,
        settings={"base_url": "URL of the calendar (or task list), e.g. "
                              "https://dav.example.com/ana/tasks/", **SETTINGS},
        secret_settings=frozenset({"password"}),
    )
    kind: ClassVar[Kind] = Kind(
        label="CalDAV", object="tasks", collection="calendar", extension=".ics",
        content_type="text/calendar; charset=utf-8; component=VTODO", resource_type=CALENDAR,
        report=xml.clark(xml.CALDAV, "calendar-multiget"),
        data=xml.clark(xml.CALDAV, "calendar-data"),
        mkcol=xml.mkcol([CALENDAR], {xml.clark(xml.CALDAV, "supported-calendar-component-set"):
                                     ["VTODO"]}),
        parse=vtodo.parse, create=vtodo.create, merge=vtodo.merge, archive=archive,
    )
