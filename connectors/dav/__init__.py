"""WebDAV plumbing shared by the CardDAV and CalDAV connectors.

    xml.py       request bodies and the multistatus parser (defusedxml: answers are untrusted)
    client.py    the HTTP calls (PROPFIND, REPORT, GET, PUT, DELETE, MKCOL) over hub.http; the
                 one place where WebDAV answers become hub.errors
    content.py   content lines of vCard/iCalendar text: unfold, fold, escape, replace
    records.py   the __error__ record of a resource that cannot be read (dead-lettered)
    reading.py   the read loop: sync-collection (RFC 6578) or the ETag fallback, with cursors
    baseline.py  what a connector instance saw, to catch edits made by others before a write
    base.py      DavConnector: settings, check, read, write (PUT with If-Match/If-None-Match)
"""
