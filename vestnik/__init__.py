"""The `vestnik` command: runs the services and does operator tasks (workspaces, tokens)."""
