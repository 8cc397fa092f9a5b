"""Jira Cloud REST v3 connector: projects and issues."""
