"""Real servers on loopback that tests start and stop themselves (Dovecot IMAP, ...)."""
