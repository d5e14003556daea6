"""The operator's workplace, the supervisor's actions on operators and live monitoring.

The web process never touches the engine's memory: it reads what the engine recorded and sends commands through
the database (``engine_commands`` + NOTIFY), so the engine may run in another process.
"""
