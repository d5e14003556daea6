"""The browser fixtures of tests/web (a live server, chromium through Playwright) for the integration pages."""

from tests.web.conftest import browser, context, live_server, page, start_server

__all__ = ["browser", "context", "live_server", "page", "start_server"]
