"""Identity in the schema: the viewer, users, sessions, API tokens and the audit log."""
