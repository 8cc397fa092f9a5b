"""Xero Accounting connector: contacts, invoices and payments (OAuth2, rotating refresh tokens)."""
