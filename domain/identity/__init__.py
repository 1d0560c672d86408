"""Identity and access: users, sessions, API tokens, roles and the audit trail."""
