from __future__ import annotations

from fastapi import FastAPI

from dialer.contact.phonelookup import PhoneLookup, phone_lookup
from dialer.models import PhoneCode
from dialer.timezone.codes import CodeInfo, CodeTable, number_range, prefix_range


def _table() -> CodeTable:
    rows = []
    lo, hi = number_range("+79120000000", "+79129999999")
    rows.append((lo, hi, CodeInfo("Asia/Yekaterinburg", "Свердловская обл.", "МТС", manual=False)))
    lo, hi = prefix_range("+791234")
    rows.append((lo, hi, CodeInfo("Europe/Moscow", None, None, manual=True)))
    lo, hi = number_range("+73430000000", "+73439999999")
    rows.append((lo, hi, CodeInfo(None, "Екатеринбург", None, manual=False)))
    return CodeTable(rows)


def test_codes_first_then_phonenumbers() -> None:
    lookup = PhoneLookup(_table())
    registry = lookup.details("+79125550000")
    assert (registry.region, registry.carrier, registry.timezones, registry.tz_uncertain) == (
        "Свердловская обл.", "МТС", ("Asia/Yekaterinburg",), False)
    # The user's narrower prefix wins for the zone; what it leaves out comes from the wider registry
    # range (then phonenumbers), field by field.
    manual = lookup.details("+79123456789")
    assert (manual.region, manual.carrier, manual.timezones, manual.tz_uncertain) == (
        "Свердловская обл.", "МТС", ("Europe/Moscow",), False)
    # A code without a zone: the zones come from phonenumbers, the region from the code.
    landline = lookup.details("+73432100000")
    assert landline.region == "Екатеринбург" and landline.timezones == ("Asia/Yekaterinburg",)
    # No code at all and a mobile number: every candidate zone is kept, uncertain.
    mobile = lookup.details("+79031234567")
    assert mobile.tz_uncertain and "Europe/Moscow" in mobile.timezones and "Asia/Vladivostok" in mobile.timezones
    assert mobile.carrier == "Билайн"
    foreign = PhoneLookup().details("+442079460958")
    assert foreign.timezones == ("Europe/London",) and not foreign.tz_uncertain


async def test_cached_lookup_is_reloaded_when_the_table_changes(app: FastAPI) -> None:
    async with app.state.sessionmaker() as session:
        first = await phone_lookup(session)
        assert await phone_lookup(session) is first
        assert first.details("+79125550000").tz_uncertain
    lo, hi = prefix_range("+7912")
    async with app.state.sessionmaker() as session, session.begin():
        session.add(PhoneCode(prefix="+7912", range_from=lo, range_to=hi, tz="Asia/Omsk", source="registry"))
    async with app.state.sessionmaker() as session:
        assert await phone_lookup(session) is first  # trusted for MAX_AGE_S
        second = await phone_lookup(session, max_age_s=0)
        assert second is not first and second.details("+79125550000").timezones == ("Asia/Omsk",)
        assert await phone_lookup(session, max_age_s=0) is second
