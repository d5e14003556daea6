"""Phone number normalisation (raw text -> E.164) and description (E.164 -> region, carrier, zones).

The two halves are deliberately separate:

* :func:`to_e164` is the cheap step the contact importer runs on every row.  Plain Russian numbers
  ("89123456789", "+7 (912) 345-67-89", "9123456789") take a fast path that never calls
  ``phonenumbers.parse``; it checks validity against the same ``phonenumbers`` metadata patterns and
  yields exactly the E.164 the full parser would.  Everything else goes through ``phonenumbers``.
* :func:`describe` looks up geocoder / carrier / time-zone data.  For +7 numbers the result only depends
  on the first few national digits, so it is cached per prefix and costs a dict lookup once warm.

:func:`normalize` does both and is the convenient one-number API.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType, ValidationResult
from phonenumbers import carrier as pn_carrier
from phonenumbers import geocoder as pn_geocoder
from phonenumbers import timezone as pn_timezone

__all__ = [
    "InvalidPhone",
    "PhoneInfo",
    "describe",
    "normalize",
    "to_e164",
    "to_e164_with_extension",
]


class InvalidPhone(ValueError):
    """The input cannot be turned into a valid phone number.

    ``reason`` is a short human-readable explanation in English (also the exception message), suitable
    for showing next to a rejected import row.  ``raw`` is the offending input, when known.
    """

    def __init__(self, reason: str, raw: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


@dataclass(frozen=True, slots=True)
class PhoneInfo:
    """Everything we know about one phone number.

    ``region`` is the geocoder's Russian description ("Москва", "Республика Бурятия") or ``None`` when
    the number can only be placed at country level (mobile numbers, toll-free, ...).  ``timezones`` are
    IANA names; ``tz_uncertain`` is true when more than one zone is possible.  ``extension`` is only
    filled by :func:`normalize` when the raw text carried one ("доб. 12").
    """

    e164: str
    region: str | None
    country: str
    carrier: str | None
    timezones: tuple[str, ...]
    number_type: str
    tz_uncertain: bool
    extension: str | None = None


# ---------------------------------------------------------------------------------------------------
# Fast path for +7 numbers
# ---------------------------------------------------------------------------------------------------

_TYPE_ATTRS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
# A +7 national significant number always has 10 digits in the forms the fast path accepts.
_CC7_LENGTH = 10


def _pattern_for_length(descs: list[object], length: int) -> re.Pattern[str] | None:
    """One regex accepting ``length``-digit numbers matched by any of the PhoneNumberDescs.

    Mirrors phonenumbers._is_number_matching_desc: a desc with possible lengths only applies to those
    lengths; then its pattern must match the whole number.  Alternation == "any desc matches".
    """
    parts = []
    for desc in descs:
        pattern = getattr(desc, "national_number_pattern", None)
        lengths = getattr(desc, "possible_length", None) or ()
        if pattern and (not lengths or length in lengths):
            parts.append(f"(?:{pattern})")
    return re.compile("|".join(parts)) if parts else None


def _build_cc7_rules() -> tuple[tuple[re.Pattern[str] | None, re.Pattern[str] | None, re.Pattern[str] | None], ...]:
    """Per region sharing +7 (RU, KZ): leading-digits regex, general pattern, any-type pattern.

    Built from the installed phonenumbers metadata rather than hard-coded, so a phonenumbers upgrade
    that changes numbering plans is picked up automatically (tests compare against the full parser).
    """
    rules = []
    for region in phonenumbers.region_codes_for_country_code(7):
        md = PhoneMetadata.metadata_for_region(region)
        if md is None:
            continue
        leading = re.compile(md.leading_digits) if md.leading_digits is not None else None
        general = _pattern_for_length([md.general_desc], _CC7_LENGTH)
        types = _pattern_for_length([getattr(md, a, None) for a in _TYPE_ATTRS], _CC7_LENGTH)
        rules.append((leading, general, types))
    return tuple(rules)


_CC7_RULES = _build_cc7_rules()


def _cc7_valid(national: str) -> bool:
    """Exactly ``phonenumbers.is_valid_number`` for a 10-digit +7 number, without a PhoneNumber.

    Replicates the library's region selection (first region whose leading digits match, otherwise the
    first region whose patterns accept the number) followed by the type-pattern check. The answer
    depends on the first few digits only (:data:`_CC7_VALID_DIGITS`, found by reading the patterns),
    so it is remembered per those digits.
    """
    digits = _CC7_VALID_DIGITS
    if digits is None:
        return _cc7_valid_uncached(national)
    key = national[:digits]
    valid = _CC7_VALID_CACHE.get(key)
    if valid is None:
        valid = _cc7_valid_uncached(national)
        if len(_CC7_VALID_CACHE) < _MAX_VALID_CACHE:
            _CC7_VALID_CACHE[key] = valid
    return valid


def _cc7_valid_uncached(national: str) -> bool:
    for leading, general, types in _CC7_RULES:
        if leading is not None and leading.match(national) is None:
            continue
        valid = (
            general is not None
            and types is not None
            and general.fullmatch(national) is not None
            and types.fullmatch(national) is not None
        )
        if valid or leading is not None:
            return valid
    return False


# Separators people put inside a number; deleting them is all the fast path does to the text.
_SEPARATORS = str.maketrans("", "", " \t-().\u00a0\u2009\u202f\u2011\u2012\u2013\u2014")


def _fast_cc7(raw: str, region: str) -> str | None:
    """E.164 for a plain +7 number, or None when the input needs the full parser."""
    # raw.translate(_SEPARATORS), in a fifth of the time for the usual separators: what is left is
    # either digits (with a "+") that translate() would keep, or goes through translate() after all.
    s = raw.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    if not (s.isdigit() or (s[:1] == "+" and s[1:].isdigit())):
        s = s.translate(_SEPARATORS)
    n = len(s)
    if n == 12 and s[0] == "+" and s[1] == "7":
        national = s[2:]
    elif not s.isascii():
        return None
    elif n == 11 and (s[0] == "7" or s[0] == "8") and region == "RU":
        national = s[1:]
    elif n == 10 and region == "RU":
        national = s
    elif n == 13 and s.startswith("007"):
        national = s[3:]
    else:
        return None
    if not national.isdigit() or not national.isascii():
        return None
    if not _cc7_valid(national):
        return None  # let the full parser produce the precise error (or parse an odd-but-valid form)
    return "+7" + national


# ---------------------------------------------------------------------------------------------------
# Slow path
# ---------------------------------------------------------------------------------------------------

# Extension written after the number: "доб. 12", "добавочный 12", "вн. 5", "ext 5", "x5", "#5".
_EXT_RE = re.compile(
    r"(?<![a-zа-яё])(?:доб(?:авочный|\.)?|внутр(?:енний|\.)?|вн\.?|ext(?:ension|\.)?|x|#)\s*[:.№]?\s*(\d{1,7})\s*$",
    re.IGNORECASE,
)
_EXCEL_INT_RE = re.compile(r"(\+?\d+)[.,]0+")
_EXCEL_SCI_RE = re.compile(r"\+?(\d)(?:[.,](\d+))?[eE]\+?(\d{1,2})")
_MULTI_SPLIT_RE = re.compile(r"[,;/\\|\n]|\s(?:или|or)\s", re.IGNORECASE)
_DIGIT_RE = re.compile(r"\d")
_LAST_DIGIT_RE = re.compile(r"\d(?!.*\d)", re.DOTALL)

_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "invalid country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}
_POSSIBLE_REASONS = {
    ValidationResult.TOO_SHORT: "too short",
    ValidationResult.TOO_LONG: "too long",
    ValidationResult.INVALID_LENGTH: "wrong number of digits",
    ValidationResult.INVALID_COUNTRY_CODE: "invalid country code",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "missing area code",
}


def _from_excel(text: str, raw: object) -> str | None:
    """Undo Excel's number formatting: "79123456789.0" and "7.9123456789E+10" -> digits."""
    m = _EXCEL_INT_RE.fullmatch(text)
    if m:
        return m.group(1)
    m = _EXCEL_SCI_RE.fullmatch(text)
    if not m:
        return None
    whole, frac, exp = m.group(1), m.group(2) or "", int(m.group(3))
    if len(frac) > exp:
        return None  # a genuine fraction, not a number Excel displayed in scientific notation
    if len(frac) < exp:
        # Excel shows only ~9-15 significant digits; padding with zeros would invent a number.
        raise InvalidPhone("rounded by Excel (scientific notation lost digits)", raw)
    return whole + frac


