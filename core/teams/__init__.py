"""Workspaces and their people: members, roles, groups, tags and API tokens."""
