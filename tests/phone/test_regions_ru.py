"""Tests for dialer.phone.regions_ru: the subject table, time zones and free-text matching."""

from __future__ import annotations

import zoneinfo

import pytest

from dialer.phone.regions_ru import (
    SUBJECT_TIMEZONES,
    SUBJECTS,
    is_country_wide,
    subject_for,
    subjects_named,
    timezone_for,
    zone_for_subject,
    zone_for_text,
)

# Every subject: (canonical name, an abbreviated / registry-style variant, expected zone).
ALL_SUBJECTS = [
    ("Республика Адыгея", "Респ. Адыгея", "Europe/Moscow"),
    ("Республика Алтай", "Респ. Алтай", "Asia/Barnaul"),
    ("Республика Башкортостан", "Респ. Башкортостан", "Asia/Yekaterinburg"),
    ("Республика Бурятия", "Респ. Бурятия", "Asia/Irkutsk"),
    ("Республика Дагестан", "Респ. Дагестан", "Europe/Moscow"),
    ("Донецкая Народная Республика", "Донецкая Народная Респ.", "Europe/Moscow"),
    ("Республика Ингушетия", "Респ. Ингушетия", "Europe/Moscow"),
    ("Кабардино-Балкарская Республика", "Кабардино - Балкарская Республика", "Europe/Moscow"),
    ("Республика Калмыкия", "Респ. Калмыкия", "Europe/Moscow"),
    ("Карачаево-Черкесская Республика", "Карачаево - Черкесская Респ.", "Europe/Moscow"),
    ("Республика Карелия", "Респ. Карелия", "Europe/Moscow"),
    ("Республика Коми", "Респ. Коми", "Europe/Moscow"),
    ("Республика Крым", "Респ. Крым", "Europe/Simferopol"),
    ("Луганская Народная Республика", "Луганская Народная Респ.", "Europe/Moscow"),
    ("Республика Марий Эл", "Респ. Марий Эл", "Europe/Moscow"),
    ("Республика Мордовия", "Респ. Мордовия", "Europe/Moscow"),
    ("Республика Саха (Якутия)", "Республика Саха /Якутия/", "Asia/Yakutsk"),
    ("Республика Северная Осетия — Алания", "Республика Северная Осетия - Алания", "Europe/Moscow"),
    ("Республика Татарстан", "Респ. Татарстан", "Europe/Moscow"),
    ("Республика Тыва", "Респ. Тыва", "Asia/Krasnoyarsk"),
    ("Удмуртская Республика", "Удмуртская Респ.", "Europe/Samara"),
    ("Республика Хакасия", "Респ. Хакасия", "Asia/Krasnoyarsk"),
    ("Чеченская Республика", "Чеченская Респ.", "Europe/Moscow"),
    ("Чувашская Республика", "Чувашская Республика - Чувашия", "Europe/Moscow"),
    ("Алтайский край", "Алтайский кр.", "Asia/Barnaul"),
    ("Забайкальский край", "Забайкальский кр.", "Asia/Chita"),
    ("Камчатский край", "Камчатский кр.", "Asia/Kamchatka"),
    ("Краснодарский край", "Краснодарский кр.", "Europe/Moscow"),
    ("Красноярский край", "Красноярский кр.", "Asia/Krasnoyarsk"),
    ("Пермский край", "Пермский кр.", "Asia/Yekaterinburg"),
    ("Приморский край", "Приморский кр.", "Asia/Vladivostok"),
    ("Ставропольский край", "Ставропольский кр.", "Europe/Moscow"),
    ("Хабаровский край", "Хабаровский кр.", "Asia/Vladivostok"),
    ("Амурская область", "Амурская обл.", "Asia/Yakutsk"),
    ("Архангельская область", "Архангельская обл.", "Europe/Moscow"),
    ("Астраханская область", "Астраханская обл.", "Europe/Astrakhan"),
    ("Белгородская область", "Белгородская обл.", "Europe/Moscow"),
    ("Брянская область", "Брянская обл.", "Europe/Moscow"),
    ("Владимирская область", "Владимирская обл.", "Europe/Moscow"),
    ("Волгоградская область", "Волгоградская обл.", "Europe/Volgograd"),
    ("Вологодская область", "Вологодская обл.", "Europe/Moscow"),
    ("Воронежская область", "Воронежская обл.", "Europe/Moscow"),
    ("Запорожская область", "Запорожская обл.", "Europe/Moscow"),
    ("Ивановская область", "Ивановская обл.", "Europe/Moscow"),
    ("Иркутская область", "Иркутская обл.", "Asia/Irkutsk"),
    ("Калининградская область", "Калининградская обл.", "Europe/Kaliningrad"),
    ("Калужская область", "Калужская обл.", "Europe/Moscow"),
    ("Кемеровская область — Кузбасс", "Кемеровская область - Кузбасс обл.", "Asia/Novokuznetsk"),
    ("Кировская область", "Кировская обл.", "Europe/Kirov"),
    ("Костромская область", "Костромская обл.", "Europe/Moscow"),
    ("Курганская область", "Курганская обл.", "Asia/Yekaterinburg"),
    ("Курская область", "Курская обл.", "Europe/Moscow"),
    ("Ленинградская область", "Ленинградская обл.", "Europe/Moscow"),
    ("Липецкая область", "Липецкая обл.", "Europe/Moscow"),
    ("Магаданская область", "Магаданская обл.", "Asia/Magadan"),
    ("Московская область", "Московская обл.", "Europe/Moscow"),
    ("Мурманская область", "Мурманская обл.", "Europe/Moscow"),
    ("Нижегородская область", "Нижегородская обл.", "Europe/Moscow"),
    ("Новгородская область", "Новгородская обл.", "Europe/Moscow"),
    ("Новосибирская область", "Новосибирская обл.", "Asia/Novosibirsk"),
    ("Омская область", "Омская обл.", "Asia/Omsk"),
    ("Оренбургская область", "Оренбургская обл.", "Asia/Yekaterinburg"),
    ("Орловская область", "Орловская обл.", "Europe/Moscow"),
    ("Пензенская область", "Пензенская обл.", "Europe/Moscow"),
    ("Псковская область", "Псковская обл.", "Europe/Moscow"),
    ("Ростовская область", "Ростовская обл.", "Europe/Moscow"),
    ("Рязанская область", "Рязанская обл.", "Europe/Moscow"),
    ("Самарская область", "Самарская обл.", "Europe/Samara"),
    ("Саратовская область", "Саратовская обл.", "Europe/Saratov"),
    ("Сахалинская область", "Сахалинская обл.", "Asia/Sakhalin"),
    ("Свердловская область", "Свердловская обл.", "Asia/Yekaterinburg"),
    ("Смоленская область", "Смоленская обл.", "Europe/Moscow"),
    ("Тамбовская область", "Тамбовская обл.", "Europe/Moscow"),
    ("Тверская область", "Тверская обл.", "Europe/Moscow"),
    ("Томская область", "Томская обл.", "Asia/Tomsk"),
    ("Тульская область", "Тульская обл.", "Europe/Moscow"),
    ("Тюменская область", "Тюменская обл.", "Asia/Yekaterinburg"),
    ("Ульяновская область", "Ульяновская обл.", "Europe/Ulyanovsk"),
    ("Херсонская область", "Херсонская обл.", "Europe/Moscow"),
    ("Челябинская область", "Челябинская обл.", "Asia/Yekaterinburg"),
    ("Ярославская область", "Ярославская обл.", "Europe/Moscow"),
    ("Москва", "г. Москва", "Europe/Moscow"),
    ("Санкт-Петербург", "г. Санкт - Петербург", "Europe/Moscow"),
    ("Севастополь", "г. Севастополь", "Europe/Simferopol"),
    ("Еврейская автономная область", "Еврейская авт. обл.", "Asia/Vladivostok"),
    ("Ненецкий автономный округ", "Ненецкий АО", "Europe/Moscow"),
    ("Ханты-Мансийский автономный округ — Югра", "Ханты - Мансийский - Югра АО", "Asia/Yekaterinburg"),
    ("Чукотский автономный округ", "Чукотский АО", "Asia/Anadyr"),
    ("Ямало-Ненецкий автономный округ", "Ямало - Ненецкий АО", "Asia/Yekaterinburg"),
]


