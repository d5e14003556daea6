"""Translations of the browser UI: Russian (the default) and English.

Catalogues are flat JSON files ``locales/<lang>.json`` (plus one per area, ``locales/<area>.<lang>.json``)
mapping a message id (``"nav.operator"``) to its text; ``{name}`` placeholders are filled from keyword arguments.
Templates call ``t("msgid", name=...)`` (``_`` is the same function); JavaScript gets the whole catalogue of the
page's language as ``window.I18N`` and uses ``t()`` from ``/static/app.js``. Both catalogues must have the same
keys (a test checks it). A missing id falls back to English, then to the id itself, so a forgotten string is
visible rather than an error.

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
    """The message catalogue of ``lang`` (read once per process): ``locales/<lang>.json`` merged with the area
    catalogues ``locales/<area>.<lang>.json`` (``operator.ru.json``, ``admin.en.json`` ...), so each part of the UI
    keeps its strings in a file of its own. An id defined twice is an error."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    folder = resources.files("dialer.web").joinpath("locales")
    names = sorted(f.name for f in folder.iterdir() if f.name.endswith(f".{lang}.json"))
    data: dict[str, str] = {}
    for name in [f"{lang}.json", *names]:
        part: dict[str, str] = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
        if twice := sorted(set(part) & set(data)):
            raise ValueError(f"locales/{name} defines again {', '.join(twice[:5])}")
        data.update(part)
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
