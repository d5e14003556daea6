"""Time zones with their phone codes (000 §13.1) and the national numbering registry."""
