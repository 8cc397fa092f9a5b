"""Pipedrive CRM connector (persons, organizations, deals; API v2), its client and a sandbox."""