def _coerce(raw: object) -> str:
    """Accept what spreadsheet readers hand us (str, int, float) and return text."""
    if raw is None:
        raise InvalidPhone("empty", raw)
    if isinstance(raw, bool):
        raise InvalidPhone("not a phone number", raw)
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")) or not raw.is_integer():
            raise InvalidPhone("not a phone number", raw)
        return str(int(raw))
    if isinstance(raw, str):
        return raw
    raise InvalidPhone("not a phone number", raw)


def _invalid_reason(number: PhoneNumber, default_region: str) -> str:
    possible = phonenumbers.is_possible_number_with_reason(number)
    reason = _POSSIBLE_REASONS.get(possible)
    if reason is not None:
        return reason
    region = phonenumbers.region_code_for_country_code(number.country_code or 0)
    if region in (None, "ZZ", "001"):
        region = default_region
    return f"invalid for region {region}"


def _parse(text: str, region: str, raw: object) -> PhoneNumber:
    try:
        number = phonenumbers.parse(text, region, keep_raw_input=False)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(_PARSE_REASONS.get(exc.error_type, "not a phone number"), raw) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(_invalid_reason(number, region), raw)
    return number


def _slow(raw_text: str, region: str, raw: object) -> tuple[str, str | None]:
    # NFKC folds full-width digits and exotic spaces into ASCII so the regexes below see plain text.
    text = unicodedata.normalize("NFKC", raw_text).strip()
    if not text:
        raise InvalidPhone("empty", raw)

    excel = _from_excel(text, raw)
    if excel is not None:
        text = excel

    extension: str | None = None
    m = _EXT_RE.search(text)
    if m and _DIGIT_RE.search(text, 0, m.start()):
        extension = m.group(1)
        text = text[: m.start()]

    parts = [p for p in _MULTI_SPLIT_RE.split(text) if len(_DIGIT_RE.findall(p)) >= 7]
    if len(parts) > 1:
        raise InvalidPhone("more than one phone number", raw)

    # Drop leading/trailing junk ("тел.:", "(Иван)", a stray apostrophe from Excel).
    first = re.search(r"[+\d]", text)
    if first is None:
        raise InvalidPhone("not a phone number", raw)
    last = _LAST_DIGIT_RE.search(text)
    if last is None:
        raise InvalidPhone("not a phone number", raw)
    text = text[first.start() : last.end()]

    # "00" is the international prefix almost everywhere except Russia ("8 10"); people still use it.
    if text.startswith("00"):
        text = "+" + text[2:]

    digits = "".join(_DIGIT_RE.findall(text))
    try:
        number = _parse(text, region, raw)
    except InvalidPhone:
        # "+8 912 ..." is a frequent typo for "8 912 ..."; only reinterpret when "+" made no sense.
        if region == "RU" and text.startswith("+8") and len(digits) == 11:
            number = _parse(text[1:], region, raw)
        else:
            raise
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, extension or number.extension or None


