"""The browser fixtures of tests/web (the real application on a free port, Debian's chromium) for the reports."""

from tests.web.conftest import browser, context, live_server, page, start_server

__all__ = ["browser", "context", "live_server", "page", "start_server"]
