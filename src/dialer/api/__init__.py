"""Shared web plumbing: problem details, request sessions, permission checks, generic CRUD."""