def _check_region(default_region: str) -> str:
    region = default_region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default region {default_region!r}")
    return region


def to_e164_with_extension(raw: str | int | float, default_region: str = "RU") -> tuple[str, str | None]:
    """Normalise ``raw`` to E.164 and return it together with the extension (or ``None``).

    Raises :class:`InvalidPhone` for anything that is not a valid phone number.
    """
    region = default_region if default_region == "RU" else _check_region(default_region)
    text = _coerce(raw)
    fast = _fast_cc7(text, region)
    if fast is not None:
        return fast, None
    return _slow(text, region, raw)


def to_e164(raw: str | int | float, default_region: str = "RU") -> str:
    """Normalise a written phone number to E.164 ("+79123456789"); extensions are dropped.

    Numbers without a country code are read as national numbers of ``default_region``.  Accepts the
    ``int``/``float`` values spreadsheet readers produce.  Raises :class:`InvalidPhone`.
    """
    if default_region == "RU" and type(raw) is str:
        # The importer's common case, without the checks and the tuple of the general entry point.
        fast = _fast_cc7(raw, "RU")
        if fast is not None:
            return fast
    return to_e164_with_extension(raw, default_region)[0]


# ---------------------------------------------------------------------------------------------------
# Description
# ---------------------------------------------------------------------------------------------------

