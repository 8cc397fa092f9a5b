"""IMAP connector: mailbox folders as canonical messages (read-only, incremental).

Modules: connector.py (settings, the contract), client.py (the IMAP session and its one
error boundary), reader.py (folders -> pages, the cursor), parse.py (a message's structure
and headers -> native record), wire.py (IMAP answers, UID sets, folder names).
"""
