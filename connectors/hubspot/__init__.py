"""HubSpot CRM connector (contacts, companies), its API client and a local sandbox emulator."""