_TYPE_NAMES: dict[int, str] = {
    value: name.lower() for name, value in vars(PhoneNumberType).items() if name.isupper() and isinstance(value, int)
}
_E164_RE = re.compile(r"\+[1-9]\d{1,14}")

# (region, country, carrier, timezones, number_type, tz_uncertain): PhoneInfo minus e164/extension.
_Description = tuple[str | None, str, str | None, tuple[str, ...], str, bool]


def _describe_number(number: PhoneNumber) -> _Description:
    ntype = phonenumbers.number_type(number)
    country = phonenumbers.region_code_for_number(number) or "ZZ"
    region: str | None = pn_geocoder.description_for_number(number, "ru") or None
    # For numbers that cannot be geocoded (mobile, toll-free) the geocoder returns the country name;
    # that is not a region, so report "unknown" instead.
    if region is not None and region == pn_geocoder.country_name_for_number(number, "ru"):
        region = None
    carrier_name = pn_carrier.name_for_number(number, "ru") or pn_carrier.name_for_number(number, "en")
    zones = tuple(z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    return region, country, carrier_name or None, zones, _TYPE_NAMES.get(ntype, "unknown"), len(zones) > 1


# The order phonenumbers._number_type_helper tests the types in; the first match wins.
_TYPE_ORDER = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)

_TypeRules = tuple[
    re.Pattern[str] | None,  # leading digits
    re.Pattern[str] | None,  # general desc
    tuple[tuple[re.Pattern[str], int], ...],  # special types, in test order
    re.Pattern[str] | None,  # fixed line
    re.Pattern[str] | None,  # mobile
    bool,  # same_mobile_and_fixed_line_pattern
]


def _build_cc7_type_rules() -> tuple[_TypeRules, ...]:
    rules = []
    for region in phonenumbers.region_codes_for_country_code(7):
        md = PhoneMetadata.metadata_for_region(region)
        if md is None:
            continue
        special = []
        for attr, ntype in _TYPE_ORDER:
            pattern = _pattern_for_length([getattr(md, attr, None)], _CC7_LENGTH)
            if pattern is not None:
                special.append((pattern, ntype))
        rules.append(
            (
                re.compile(md.leading_digits) if md.leading_digits is not None else None,
                _pattern_for_length([md.general_desc], _CC7_LENGTH),
                tuple(special),
                _pattern_for_length([md.fixed_line], _CC7_LENGTH),
                _pattern_for_length([md.mobile], _CC7_LENGTH),
                bool(md.same_mobile_and_fixed_line_pattern),
            )
        )
    return tuple(rules)


_CC7_TYPE_RULES = _build_cc7_type_rules()


