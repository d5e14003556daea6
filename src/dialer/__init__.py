"""Dialer: an open-source outbound call-centre platform."""
