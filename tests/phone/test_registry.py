"""Tests for dialer.phone.registry: sample registry files are generated on the fly in tmp_path."""

from __future__ import annotations

import codecs
import io
import tracemalloc
from pathlib import Path

import pytest

from dialer.phone.registry import RegistryFormatError, RegistryRange, RegistryRowError, iter_registry

OLD_HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион"
NEW_HEADER = "АВС/ DEF;От;До;Емкость;Оператор;Регион;Территория ГАР;ИНН"

OLD_ROWS = [
    '301;2100000;2109999;10000;ОАО "АСВТ";г. Улан - Удэ|Республика Бурятия',
    '495;1234500;1234599;100;ПАО "Ростелеком";г. Москва',
    '900;0000000;0061999;62000;ООО "Т2 Мобайл";Краснодарский край',
    '800;0000000;0099999;100000;ПАО "Ростелеком";Российская Федерация',
]
NEW_ROWS = [
    '301;2110000;2129999;20000;ПАО "Ростелеком";г. Улан-Удэ|Республика Бурятия;'
    "г. Улан-Удэ|г.о. город Улан-Удэ|Республика Бурятия;7707049388",
    '411;2000000;2009999;10000;ПАО "Ростелеком";р-н Оймяконский|Республика Саха /Якутия/;;7707049388',
    '916;0000000;9999999;10000000;ПАО "МТС";г. Москва и Московская область;;7740000076',
]


def write(tmp_path: Path, lines: list[str], encoding: str = "utf-8", name: str = "ABC-3xx.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def ranges(items: list[RegistryRange | RegistryRowError]) -> list[RegistryRange]:
    assert all(isinstance(i, RegistryRange) for i in items), items
    return [i for i in items if isinstance(i, RegistryRange)]


def test_old_header_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, [OLD_HEADER, *OLD_ROWS])
    result = ranges(list(iter_registry(path)))
    assert len(result) == 4
    first = result[0]
    assert first == RegistryRange(
        code="301",
        range_from=2100000,
        range_to=2109999,
        e164_from="+73012100000",
        e164_to="+73012109999",
        capacity=10000,
        carrier='ОАО "АСВТ"',
        region="г. Улан - Удэ|Республика Бурятия",
        subject="Республика Бурятия",
        timezone="Asia/Irkutsk",
        inn=None,
        line=2,
        territory=None,
    )
    assert [r.line for r in result] == [2, 3, 4, 5]
    assert result[2].e164_from == "+79000000000"
    assert result[2].e164_to == "+79000061999"
    assert (result[1].subject, result[1].timezone) == ("Москва", "Europe/Moscow")
    # Nation-wide ranges have no subject and no single zone.
    assert (result[3].subject, result[3].timezone) == (None, None)


def test_new_header_utf8_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "DEF-9xx.csv"
    path.write_bytes(codecs.BOM_UTF8 + "\n".join([NEW_HEADER, *NEW_ROWS]).encode("utf-8"))
    result = ranges(list(iter_registry(path)))
    assert [r.inn for r in result] == ["7707049388", "7707049388", "7740000076"]
    assert result[0].territory == "г. Улан-Удэ|г.о. город Улан-Удэ|Республика Бурятия"
    assert result[1].territory is None
    assert result[0].code == "301"  # the BOM did not leak into the first header cell
    # The district in the text picks Yakutia's eastern zone.
    assert (result[1].subject, result[1].timezone) == ("Республика Саха (Якутия)", "Asia/Ust-Nera")
    assert (result[2].subject, result[2].capacity) == ("Москва", 10000000)


def test_windows_1251(tmp_path: Path) -> None:
    path = write(tmp_path, [NEW_HEADER, *NEW_ROWS], encoding="cp1251")
    result = ranges(list(iter_registry(path)))
    assert result[0].carrier == 'ПАО "Ростелеком"'
    assert result[0].subject == "Республика Бурятия"
    assert len(result) == 3


def test_explicit_encoding_overrides_detection(tmp_path: Path) -> None:
    path = write(tmp_path, [OLD_HEADER, *OLD_ROWS], encoding="cp1251")
    result = ranges(list(iter_registry(path, encoding="cp1251")))
    assert result[0].carrier == 'ОАО "АСВТ"'


def test_old_tab_padded_format_and_header_variants(tmp_path: Path) -> None:
    lines = [
        "ABC/DEF ; от ; ДО ; Ёмкость ; ОПЕРАТОР ; регион ",
        '900\t;\t0000000\t;\t0000009\t;\t10\t;\tООО "Т2 Мобайл"\t;\tКраснодарский край',
        "",
        '901\t;\t1000000\t;\t1000009\t;\t10\t;\tПАО\u00a0"МегаФон"\t;\tг. Москва',
    ]
    result = ranges(list(iter_registry(write(tmp_path, lines))))
    assert [(r.code, r.range_from, r.carrier, r.line) for r in result] == [
        ("900", 0, 'ООО "Т2 Мобайл"', 2),
        ("901", 1000000, 'ПАО "МегаФон"', 4),
    ]


def test_reordered_columns_quoted_fields_and_lost_leading_zeros(tmp_path: Path) -> None:
    lines = [
        "Код;Оператор;Регион;От;До",
        '912;"ООО ""Рога; и копыта""";Свердловская обл.;0;9999',
    ]
    (item,) = ranges(list(iter_registry(write(tmp_path, lines))))
    assert item.carrier == 'ООО "Рога; и копыта"'
    assert item.e164_from == "+79120000000"
    assert item.e164_to == "+79120009999"
    assert item.capacity == 10000  # computed when the file has no capacity column
    assert item.timezone == "Asia/Yekaterinburg"


