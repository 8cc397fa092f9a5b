"""The smtp connector: every record written becomes one email, sent at most once.

Write-only (a mailbox is read with the imap connector). Any entity can be sent: a mapping
turns the canonical record into the native record below, and a template can turn its
fields into the subject and body (mappings/smtp/invoice_reminder.yaml sends a reminder for
an invoice; mappings/smtp/message.yaml sends canonical messages).

Native record (what a mapping writes)
    from        sender: "ana@example.com", "Ana <ana@example.com>" or {address, name};
                default: the `from` setting
    to, cc, bcc recipients: one address, a text of several ("a@x.com, b@y.com"), a list
                of addresses or of {address, name}; Bcc goes to the envelope only
    reply_to    Reply-To (default: the `reply_to` setting)
    subject     the subject (line breaks are folded into spaces)
    text, html  the plain-text and HTML bodies (either or both)
    template    a template name: subject, text and html come from <name>.txt/.html with
                {placeholders} filled from this same record (see templates.py)
    message_id  the Message-ID to use (default: derived, see below)
    in_reply_to, references   threading headers (Message-IDs)
    headers     extra headers {name: value}; the message's own headers cannot be set here
    anything else: data for the template's placeholders (number, due_date, ...)

The external id of a sent record is its Message-ID.

At most once
    SMTP has no idempotency key, and the engine records a write's link only after write()
    returns. So the Message-ID is derived from the record, not from chance: a hash of the
    system, the canonical id (the WriteOp key when there is none) and the template name,
    as <token.liaison@sender-domain>; the same record retried gives the same Message-ID,
    even when its content changed in between. The sent log (sentlog.py) records "sending"
    just before the final "." of the message goes to the server and "sent" when the server
    says 250, both on disk before write() returns:
      - a retry that finds "sent" reports ok and sends nothing (the process died after the
        server accepted but before the engine stored the link);
      - a retry that finds "sending" sends nothing and dead-letters the record, saying the
        message may have arrived and how to settle it (the connection or the process died
        between the "." and the server's answer: RFC 1047's window, which no SMTP client
        can close; we choose at most once, never a duplicate reminder);
      - a definite refusal (4xx/5xx reply, a recipient refused, a drop before the ".")
        removes the mark: nothing was sent, and the record is retried (4xx, connection) or
        dead-lettered (5xx) with the server's words.
    A message to several recipients is sent only when the server accepts every one of them.

Updates and deletes
    An email cannot be changed or recalled: update, archive and delete are reported ok and
    send nothing, ever (a paid-down invoice does not send a second reminder). The engine
    keeps one link per record and system, so a second, different email about the same
    record (a final notice) needs another smtp system (same server, its own name).

Where the sent log lives
    A SQLite file beside the config by default. Every process that delivers to this system
    must see the same log: with workers on several machines, set `sent_log` to a database
    URL (PostgreSQL, MariaDB/MySQL; e.g. the store's own database), where the log is the
    table `liaison_smtp_sent`. Not a SQLite file on a network share: its locks are not
    reliable there. The token is the table's primary key, so two attempts at one message
    cannot both start (the engine also runs one deliverer per target at a time).

Errors (client.py is the one translation boundary)
    4xx, dropped connections, timeouts -> retried; 5xx -> the record is dead-lettered with
    the server's reply; a refused login, an untrusted certificate or a server without
    STARTTLS fails the whole call (the run fails, nothing is dead-lettered, deliveries stay
    owed). Records that cannot become an email (no recipient, a bad address, a line break
    in an address or header, a template placeholder without a value, too big for
    max_message_bytes or the server's SIZE) are dead-lettered with the field and the reason.
"""
