"""Reports and analytics: the six outcome categories, operators' time, lists' progress (001, 002 §6, 003 §8.4)."""
