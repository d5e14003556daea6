"""Translations of the browser UI: Russian (the default) and English.

Catalogues are flat JSON files ``locales/<lang>.json`` (plus one per area, ``locales/<area>.<lang>.json``)
mapping a message id (``"nav.operator"``) to its text; ``{name}`` placeholders are filled from keyword arguments.
Templates call ``t("msgid", name=...)`` (``_`` is the same function); JavaScript gets the whole catalogue of the
page's language as ``window.I18N`` and uses ``t()`` from ``/static/app.js``. Both catalogues must have the same
keys (a test checks it). A missing id falls back to English, then to the id itself, so a forgotten string is
visible rather than an error.

The language of a page is the ``lang`` cookie (set by ``GET /lang/{code}``), else Russian. The API answers in
:func:`api_language`: the cookie, else (for integrations) ``Accept-Language``, else Russian.
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


#: The browser session's cookie (auth/endpoints.py): a request carrying it comes from the panels.
_SESSION_COOKIE = "dialer_session"


def accepted_language(header: str) -> str | None:
    """The first of :data:`LANGUAGES` an ``Accept-Language`` header asks for, by quality (``en-US,en;q=0.9``
    gives ``en``); ``None`` when it names none of them."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _, rest = item.strip().partition(";")
        quality = 1.0
        for param in rest.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        base = tag.strip().lower().split("-")[0]
        if base in LANGUAGES and quality > 0:
            ranked.append((-quality, position, base))
    return min(ranked)[2] if ranked else None


def api_language(request: Request) -> str:
    """The language the API answers a request in (problem details, labels): the ``lang`` cookie; else, for a
    request from the panels (a session cookie), the panels' default -- the page is Russian whatever the browser's
    own language, and its messages must match it; else ``Accept-Language`` (integrations that want English send
    ``Accept-Language: en``); else Russian."""
    lang = request.cookies.get(COOKIE, "")
    if lang in LANGUAGES:
        return lang
    if request.cookies.get(_SESSION_COOKIE):
        return DEFAULT
    return accepted_language(request.headers.get("accept-language", "")) or DEFAULT
