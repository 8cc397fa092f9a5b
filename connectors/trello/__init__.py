"""Trello connector: boards (projects) and cards (tasks)."""
