"""QuickBooks Online Accounting connector."""
