"""Translations of the browser UI: Russian (the default) and English.

Catalogues are flat JSON files ``locales/<lang>.json`` mapping a message id (``"nav.operator"``) to its text;
``{name}`` placeholders are filled from keyword arguments. Templates call ``t("msgid", name=...)`` (``_`` is the
same function); JavaScript gets the whole catalogue of the page's language as ``window.I18N`` and uses ``t()`` from
``/static/app.js``. Both catalogues must have the same keys (a test checks it). A missing id falls back to English,
then to the id itself, so a forgotten string is visible rather than an error.

The language is the ``lang`` cookie (set by ``GET /lang/{code}``), else Russian.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

from starlette.requests import Request

LANGUAGES: tuple[str, ...] = ("ru", "en")
DEFAULT = "ru"
COOKIE = "lang"

Translator = Callable[..., str]


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The message catalogue of ``lang`` (read once per process)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    text = resources.files("dialer.web").joinpath("locales", f"{lang}.json").read_text(encoding="utf-8")
    data: dict[str, str] = json.loads(text)
    return data


def translate(lang: str, msgid: str, /, **params: Any) -> str:
    text = catalogue(lang).get(msgid) or catalogue("en").get(msgid) or msgid
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def translator(lang: str) -> Translator:
    """``t(msgid, **params)`` bound to one language."""

    def t(msgid: str, /, **params: Any) -> str:
        return translate(lang, msgid, **params)

    return t


def language_of(request: Request) -> str:
    lang = request.cookies.get(COOKIE, "")
    return lang if lang in LANGUAGES else DEFAULT