def _type_in(rules: _TypeRules, national: str) -> int:
    """phonenumbers._number_type_helper for one region's rules."""
    _, general, special, fixed, mobile, same = rules
    if general is None or general.fullmatch(national) is None:
        return PhoneNumberType.UNKNOWN
    for pattern, ntype in special:
        if pattern.fullmatch(national) is not None:
            return ntype
    if fixed is not None and fixed.fullmatch(national) is not None:
        if same or (mobile is not None and mobile.fullmatch(national) is not None):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not same and mobile is not None and mobile.fullmatch(national) is not None:
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


def _cc7_classify(national: str) -> tuple[int, int]:
    """(index of the +7 region the number belongs to, PhoneNumberType) as phonenumbers would decide."""
    for index, rules in enumerate(_CC7_TYPE_RULES):
        leading = rules[0]
        if leading is not None:
            if leading.match(national) is not None:
                return index, _type_in(rules, national)
            continue
        ntype = _type_in(rules, national)
        if ntype != PhoneNumberType.UNKNOWN:
            return index, ntype
    return -1, PhoneNumberType.UNKNOWN


def _cc7_data_prefixes() -> tuple[frozenset[str], int]:
    """Every "7..." key of the geocoder, carrier and time-zone tables, and the longest one's length.

    Those lookups all take the longest key that is a prefix of the number, so two +7 numbers with the
    same (longest matching key, region, type) get identical descriptions.  That makes a tiny cache.
    """
    try:
        from phonenumbers.carrierdata import CARRIER_DATA
        from phonenumbers.geodata import GEOCODE_DATA
        from phonenumbers.tzdata import TIMEZONE_DATA
    except ImportError:  # pragma: no cover - a future phonenumbers layout; fall back to per-number keys
        return frozenset(), 0
    keys: set[str] = set()
    for table in (GEOCODE_DATA, CARRIER_DATA, TIMEZONE_DATA):
        keys.update(key for key in table if key.startswith("7"))
    return frozenset(keys), max((len(k) for k in keys), default=0)


_CC7_PREFIXES, _CC7_LONGEST = _cc7_data_prefixes()
# Bounded by the number of data prefixes x types (a few thousand), so a plain dict is enough.
_CC7_CACHE: dict[tuple[str, int, int], _Description] = {}


def _describe_cc7(national: str) -> _Description | None:
    """Cached description of a 10-digit +7 number, or None when it is not valid."""
    index, ntype = _cc7_classify(national)
    if ntype == PhoneNumberType.UNKNOWN:
        return None
    digits = "7" + national
    key = digits if not _CC7_LONGEST else ""
    for length in range(min(_CC7_LONGEST, len(digits)), 0, -1):
        if digits[:length] in _CC7_PREFIXES:
            key = digits[:length]
            break
    cache_key = (key, index, ntype)
    cached = _CC7_CACHE.get(cache_key)
    if cached is None:
        cached = _describe_number(PhoneNumber(country_code=7, national_number=int(national)))
        _CC7_CACHE[cache_key] = cached
    return cached


# ---------------------------------------------------------------------------------------------------
# Which leading digits decide describe(): a key for callers' caches
# ---------------------------------------------------------------------------------------------------

_DIGIT_SET = frozenset("0123456789")
# A pattern that expands into more alternatives than this is not analysed (no sharing, still correct).
_MAX_ALTERNATIVES = 20_000
# One alternative of a pattern over digit strings: the digits allowed at each position.
_Shape = tuple[frozenset[str], ...]


def _char_class(items: list[tuple[object, object]]) -> frozenset[str] | None:
    from re import _constants as sre  # type: ignore[attr-defined]

    chars: set[str] = set()
    negate = False
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            chars.add(chr(av))  # type: ignore[arg-type]
        elif op is sre.RANGE:
            bounds: tuple[int, int] = av  # type: ignore[assignment]
            chars.update(chr(c) for c in range(bounds[0], bounds[1] + 1))
        elif op is sre.CATEGORY and av is sre.CATEGORY_DIGIT:
            chars.update(_DIGIT_SET)
        else:
            return None
    # Only digit strings are ever matched, so a class is the set of digits it accepts.
    allowed = frozenset(chars) & _DIGIT_SET
    return _DIGIT_SET - allowed if negate else allowed