def test_table_has_all_89_subjects_with_real_zones() -> None:
    assert len(SUBJECTS) == 89
    assert len(set(SUBJECTS)) == 89
    assert set(SUBJECT_TIMEZONES) == set(SUBJECTS)
    assert {name for name, _, _ in ALL_SUBJECTS} == set(SUBJECTS)  # the test table is complete too
    for zone in set(SUBJECT_TIMEZONES.values()):
        zoneinfo.ZoneInfo(zone)  # raises if tzdata does not know the zone
    for added in ("Республика Крым", "Севастополь", "Донецкая Народная Республика",
                  "Луганская Народная Республика", "Запорожская область", "Херсонская область"):  # fmt: skip
        assert added in SUBJECTS


def test_subject_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        SUBJECT_TIMEZONES["Москва"] = "UTC"  # type: ignore[index]


@pytest.mark.parametrize(("canonical", "variant", "zone"), ALL_SUBJECTS)
def test_every_subject_canonical_and_abbreviated(canonical: str, variant: str, zone: str) -> None:
    assert subject_for(canonical) == canonical
    assert subject_for(variant) == canonical
    assert subject_for(variant.upper()) == canonical
    assert SUBJECT_TIMEZONES[canonical] == zone
    assert timezone_for(canonical) == zone
    assert timezone_for(variant) == zone
    # As the registry writes municipal rows: "<district>|<subject>".
    assert subject_for(f"р-н Центральный|{variant}") == canonical


