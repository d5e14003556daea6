"""What the engine, the drivers and the web application share, depending on nothing else of the product.

* :mod:`dialer.core.clock` — injectable time (system and virtual), so tests move a clock instead of sleeping;
* :mod:`dialer.core.fsm` — state machines as transition tables (calls, operators, campaigns, SIP);
* :mod:`dialer.core.tasks` — background tasks held until done, started only after the transaction that asked
  for them commits.

Telephony drivers import only this package from the product, so the SIP stack could become a library of its own.
"""
