"""Operators, skills and operator pools (000 §7, 001)."""