def _shapes(items: object, limit: int) -> list[_Shape] | None:
    """Every alternative of a parsed pattern as a sequence of digit sets (at most ``limit`` long).

    None when the pattern uses something this small analyser does not model (anchors, lookarounds,
    flags, unbounded repeats over more than ``limit``...): the caller then shares nothing.
    """
    from re import _constants as sre  # type: ignore[attr-defined]

    shapes: list[_Shape] = [()]
    for op, av in items:  # type: ignore[attr-defined]
        alternatives: list[_Shape] | None
        if op is sre.LITERAL:
            alternatives = [(frozenset(chr(av)) & _DIGIT_SET,)]
        elif op is sre.NOT_LITERAL:
            alternatives = [(_DIGIT_SET - {chr(av)},)]
        elif op is sre.ANY:
            alternatives = [(_DIGIT_SET,)]
        elif op is sre.IN:
            chars = _char_class(av)
            alternatives = None if chars is None else [(chars,)]
        elif op is sre.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            alternatives = None if add_flags or del_flags else _shapes(sub, limit)
        elif op is sre.BRANCH:
            alternatives = []
            for branch in av[1]:
                expanded = _shapes(branch, limit)
                if expanded is None:
                    return None
                alternatives += expanded
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, sub = av
            unit = _shapes(sub, limit)
            if unit is None:
                return None
            alternatives = []
            current: list[_Shape] = [()]
            for count in range(min(high, limit) + 1):
                if count >= low:
                    alternatives += current
                current = [s + u for s in current for u in unit if len(s) + len(u) <= limit]
                if not current:
                    break
        else:
            return None
        if alternatives is None:
            return None
        shapes = [s + a for s in shapes for a in alternatives if len(s) + len(a) <= limit]
        if len(shapes) > _MAX_ALTERNATIVES:
            return None
    return shapes


def _deciding_digits(pattern: re.Pattern[str] | None, length: int, *, whole: bool) -> int | None:
    """How many leading digits decide whether a ``length``-digit string matches ``pattern``.

    ``whole`` is ``fullmatch`` (only alternatives of exactly ``length`` digits count), otherwise
    ``match`` at the start (any alternative up to ``length``). The answer is exact: past it, every
    alternative accepts every digit. None when the pattern cannot be analysed.
    """
    if pattern is None:
        return 0
    from re import _parser as sre_parse  # type: ignore[attr-defined]

    try:
        shapes = _shapes(sre_parse.parse(pattern.pattern), length)
    except (RecursionError, ValueError, TypeError):  # pragma: no cover - an exotic pattern
        return None
    if shapes is None:
        return None
    deciding = 0
    for shape in shapes:
        if (whole and len(shape) != length) or not all(shape):
            continue  # cannot match a string of this length at all
        deciding = max(deciding, max((i + 1 for i, s in enumerate(shape) if s != _DIGIT_SET), default=0))
    return deciding


def _most(found: list[int | None]) -> int | None:
    return None if any(d is None for d in found) else max((d for d in found if d is not None), default=0)


def _cc7_valid_digits() -> int | None:
    """National digits that decide :func:`_cc7_valid` for a 10-digit number (None: all of them)."""
    found = []
    for leading, general, types in _CC7_RULES:
        found.append(_deciding_digits(leading, _CC7_LENGTH, whole=False))
        found += [_deciding_digits(p, _CC7_LENGTH, whole=True) for p in (general, types)]
    return _most(found)