@pytest.mark.parametrize(
    ("text", "subject"),
    [
        ("г. Сочи|Краснодарский край", "Краснодарский край"),
        ("р-н Кочубеевский|Ставропольский край", "Ставропольский край"),
        ("г. Улан-Удэ|г.о. город Улан-Удэ|Республика Бурятия", "Республика Бурятия"),
        ("г. Москва и Московская область", "Москва"),
        ("Санкт-Петербург и Ленинградская область", "Санкт-Петербург"),
        ("Город Москва", "Москва"),
        ("Республика Саха (Якутия)", "Республика Саха (Якутия)"),
        ("Якутия", "Республика Саха (Якутия)"),
        ("Республика Тыва /Тува/", "Республика Тыва"),
        ("Республика Татарстан (Татарстан)", "Республика Татарстан"),
        ("Республика Адыгея (Адыгея)", "Республика Адыгея"),
        ("Кемеровская обл.", "Кемеровская область — Кузбасс"),
        ("Кузбасс", "Кемеровская область — Кузбасс"),
        ("Ханты-Мансийский автономный округ - Югра", "Ханты-Мансийский автономный округ — Югра"),
        ("ХМАО", "Ханты-Мансийский автономный округ — Югра"),
        ("Северная Осетия-Алания", "Республика Северная Осетия — Алания"),
        ("Кабардино-Балкария", "Кабардино-Балкарская Республика"),
        ("ДНР", "Донецкая Народная Республика"),
        ("Орловская облaсть", "Орловская область"),  # Latin "a" in the type word: the name still counts
        ("Московской области", "Московская область"),  # genitive, via stems
        ("МОСКОВСКАЯ  ОБЛ", "Московская область"),
        ("Еврейская АО", "Еврейская автономная область"),
        ("Чувашия", "Чувашская Республика"),
        ("Удмуртия", "Удмуртская Республика"),
        ("Тюменская обл.|Ханты-Мансийский АО", "Ханты-Мансийский автономный округ — Югра"),
        ("Ненецкий АО|Архангельская обл.", "Ненецкий автономный округ"),
        ("Коми-Пермяцкий округ|Пермский край", "Пермский край"),
        ("Коми-Пермяцкий АО", "Пермский край"),
        ("Таймырский (Долгано-Ненецкий) АО", "Красноярский край"),
        ("Агинский Бурятский АО|Забайкальский край", "Забайкальский край"),
        ("Корякский АО", "Камчатский край"),
        ("Республика Коми", "Республика Коми"),
        ("Республика Алтай", "Республика Алтай"),
        ("Алтайский край", "Алтайский край"),
        ("Орёл|Орловская обл.", "Орловская область"),
        ("Республика Саха (Якутия)|Якутск", "Республика Саха (Якутия)"),
    ],
)
def test_registry_region_variants(text: str, subject: str | None) -> None:
    assert subject_for(text) == subject


