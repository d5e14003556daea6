"""Phone numbers for the dialer: E.164 normalisation, description, and Russian numbering data.

* :mod:`dialer.phone.normalize` -- raw text -> E.164 (:func:`to_e164`), E.164 -> region, carrier,
  time zones (:func:`describe`), or both (:func:`normalize`).
* :mod:`dialer.phone.registry` -- streaming parser of the regulator's ABC/DEF numbering registry.
* :mod:`dialer.phone.regions_ru` -- the 89 federal subjects, their time zones and name matching.
"""

from dialer.phone.normalize import (
    InvalidPhone,
    PhoneInfo,
    describe,
    normalize,
    to_e164,
    to_e164_with_extension,
)
from dialer.phone.regions_ru import SUBJECT_TIMEZONES, SUBJECTS, subject_for, timezone_for, zone_for_subject
from dialer.phone.registry import RegistryFormatError, RegistryRange, RegistryRowError, iter_registry

__all__ = [
    "SUBJECTS",
    "SUBJECT_TIMEZONES",
    "InvalidPhone",
    "PhoneInfo",
    "RegistryFormatError",
    "RegistryRange",
    "RegistryRowError",
    "describe",
    "iter_registry",
    "normalize",
    "subject_for",
    "timezone_for",
    "to_e164",
    "to_e164_with_extension",
    "zone_for_subject",
]
