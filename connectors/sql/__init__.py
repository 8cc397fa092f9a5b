"""The sql connector: any table of a PostgreSQL or MariaDB/MySQL database as a system.

For the legacy ERP or the in-house tool whose only interface is its database.

    systems:
      erp:
        category: other
        connection:
          connector: sql
          url: ${ERP_DB_URL}     # postgresql+psycopg://user:pw@host/db, mysql+pymysql://...
          timezone: Europe/Berlin   # what naive DATETIME columns mean (default UTC)
          tables:
            contacts: {table: customers, key: id, updated_at: modified_at}
            companies: {table: firms, schema: erp, soft_delete: deleted_at}

Objects and tables (settings.py)
    A mapping's `object` names an entry of `tables` (an entity name stands for its default
    object: `contact` -> `contacts`), which says the table, its schema, key columns
    (default: the primary key), the updated-at column, a soft-delete column and match
    columns. An object not listed is the table of that name. Default objects: companies,
    contacts, deals, invoices, payments, products, projects, tasks, messages.

Names are checked against the database (schema.py)
    Every configured name must be one the database lists (tables, views, columns), exactly;
    otherwise the connection's check() and its first read or write fail with a message
    naming the system, the table, the unknown name, the closest real one and the real
    ones. No SQL is ever built from text: statements are SQLAlchemy Core over the
    reflected table (quoted identifiers, bound values). The key must be unique.

Reading (reading.py, values.py)
    A record is the row: column name -> value, converted to JSON-friendly values (decimals
    and timestamps as text, RFC 3339 UTC; binary as base64). A composite key also gives
    `__key__`, the external id as a JSON list (map `id: __key__`). Keyset pages in key
    order (full) or (updated_at, key) order (incremental), never OFFSET. Deletions: a full
    refresh lets the engine see rows that are gone; a soft-delete column is read like any
    column, for the mapping's `deleted:` condition.

Writing (writing.py, dialects.py)
    Batches of up to 500 ops in one transaction: upserts (ON CONFLICT / ON DUPLICATE KEY),
    inserts returning generated keys, updates, soft-delete archives, deletes. A row the
    database refuses fails alone, with the table, the key and the rule it broke in words;
    the rest of the batch lands. A written column the table does not have fails that
    record with the table's real columns listed.

Errors (errors.py)
    Connection refused, timeouts, deadlocks -> TransientError (retried). Wrong password,
    unknown database or table, missing privilege -> PermanentError saying what to fix. The
    URL's password never appears in a message.
"""

from connectors.sql.connector import SqlConnector

__all__ = ["SqlConnector"]
