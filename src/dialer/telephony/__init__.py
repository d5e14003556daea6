"""Telephony: the driver interface, the simulated driver and its traffic model, the SIP driver."""
