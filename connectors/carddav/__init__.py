"""CardDAV connector: contacts in an address book (vCard 3.0 and 4.0)."""
