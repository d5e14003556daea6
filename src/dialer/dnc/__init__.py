"""Do-not-call lists (000 §6) and the global blacklist (002 §9)."""
