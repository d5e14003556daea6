"""The audit log: every change recorded with who, when, what and old/new values."""
