"""Phone codes as comparable keys: prefixes and number ranges on one scale.

Numbers of different lengths are compared by their digits right-padded to 15 (the E.164 maximum):
a prefix "+7912" covers keys 791200000000000..791299999999999, the registry range
+79120000000..+79129999999 covers the same keys, and a number +79123456789 has the key
791234567890000. So a prefix and a range are the same kind of row, and the most specific row
containing a number's key (the narrowest range, the user's own rows before the registry's) wins.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

WIDTH = 15
_DIGITS = re.compile(r"^\+?(\d{1,15})$")


def _digits(value: str, field: str) -> str:
    m = _DIGITS.match(re.sub(r"[\s\-().]", "", value))
    if not m:
        raise ValueError(f"{field}: '{value}' is not an international number or prefix (digits, optional +)")
    return m[1]


def number_key(e164: str) -> int:
    return int(_digits(e164, "number").ljust(WIDTH, "0"))


def prefix_range(prefix: str) -> tuple[int, int]:
    d = _digits(prefix, "prefix")
    return int(d.ljust(WIDTH, "0")), int(d.ljust(WIDTH, "9"))


def number_range(first: str, last: str) -> tuple[int, int]:
    lo, hi = _digits(first, "range_from"), _digits(last, "range_to")
    if len(lo) != len(hi):
        raise ValueError("range_from and range_to must have the same number of digits")
    lo_key, hi_key = int(lo.ljust(WIDTH, "0")), int(hi.ljust(WIDTH, "9"))
    if lo_key > hi_key:
        raise ValueError("range_from must not be greater than range_to")
    return lo_key, hi_key


def key_to_text(key: int, *, digits: int) -> str:
    return "+" + str(key).rjust(WIDTH, "0")[:digits]


@dataclass(frozen=True, slots=True)
class CodeInfo:
    tz: str | None
    region: str | None
    carrier: str | None
    manual: bool


def merge(matches: Iterable[CodeInfo]) -> CodeInfo | None:
    """One answer from the rows containing a number, most specific first (the user's rows, then the registry's).

    Each field comes from the first row that has it: a user's prefix that only sets the zone keeps
    the registry's region and carrier for the numbers under it. ``manual`` tells whether the zone (or,
    without any zone, the first row) is the user's.
    """
    first: CodeInfo | None = None
    tz: CodeInfo | None = None
    region = carrier = None
    for info in matches:
        if first is None:
            first = info
        if tz is None and info.tz:
            tz = info
        region = region or info.region
        carrier = carrier or info.carrier
        if tz is not None and region and carrier:
            break
    if first is None:
        return None
    if tz is first and region == first.region and carrier == first.carrier:
        return first
    source = tz or first
    return CodeInfo(source.tz, region, carrier, source.manual)


class CodeTable:
    """In-memory lookup of phone-code rows, for hot paths (imports, the engine).

    The registry's ranges do not overlap, so one bisect finds the only candidate. The user's own
    rows (few, and they may nest: "+7" inside nothing, "+7912" inside "+79") are grouped by span;
    in each group a bisect plus a short scan back over rows that could still reach the key finds
    the candidates. The narrowest containing user row wins, then the registry's -- field by field
    (:func:`merge`).
    """

    def __init__(self, rows: list[tuple[int, int, CodeInfo]]) -> None:
        registry = sorted((r for r in rows if not r[2].manual), key=lambda r: r[0])
        self._reg_starts = [r[0] for r in registry]
        self._reg_ends = [r[1] for r in registry]
        self._reg_infos = [r[2] for r in registry]
        groups: dict[int, list[tuple[int, int, CodeInfo]]] = {}
        for row in rows:
            if row[2].manual:
                groups.setdefault(row[1] - row[0], []).append(row)
        self._manual = [(span, [r[0] for r in g], g)
                        for span, g in sorted((s, sorted(g, key=lambda r: r[0])) for s, g in groups.items())]
        self._size = len(rows)

    def __len__(self) -> int:
        return self._size

    def _matches(self, key: int) -> Iterator[CodeInfo]:
        for span, starts, group in self._manual:  # narrowest span first
            i = bisect.bisect_right(starts, key) - 1
            while i >= 0 and key - group[i][0] <= span:
                if group[i][1] >= key:
                    yield group[i][2]
                i -= 1
        i = bisect.bisect_right(self._reg_starts, key) - 1
        if i >= 0 and self._reg_ends[i] >= key:
            yield self._reg_infos[i]

    def lookup(self, key: int) -> CodeInfo | None:
        return merge(self._matches(key))