@pytest.mark.parametrize(
    "text",
    ["", "   ", "Российская Федерация", "г. Сочи", "р-н Московский", "г. Нижний Новгород", "Казахстан"],
)
def test_unknown_regions_give_none(text: str) -> None:
    assert subject_for(text) is None
    assert timezone_for(text) is None


def test_zones_named_in_the_brief() -> None:
    expected = {
        "г. Москва": "Europe/Moscow",
        "Республика Татарстан": "Europe/Moscow",
        "Самарская обл.": "Europe/Samara",
        "Удмуртская Республика": "Europe/Samara",
        "Свердловская обл.": "Asia/Yekaterinburg",
        "Омская обл.": "Asia/Omsk",
        "Новосибирская обл.": "Asia/Novosibirsk",
        "Томская обл.": "Asia/Tomsk",
        "Алтайский край": "Asia/Barnaul",
        "Кемеровская область - Кузбасс обл.": "Asia/Novokuznetsk",
        "Красноярский край": "Asia/Krasnoyarsk",
        "Иркутская обл.": "Asia/Irkutsk",
        "Забайкальский край": "Asia/Chita",
        "Республика Саха /Якутия/": "Asia/Yakutsk",
        "Приморский край": "Asia/Vladivostok",
        "Магаданская обл.": "Asia/Magadan",
        "Сахалинская обл.": "Asia/Sakhalin",
        "Камчатский край": "Asia/Kamchatka",
        "Чукотский АО": "Asia/Anadyr",
        "Калининградская обл.": "Europe/Kaliningrad",
        "Астраханская обл.": "Europe/Astrakhan",
        "Саратовская обл.": "Europe/Saratov",
        "Ульяновская обл.": "Europe/Ulyanovsk",
        "Волгоградская обл.": "Europe/Volgograd",
        "Кировская обл.": "Europe/Kirov",
    }
    assert {text: timezone_for(text) for text in expected} == expected


@pytest.mark.parametrize(
    ("text", "zone"),
    [
        ("р-н Оймяконский|Республика Саха /Якутия/", "Asia/Ust-Nera"),
        ("р-н Усть - Майский|Республика Саха /Якутия/", "Asia/Khandyga"),
        ("р-н Верхоянский|Республика Саха /Якутия/", "Asia/Vladivostok"),
        ("р-н Среднеколымский|Республика Саха /Якутия/", "Asia/Srednekolymsk"),
        ("р-н Нижнеколымский|Республика Саха /Якутия/", "Asia/Srednekolymsk"),
        ("г. Якутск|Республика Саха /Якутия/", "Asia/Yakutsk"),
        ("р-н Северо-Курильский|Сахалинская обл.", "Asia/Srednekolymsk"),
        ("г. Южно-Сахалинск|Сахалинская обл.", "Asia/Sakhalin"),
        ("р-н Оймяконский|Краснодарский край", "Europe/Moscow"),  # district refinement is per subject
    ],
)
def test_multi_zone_subjects_use_the_district_zone(text: str, zone: str) -> None:
    assert timezone_for(text) == zone


def test_zone_for_subject() -> None:
    assert zone_for_subject("Москва") == "Europe/Moscow"
    assert zone_for_subject("Республика Саха (Якутия)") == "Asia/Yakutsk"
    assert zone_for_subject("Республика Саха (Якутия)", "р-н Момский") == "Asia/Srednekolymsk"
    with pytest.raises(KeyError):
        zone_for_subject("Московская обл.")  # only canonical names


