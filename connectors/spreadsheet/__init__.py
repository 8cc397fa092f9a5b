"""The spreadsheet connector: CSV files in a folder, or sheets of one .xlsx workbook.

Settings: `path` (a folder holding `<object>.csv` files, or an `.xlsx` workbook holding one
sheet per object; relative to the config file), `key` (the id column, default `id`),
`modified_column` (optional), `delimiter` (CSV, default `,`), `encoding` (CSV, default
utf-8; a UTF-8 byte order mark is accepted and kept).

Objects are companies, contacts, deals, invoices, payments, products, projects, tasks and
messages; any other plain name (`suppliers`) works too, for a custom mapping.

Reading
    The first row is the header (names are stripped). Each later row becomes a dict of
    column -> text. An empty cell is an ABSENT key (never ""), so a mapping sees "no value"
    and `required`/`default` behave. Blank rows are skipped. Workbook cells become text the
    same way every time (see xlsxfiles). A missing file or sheet reads as no records; check()
    reports a missing folder or workbook.

    Rows that cannot be read are not dropped: they come back as records holding only
    `__error__` (a message naming file:line and the problem) and `__raw__` (the row's cells,
    undecodable bytes shown as \\xNN). The engine dead-letters them with that reason. Such
    rows are: more non-empty cells than header columns, bytes that are not valid in the
    configured encoding, an empty key cell, a key already used on an earlier line. Keys
    starting with "__" are reserved for these markers. A header that cannot be used (a
    duplicate column name, no key column) fails the read of that object (PermanentError).

Paging and cursors
    `page_size` records per page. Mid-read cursors are {"row": rows scanned} plus "since"
    (the incremental filter) and "seen" (newest modified value so far). The last page's
    cursor is {"since": newest modified value} when `modified_column` is set, else None.
    Incremental reads return rows whose modified value is at or after "since" (ISO 8601
    values compare as instants, others as text; rows with an empty modified cell are always
    returned, we cannot tell). WITHOUT `modified_column` an incremental read is a full read.
    Deletions are not reported: a deleted row is simply absent from a full read, which is
    how the engine detects it.

Writing
    Upsert by the key column. create: the key comes from the record (the mapping's `id`),
    else from an existing row whose column named like a match key holds the match value,
    else is derived from the record's canonical id (or, without one, the op's idempotency
    key) as a uuid5 hex, so a create repeated after a crash updates the same row. update/archive need external_id (= key value); archive sets the
    `archived` column to "true" (adding the column when missing); delete removes the row
    (deleting an absent row succeeds). New columns are appended to the header. With a
    `modified_column`, a create/update that does not set it is stamped with the current UTC
    time. Each write() rewrites the file once, atomically (temp file in the same folder,
    then os.replace), under a folder lock (`.liaison.lock`), so readers never see half a
    file and two workers never lose each other's rows. The external id is the key value.
"""

from connectors.spreadsheet.connector import SpreadsheetConnector

__all__ = ["SpreadsheetConnector"]
