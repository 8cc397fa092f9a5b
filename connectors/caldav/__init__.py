"""CalDAV connector: tasks (VTODO) in a calendar."""