def _cc7_type_digits() -> int | None:
    """National digits that decide :func:`_cc7_classify` for a 10-digit number (None: all of them)."""
    found = []
    for leading, general, special, fixed, mobile, _same in _CC7_TYPE_RULES:
        found.append(_deciding_digits(leading, _CC7_LENGTH, whole=False))
        found += [_deciding_digits(p, _CC7_LENGTH, whole=True) for p in (general, fixed, mobile)]
        found += [_deciding_digits(p, _CC7_LENGTH, whole=True) for p, _ in special]
    return _most(found)


_CC7_VALID_DIGITS = _cc7_valid_digits()
_CC7_VALID_CACHE: dict[str, bool] = {}
# Real numbers share few prefixes; past this many, answers are computed but not kept.
_MAX_VALID_CACHE = 1 << 17
_CC7_PATTERN_DIGITS = _most([_CC7_VALID_DIGITS, _cc7_type_digits()])
# Every proper prefix of a "7..." data key: a number's description can still change below such a prefix.
_CC7_EXTENDED = frozenset(key[:n] for key in _CC7_PREFIXES for n in range(1, len(key)))
# Digits (with the "7") of the shortest description key: every pattern decides within them.
_CC7_KEY_DIGITS = None if _CC7_PATTERN_DIGITS is None or not _CC7_LONGEST else _CC7_PATTERN_DIGITS + 1


def description_key(e164: str) -> str | None:
    """The leading part of ``e164`` that alone decides :func:`describe` for it, or None.

    Every number in E.164 form with the same key (and the same length) gets the same description,
    so callers may cache descriptions per key. For a 10-digit +7 number the key is "+7" and as many
    digits as the numbering patterns (read from the installed metadata) and the geocoder / carrier /
    time-zone tables need — usually "+7" and 6 digits, a block of 10,000 numbers. None for other
    numbers (describe them one by one) and when the patterns could not be analysed.
    """
    n = _CC7_KEY_DIGITS
    if n is None or len(e164) != 12 or not e164.startswith("+7") or not e164[1:].isdigit() or not e164.isascii():
        return None
    # The data tables are searched for the longest key that prefixes the number: once no key goes
    # deeper than the prefix, the digits after it no longer matter.
    while n < _CC7_LONGEST and e164[1 : n + 1] in _CC7_EXTENDED:
        n += 1
    return e164[: n + 1]


@lru_cache(maxsize=1 << 16)
def _describe_other(e164: str) -> _Description:
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone(_PARSE_REASONS.get(exc.error_type, "not a phone number"), e164) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(_invalid_reason(number, "ZZ"), e164)
    return _describe_number(number)


def describe(e164: str) -> PhoneInfo:
    """Geocoder region, carrier, time zones and type for a number already in E.164 form.

    Cached: +7 numbers per numbering-data prefix (a few thousand entries in total), other numbers per
    number (LRU).  Raises
    :class:`InvalidPhone` when ``e164`` is not a valid E.164 number.
    """
    if len(e164) == 12 and e164.startswith("+7") and e164.isascii() and e164[2:].isdigit():
        description = _describe_cc7(e164[2:])
        if description is not None:
            return PhoneInfo(e164, *description)
    if not _E164_RE.fullmatch(e164):
        raise InvalidPhone("not in E.164 format", e164)
    return PhoneInfo(e164, *_describe_other(e164))


def normalize(raw: str | int | float, default_region: str = "RU") -> PhoneInfo:
    """Parse any common written form of a phone number and describe it.

    ``"8 (912) 345-67-89"``, ``"+7 912 345 6789"``, ``"9123456789"``, ``"007 912 ..."``,
    ``"8 10 49 30 ..."``, Excel floats and ``"... доб. 12"`` (kept in ``PhoneInfo.extension``) are all
    understood.  Raises :class:`InvalidPhone` with a human-readable ``reason`` for bad input.
    """
    e164, extension = to_e164_with_extension(raw, default_region)
    info = describe(e164)
    if extension is None:
        return info
    return PhoneInfo(
        info.e164,
        info.region,
        info.country,
        info.carrier,
        info.timezones,
        info.number_type,
        info.tz_uncertain,
        extension,
    )
