"""The dialing engine: pacing, selection, state machines and the long-lived runner.

Nothing here imports the web framework; time comes from an injected :class:`~dialer.core.clock.Clock`
so the same code runs in real time (``dialer run``, the demo) and in virtual time (benchmarks, tests).
"""