def test_bad_rows_are_reported_and_do_not_stop_the_file(tmp_path: Path) -> None:
    lines = [
        NEW_HEADER,
        '9x0;0000000;0000099;100;ООО "А";г. Москва;;1',
        '900;00000A0;0000099;100;ООО "А";г. Москва;;1',
        '900;0000200;0000100;101;ООО "А";г. Москва;;1',
        '900;0000000;0000099;99;ООО "А";г. Москва;;1',
        '900;0000000;0000099;1e2;ООО "А";г. Москва;;1',
        "900;0000000",
        '900;0000000;0000099;100;ООО "А";г. Москва;;1;extra;fields',
        '900;0000000;0000099;100;ООО "А";г. Москва;;1',
    ]
    items = list(iter_registry(write(tmp_path, lines)))
    errors = [i for i in items if isinstance(i, RegistryRowError)]
    assert [(e.line, e.column) for e in errors] == [
        (2, "АВС/ DEF"),
        (3, "От"),
        (4, "До"),
        (5, "Емкость"),
        (6, "Емкость"),
        (7, None),
        (8, None),
    ]
    assert "3 digits" in errors[0].reason
    assert "before its start" in errors[2].reason
    assert "does not match the range size 100" in errors[3].reason
    assert errors[0].text.startswith("9x0;0000000")
    good = [i for i in items if isinstance(i, RegistryRange)]
    assert [g.line for g in good] == [9]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"\r\n\r\n", "empty file"),
        ("Имя;Телефон\nИван;89123456789\n".encode(), "not a numbering registry table"),
        (b"PK\x03\x04\x14\x00\x00\x00", "XLSX"),
        (b"\x00\x01\x02binary\x00\n", "binary"),
        ("АВС/ DEF;От;До\n900;0000000;0000099\n".encode(), "Оператор"),  # required columns missing
    ],
)
def test_not_a_registry_raises_before_yielding(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "whatever.csv"
    path.write_bytes(content)
    iterator = iter_registry(path)
    with pytest.raises(RegistryFormatError, match=message) as info:
        next(iterator)
    assert "whatever.csv" in str(info.value)


def test_binary_stream_input_is_not_closed() -> None:
    stream = io.BytesIO("\n".join([OLD_HEADER, *OLD_ROWS]).encode("cp1251"))
    result = ranges(list(iter_registry(stream)))
    assert len(result) == 4
    assert result[0].carrier == 'ОАО "АСВТ"'
    assert not stream.closed


def test_text_stream_is_rejected_with_a_clear_error() -> None:
    with pytest.raises(TypeError, match="binary"):
        next(iter_registry(io.StringIO(OLD_HEADER)))  # type: ignore[arg-type]


class CountingStream(io.RawIOBase):
    """A large generated registry that records how much of it has been read."""

    def __init__(self, rows: int) -> None:
        super().__init__()
        body = "".join(
            f'9{i % 100:02d};{i % 1000 * 10000:07d};{i % 1000 * 10000 + 9999:07d};10000;ПАО "МТС";'
            "г. Москва и Московская область;;7740000076\n"
            for i in range(rows)
        )
        self._data = io.BytesIO((NEW_HEADER + "\n" + body).encode("utf-8"))
        self.size = len(self._data.getbuffer())
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._data.readinto(buffer)
        self.bytes_read += n
        return n


def test_streaming_reads_lazily() -> None:
    stream = CountingStream(100_000)
    assert stream.size > 10_000_000
    iterator = iter_registry(stream)
    first = next(iterator)
    assert isinstance(first, RegistryRange)
    assert stream.bytes_read < 512 * 1024  # the sample plus a buffer, not the whole file
    iterator.close()
    assert not stream.closed


def test_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    row = '916;{:07d};{:07d};100;ПАО "МТС";г. Москва и Московская область;;7740000076'

    def peak_for(rows: int) -> tuple[int, int]:
        path = write(
            tmp_path,
            [NEW_HEADER, *(row.format(i * 100, i * 100 + 99) for i in range(rows))],
            name=f"DEF-{rows}.csv",
        )
        tracemalloc.start()
        try:
            count = sum(1 for item in iter_registry(path) if isinstance(item, RegistryRange))
            return count, tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small_count, small_peak = peak_for(2_000)
    big_count, big_peak = peak_for(20_000)
    assert (small_count, big_count) == (2_000, 20_000)
    # 10x the rows (~1.8 MB) must not need noticeably more memory than the small file.
    assert big_peak < small_peak + 256 * 1024
    assert big_peak < 1024 * 1024


def test_a_range_naming_subjects_with_different_clocks_gets_no_zone(tmp_path: Path) -> None:
    path = write(tmp_path, [
        OLD_HEADER,
        '914;2300000;2399999;100000;ПАО "МегаФон";Магаданская обл. и Чукотский АО',
        '978;0000000;0999999;1000000;ООО "К-Телеком";Республика Крым и г. Севастополь',
    ], encoding="cp1251", name="DEF-9xx.csv")
    magadan, crimea = ranges(list(iter_registry(path)))
    assert (magadan.subject, magadan.timezone) == ("Магаданская область", None)
    assert (crimea.subject, crimea.timezone) == ("Республика Крым", "Europe/Simferopol")