# Region names as the regulator's ABC/DEF files spell them (current and older files), with the zone.
REGISTRY_SPELLINGS = {
    "Москва и Московская область": "Europe/Moscow",
    "г. Москва и Московская область": "Europe/Moscow",
    "Санкт-Петербург и Ленинградская область": "Europe/Moscow",
    "Республика Саха /Якутия/": "Asia/Yakutsk",
    "Кемеровская область - Кузбасс": "Asia/Novokuznetsk",
    "Ханты - Мансийский - Югра АО": "Asia/Yekaterinburg",
    "Ханты-Мансийский АО - Югра": "Asia/Yekaterinburg",
    "Чувашская Республика - Чувашия": "Europe/Moscow",
    "г. Севастополь": "Europe/Simferopol",
    "г.Севастополь": "Europe/Simferopol",
    "Республика Крым и г. Севастополь": "Europe/Simferopol",
    "Ямало-Ненецкий АО": "Asia/Yekaterinburg",
    "Еврейская АО": "Asia/Vladivostok",
    "Республика Северная Осетия - Алания": "Europe/Moscow",
    "Кабардино-Балкарская Республика": "Europe/Moscow",
    "Республика Адыгея": "Europe/Moscow",
    "Забайкальский край": "Asia/Chita",
    "Читинская обл.": "Asia/Chita",
    "Пермский край": "Asia/Yekaterinburg",
    "Камчатский край": "Asia/Kamchatka",
    "Чукотский АО": "Asia/Anadyr",
    "Ненецкий АО": "Europe/Moscow",
    "Архангельская обл. и Ненецкий АО": "Europe/Moscow",
    "Республика Крым": "Europe/Simferopol",
    "ДНР": "Europe/Moscow",
    "г. Донецк|Донецкая Народная Республика": "Europe/Moscow",
    "ЛНР": "Europe/Moscow",
    "г. Мелитополь|Запорожская обл.": "Europe/Moscow",
    "Херсонская обл.": "Europe/Moscow",
    "г.о. Серпухов|Московская обл.": "Europe/Moscow",
    "г. Серпухов|г.о. Серпухов|Московская обл.": "Europe/Moscow",
    "г.о. город Набережные Челны|Республика Татарстан": "Europe/Moscow",
    "м.р-н Оймяконский|Республика Саха /Якутия/": "Asia/Ust-Nera",
    "Иркутская обл. и Усть-Ордынский Бурятский АО": "Asia/Irkutsk",
    "Камчатский край и Корякский АО": "Asia/Kamchatka",
    "Хабаровский край и Еврейская АО": "Asia/Vladivostok",
    "Новосибирская обл. и Томская обл.": "Asia/Novosibirsk",  # different IANA zones, same clock
    "Удмуртская Республика": "Europe/Samara",
    "Ульяновская обл.": "Europe/Ulyanovsk",
}


@pytest.mark.parametrize(("text", "zone"), REGISTRY_SPELLINGS.items())
def test_registry_spellings_get_their_zone(text: str, zone: str) -> None:
    assert timezone_for(text) == zone
    assert zone_for_text(text) == zone


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Магаданская обл. и Чукотский АО", ("Магаданская область", "Чукотский автономный округ")),
        ("Республика Саха /Якутия/ и Магаданская обл.", ("Республика Саха (Якутия)", "Магаданская область")),
        ("Омская обл. и Новосибирская обл.", ("Омская область", "Новосибирская область")),
    ],
)
def test_a_text_naming_subjects_with_different_clocks_has_no_single_zone(text: str, named: tuple[str, ...]) -> None:
    # Picking the first would silently shift the calling window of the other subject's numbers.
    assert subjects_named(text) == named
    assert subject_for(text) == named[0]
    assert timezone_for(text) is None


@pytest.mark.parametrize(
    ("text", "country_wide"),
    [("Российская Федерация", True), ("РФ", True), ("Россия", True), ("Дальневосточный федеральный округ", True),
     ("Уральский ФО", True), ("Москва", False), ("г. Байконур", False), ("Планета Марс", False), ("", False)],
)
def test_country_wide_names(text: str, country_wide: bool) -> None:
    assert is_country_wide(text) is country_wide
    assert timezone_for(text) is None or not country_wide
