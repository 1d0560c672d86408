"""The `taskyard` command: the entry point that starts each kind of process."""
