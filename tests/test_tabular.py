"""Tests for dialer.tabular: sample files are generated on the fly in tmp_path."""

import codecs
import datetime as dt
import random
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import openpyxl
import pytest

from dialer.tabular import NotATableError, Table, TableError, TableLimitError, UploadLimits, open_table


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def read_all(path: Path, **kwargs: str) -> tuple[Table, list[tuple[int, list[str]]]]:
    with open_table(path, **kwargs) as table:
        return table, list(table.rows())


# --- CSV: encodings and delimiters -------------------------------------------------------------

RUSSIAN_EXCEL = (
    "ФИО;Телефон;Сумма, руб;Комиссия, руб;Комментарий;\r\n"
    '"Иванов; Иван";+7 912 345-67-89;1 234,56;12,30;"перезвонить\r\nпосле 18:00";\r\n'
    "Петров Пётр;89123456789;-12,5;0,5;\u00a0 VIP \u00a0;\r\n"
    "\r\n"
    ";;;;;\r\n"
    'Сидоров;79001112233;100;1,00;"сказал ""нет""";\r\n'
)


def test_russian_excel_export_cp1251_semicolons_and_decimal_commas(tmp_path: Path) -> None:
    path = write(tmp_path, "clients.csv", RUSSIAN_EXCEL.encode("cp1251"))
    table, rows = read_all(path)

    assert table.format == "csv"
    assert table.encoding == "cp1251"
    assert table.delimiter == ";"
    # The ";" at the end of each line is not an extra column.
    assert table.headers == ["ФИО", "Телефон", "Сумма, руб", "Комиссия, руб", "Комментарий"]
    assert table.header_row == 1
    assert table.warnings == []
    assert rows == [
        (2, ["Иванов; Иван", "+7 912 345-67-89", "1 234,56", "12,30", "перезвонить\nпосле 18:00"]),
        # The record above spans lines 2-3, so this one starts on line 4.
        (4, ["Петров Пётр", "89123456789", "-12,5", "0,5", "VIP"]),
        # Lines 5 (blank) and 6 (only separators) are skipped.
        (7, ["Сидоров", "79001112233", "100", "1,00", 'сказал "нет"']),
    ]


def test_utf8_bom_comma_csv(tmp_path: Path) -> None:
    text = 'name,phone,city\r\n"Smith, John",+1 212 555 0100,New York\r\nМария,+7 900 000 00 00,Москва\r\n'
    path = write(tmp_path, "export.csv", codecs.BOM_UTF8 + text.encode("utf-8"))
    table, rows = read_all(path)

    assert (table.encoding, table.delimiter) == ("utf-8-sig", ",")
    assert table.headers == ["name", "phone", "city"]  # no BOM glued to "name"
    assert rows == [
        (2, ["Smith, John", "+1 212 555 0100", "New York"]),
        (3, ["Мария", "+7 900 000 00 00", "Москва"]),
    ]


def test_utf8_without_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "u.csv", "Имя;Телефон\nЁж;1\n".encode())
    table, rows = read_all(path)
    assert (table.encoding, table.delimiter) == ("utf-8", ";")
    assert rows == [(2, ["Ёж", "1"])]


def test_tab_separated_file_named_txt(tmp_path: Path) -> None:
    path = write(tmp_path, "list.txt", b"name\tphone\tamount\nAnn\t79001234567\t1,234.50\nBob\t\t\n")
    table, rows = read_all(path)
    assert (table.format, table.delimiter, table.encoding) == ("csv", "\t", "utf-8")
    assert rows == [(2, ["Ann", "79001234567", "1,234.50"]), (3, ["Bob", "", ""])]


def test_utf16_unicode_text_export(tmp_path: Path) -> None:
    # Excel "Unicode text": UTF-16 LE with BOM, tab separated, CRLF.
    text = "Фамилия\tТелефон\tДата\r\nИванов\t79123456789\t01.03.2024\r\nO'Neil\t+1 555 0100\t02.03.2024\r\n"
    path = write(tmp_path, "unicode.txt", codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    table, rows = read_all(path)
    assert (table.encoding, table.delimiter) == ("utf-16", "\t")
    assert table.headers == ["Фамилия", "Телефон", "Дата"]
    assert rows == [
        (2, ["Иванов", "79123456789", "01.03.2024"]),
        (3, ["O'Neil", "+1 555 0100", "02.03.2024"]),
    ]


def test_utf16_without_bom(tmp_path: Path) -> None:
    path = write(tmp_path, "u.txt", "name\tphone\r\nЯна\t1\r\n".encode("utf-16-le"))
    table, rows = read_all(path)
    assert (table.encoding, table.delimiter) == ("utf-16-le", "\t")
    assert rows == [(2, ["Яна", "1"])]


def test_cp1251_detected_even_when_the_first_64k_are_ascii(tmp_path: Path) -> None:
    lines = ["name;phone"] + [f"user{i};7900{i:07d}" for i in range(8000)] + ["Пётр;79001112233"]
    path = write(tmp_path, "late.csv", ("\r\n".join(lines) + "\r\n").encode("cp1251"))
    assert path.stat().st_size > 100_000
    table, rows = read_all(path)
    assert table.encoding == "cp1251"
    assert rows[-1] == (8002, ["Пётр", "79001112233"])


@pytest.mark.parametrize(
    ("text", "delimiter", "headers"),
    [
        # Units in the header and one decimal comma per value: commas split consistently too.
        ("Сумма, руб;Комиссия, руб\n1 234,56;12,30\n7,5;0,10\n", ";", ["Сумма, руб", "Комиссия, руб"]),
        # More commas than semicolons on every line.
        ("Имя;Сумма;Долг\nА;1,5;2,5\nБ;3,25;4,75\n", ";", ["Имя", "Сумма", "Долг"]),
        # Semicolons inside quoted cells of a comma file.
        ('id,comment\n1,"a;b;c"\n2,"d;e"\n', ",", ["id", "comment"]),
        ("a|b|c\n1|2|3\n", "|", ["a", "b", "c"]),
        ("a\tb,c\n1\t2,3\n", "\t", ["a", "b,c"]),
    ],
)
def test_delimiter_detection(tmp_path: Path, text: str, delimiter: str, headers: list[str]) -> None:
    table, rows = read_all(write(tmp_path, "t.csv", text.encode()))
    assert table.delimiter == delimiter
    assert table.headers == headers
    assert all(len(cells) == len(headers) for _, cells in rows)


def test_excel_sep_hint_line(tmp_path: Path) -> None:
    table, rows = read_all(write(tmp_path, "t.csv", b"sep=,\r\na;b,c\r\n1;2,3\r\n"))
    assert table.delimiter == ","
    assert table.headers == ["a;b", "c"]
    assert table.header_row == 2
    assert rows == [(3, ["1;2", "3"])]


def test_single_column_phone_list(tmp_path: Path) -> None:
    table, rows = read_all(write(tmp_path, "phones.csv", b"phone\n+7 912 345-67-89\n\n89001112233\n"))
    assert table.delimiter is None
    assert table.headers == ["phone"]
    assert rows == [(2, ["+7 912 345-67-89"]), (4, ["89001112233"])]


def test_header_only_table_has_no_rows(tmp_path: Path) -> None:
    table, rows = read_all(write(tmp_path, "h.csv", b"name;phone\r\n"))
    assert table.headers == ["name", "phone"]
    assert rows == []


def test_leading_blank_lines_and_whitespace(tmp_path: Path) -> None:
    data = "\r\n  \r\n name ; phone \r\n\u00a0Ann\u00a0;\u200b 1 \r\n".encode()
    table, rows = read_all(write(tmp_path, "t.csv", data))
    assert table.header_row == 3
    assert table.headers == ["name", "phone"]
    assert rows == [(4, ["Ann", "1"])]


def test_duplicate_and_empty_headers_are_renamed_with_warnings(tmp_path: Path) -> None:
    data = b"Phone;;phone;Name;Phone;column_2\n1;2;3;4;5;6\n"
    table, rows = read_all(write(tmp_path, "t.csv", data))
    assert table.headers == ["Phone", "column_2_2", "phone_2", "Name", "Phone_3", "column_2"]
    assert len(table.warnings) == 3
    assert "Column 2 has no header" in table.warnings[0]
    assert "repeats the header 'phone'" in table.warnings[1]
    assert rows == [(2, ["1", "2", "3", "4", "5", "6"])]


def test_short_rows_are_padded_and_extra_cells_reported(tmp_path: Path) -> None:
    data = b"a,b,c\n1\n1,2,3,,\n1,2,3,4\n"
    table, rows = read_all(write(tmp_path, "t.csv", data))
    assert rows == [(2, ["1", "", ""]), (3, ["1", "2", "3"]), (4, ["1", "2", "3", "4"])]
    assert table.warnings == [
        "Row 4 has 4 cells but there are only 3 headers; values beyond the last header are ignored."
    ]


def test_unnamed_column_with_data_is_kept(tmp_path: Path) -> None:
    table, rows = read_all(write(tmp_path, "t.csv", b"a;b;\n1;2;x\n"))
    assert table.headers == ["a", "b", "column_3"]
    assert rows == [(2, ["1", "2", "x"])]


def test_broken_utf8_bytes_are_replaced_with_a_warning(tmp_path: Path) -> None:
    data = ("name;city\n" + "Анна;Москва\n" * 20).encode() + b"Bad;\xff\xfe\n"
    table, rows = read_all(write(tmp_path, "t.csv", data))
    assert table.encoding == "utf-8"
    assert rows[-1] == (22, ["Bad", "\ufffd\ufffd"])
    assert table.warnings == [
        "Row 22 contains bytes that are not valid utf-8; they were replaced with '\ufffd'."
    ]


def test_cp1251_is_not_mistaken_for_broken_utf8(tmp_path: Path) -> None:
    data = ("ФИО;Город\n" + "Щукин Эдуард;Ярославль\n" * 3).encode("cp1251")
    table, rows = read_all(write(tmp_path, "t.csv", data))
    assert table.encoding == "cp1251"
    assert rows[0] == (2, ["Щукин Эдуард", "Ярославль"])


def test_unclosed_quote_fails_with_row_number(tmp_path: Path) -> None:
    # Beyond the first rows, the damage is only found while streaming.
    data = b"a;b\n" + b"1;2\n" * 1000 + b'3;"never closed\n' + b"x" * 200_000 + b"\n"
    with open_table(write(tmp_path, "t.csv", data)) as table:
        rows = table.rows()
        for _ in range(1000):
            next(rows)
        with pytest.raises(TableError, match=r"^Row 1002: .*quote"):
            next(rows)


def test_unclosed_quote_in_the_first_rows_is_not_a_table(tmp_path: Path) -> None:
    data = b"a;b\n1;2\n" + b'3;"never closed\n' + b"x" * 200_000 + b"\n"
    with pytest.raises(NotATableError, match=r"Row 3: .*quote"):
        open_table(write(tmp_path, "t.csv", data))


def test_rows_can_be_read_twice_and_not_after_close(tmp_path: Path) -> None:
    table = open_table(write(tmp_path, "t.csv", b"a,b\n1,2\n3,4\n"))
    first = list(table.rows())
    assert first == list(table.rows()) == [(2, ["1", "2"]), (3, ["3", "4"])]
    unfinished = table.rows()
    next(unfinished)
    table.close()
    with pytest.raises(StopIteration):
        next(unfinished)
    with pytest.raises(ValueError, match="closed"):
        table.rows()


# --- not a table -------------------------------------------------------------------------------


PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.csv", b"", "is empty"),
        ("blank.csv", b"\r\n \r\n\t\n", "is empty"),
        ("image.csv", PNG_HEADER + bytes(200), "is a PNG image"),
        ("photo.csv", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "is a JPEG image"),
        ("doc.csv", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "is a PDF document"),
        ("garbage.csv", random.Random(42).randbytes(5000), "binary data"),
        ("garbage_small.csv", random.Random(7).randbytes(64), "binary data"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "Excel 97-2003"),
        ("one_line.csv", b"just some words\n", "single line"),
        ("one_cell.csv", "телефон".encode("cp1251"), "single line"),
        (
            "page.xls",
            b"<!DOCTYPE html><html><body><table><tr><td>1</td></tr></table></body></html>",
            "HTML page",
        ),
        ("broken.xlsx", b"PK\x03\x04" + bytes(100), "damaged or incomplete"),
    ],
)
def test_not_a_table(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = write(tmp_path, "upload.bin", data)
    with pytest.raises(NotATableError, match=message) as caught:
        open_table(path, filename=name)
    assert f"'{name}'" in str(caught.value)


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    path = tmp_path / "archive.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(NotATableError, match=r"ZIP archive but not an Excel \.xlsx workbook"):
        open_table(path)


def test_truncated_xlsx(tmp_path: Path) -> None:
    source = tmp_path / "good.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["a", "b"])  # type: ignore[union-attr]
    workbook.save(source)
    path = write(tmp_path, "cut.xlsx", source.read_bytes()[:300])
    with pytest.raises(NotATableError):
        open_table(path)


# --- XLSX --------------------------------------------------------------------------------------


def make_workbook(path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Клиенты"
    sheet.append([])  # leading empty row: the header is on row 2
    sheet.append([None, "Телефон", "Дата", "Визит", "VIP", "Сумма", "Индекс", "Имя", None])
    sheet.append(
        [
            None,
            79123456789.0,
            dt.date(2024, 3, 1),
            dt.datetime(2024, 3, 1, 10, 20),
            True,
            0.1 + 0.2,
            1234,
            " Анна ",
        ]
    )
    sheet.append([])
    sheet.append(
        [
            None,
            89001112233,
            dt.datetime(2024, 3, 2),
            dt.datetime(2024, 3, 2, 9, 5, 7),
            False,
            -1234.5,
            123456,
            None,
        ]
    )
    sheet.append([None, None, None, None, None, 1e20, None, "Борис"])
    for row in (3, 5):
        sheet.cell(row=row, column=3).number_format = "DD.MM.YYYY"
        sheet.cell(row=row, column=4).number_format = "DD.MM.YYYY HH:MM"
        sheet.cell(row=row, column=7).number_format = "000000"
    other = workbook.create_sheet("Архив")
    other.append(["phone", "note"])
    other.append(["1", "old"])
    workbook.save(path)


def test_xlsx_values_are_rendered_as_the_user_sees_them(tmp_path: Path) -> None:
    path = tmp_path / "clients.xlsx"
    make_workbook(path)
    table, rows = read_all(path)

    assert (table.format, table.encoding, table.delimiter) == ("xlsx", None, None)
    assert table.sheet == "Клиенты"
    assert table.header_row == 2
    # Empty column A is layout; so is the empty trailing header cell.
    assert table.headers == ["Телефон", "Дата", "Визит", "VIP", "Сумма", "Индекс", "Имя"]
    assert rows == [
        (3, ["79123456789", "2024-03-01", "2024-03-01T10:20:00", "true", "0.3", "001234", "Анна"]),
        (5, ["89001112233", "2024-03-02", "2024-03-02T09:05:07", "false", "-1234.5", "123456", ""]),
        (6, ["", "", "", "", "100000000000000000000", "", "Борис"]),
    ]
    assert table.warnings == ["Only the first sheet 'Клиенты' was read; other sheets: 'Архив'."]


def test_xlsx_named_sheet_and_content_beats_extension(tmp_path: Path) -> None:
    path = tmp_path / "clients.xlsx"
    make_workbook(path)
    renamed = write(tmp_path, "clients.csv", path.read_bytes())
    table, rows = read_all(renamed, sheet="Архив")
    assert table.format == "xlsx"
    assert (table.headers, rows) == (["phone", "note"], [(2, ["1", "old"])])
    with pytest.raises(NotATableError, match="has no sheet 'Nope'; its sheets are: 'Клиенты', 'Архив'"):
        open_table(renamed, sheet="Nope")


def test_xlsx_empty_first_sheet(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    openpyxl.Workbook().save(path)
    with pytest.raises(NotATableError, match=r"The sheet 'Sheet' of 'empty\.xlsx' contains no data"):
        open_table(path)


def test_xlsx_single_cell_is_not_a_table(tmp_path: Path) -> None:
    path = tmp_path / "one.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.append(["phone"])  # type: ignore[union-attr]
    workbook.save(path)
    with pytest.raises(NotATableError, match="single line"):
        open_table(path)


def test_xlsx_file_handle_is_released(tmp_path: Path) -> None:
    path = tmp_path / "c.xlsx"
    make_workbook(path)
    with open_table(path) as table:
        assert next(table.rows())[0] == 3
    # On every platform the file can be replaced only if nothing holds it open.
    path.unlink()
    assert not path.exists()


# --- streaming ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_csv_reading_memory_does_not_grow_with_file_size(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    rows_total = 200_000
    with path.open("w", encoding="cp1251", newline="") as f:
        f.write("Фамилия;Имя;Город;Телефон\r\n")
        for i in range(rows_total):
            f.write(f"Иванов{i};Иван;Москва;+7 900 {i:07d}\r\n")
    assert path.stat().st_size > 8_000_000

    tracemalloc.start()
    try:
        count = 0
        last: tuple[int, list[str]] | None = None
        with open_table(path) as table:
            for row in table.rows():
                count += 1
                last = row
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == rows_total
    assert last == (
        rows_total + 1,
        [f"Иванов{rows_total - 1}", "Иван", "Москва", f"+7 900 {rows_total - 1:07d}"],
    )
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    # The file itself is bigger than anything that was held in memory.
    assert peak < path.stat().st_size / 4


# --- files as 1C, CRMs and Excel really write them ----------------------------------------------


def test_title_lines_above_a_1c_csv_report_are_skipped(tmp_path: Path) -> None:
    data = (
        "Отчет: Контрагенты\r\nДата формирования: 01.02.2024\r\n\r\n"
        "Наименование;Телефон;Сумма долга\r\n"
        "Иванов;+7 (912) 345-67-89;1 234,56\r\n"
        "Петров;89123456790;10\r\n"
    ).encode("cp1251")
    table, rows = read_all(write(tmp_path, "1c.csv", data))
    assert (table.delimiter, table.header_row) == (";", 4)
    assert table.headers == ["Наименование", "Телефон", "Сумма долга"]
    assert rows == [(5, ["Иванов", "+7 (912) 345-67-89", "1 234,56"]), (6, ["Петров", "89123456790", "10"])]
    assert table.warnings == [
        "Rows 1-2 were skipped as a title above the table header: "
        "'Отчет: Контрагенты / Дата формирования: 01.02.2024'."
    ]


def test_title_row_of_an_excel_csv_padded_with_separators_is_skipped(tmp_path: Path) -> None:
    data = "Выгрузка клиентов;;\r\n;;\r\nФИО;Телефон;Город\r\nАнна;89123456789;Омск\r\n".encode("cp1251")
    table, rows = read_all(write(tmp_path, "t.csv", data))
    assert (table.headers, table.header_row) == (["ФИО", "Телефон", "Город"], 3)
    assert rows == [(4, ["Анна", "89123456789", "Омск"])]


def test_title_and_merged_cells_above_an_xlsx_table_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "report.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = "Выгрузка клиентов на 01.02.2024"
    sheet.merge_cells("A1:D1")
    sheet.append([])
    sheet.append(["ФИО", "Телефон", "Сумма", "Дата"])
    sheet.append(["Иванов", 79123456789, 10.5, dt.date(2024, 2, 1)])
    sheet.append(["Петров", "89123456790", None, None])
    workbook.save(path)
    table, rows = read_all(path)
    assert (table.headers, table.header_row) == (["ФИО", "Телефон", "Сумма", "Дата"], 3)
    assert rows == [(4, ["Иванов", "79123456789", "10.5", "2024-02-01"]), (5, ["Петров", "89123456790", "", ""])]
    assert table.warnings == ["Row 1 was skipped as a title above the table header: 'Выгрузка клиентов на 01.02.2024'."]


def test_a_short_header_over_data_is_still_the_header(tmp_path: Path) -> None:
    # Data under a header with an unnamed column: the header is not mistaken for a title.
    table, rows = read_all(write(tmp_path, "t.csv", b"phone\n89123456789;x\n89123456780;y\n"))
    assert (table.header_row, table.headers) == (1, ["phone"])
    assert rows == [(2, ["89123456789", "x"]), (3, ["89123456780", "y"])]
    assert table.warnings == [
        "Row 2 has 2 cells but there are only 1 headers; values beyond the last header are ignored."
    ]


def test_xlsx_hidden_first_sheet_is_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    workbook = openpyxl.Workbook()
    hidden = workbook.active
    assert hidden is not None
    hidden.title = "Справочник"
    hidden.append(["код", "значение"])
    hidden.append([1, 2])
    hidden.sheet_state = "hidden"
    visible = workbook.create_sheet("Клиенты")
    visible.append(["ФИО", "Телефон"])
    visible.append(["Иванов", "89123456789"])
    workbook.active = 1
    workbook.save(path)
    table, rows = read_all(path)
    assert (table.sheet, table.headers, rows) == ("Клиенты", ["ФИО", "Телефон"], [(2, ["Иванов", "89123456789"])])
    assert table.warnings == ["Only the first visible sheet 'Клиенты' was read; other sheets: 'Справочник' (hidden)."]
    assert read_all(path, sheet="Справочник")[0].headers == ["код", "значение"]


def test_xlsx_formatting_down_to_the_last_excel_row_is_read_quickly(tmp_path: Path) -> None:
    path = tmp_path / "used.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["ФИО", "Телефон"])
    sheet.append(["Иванов", "89123456789"])
    sheet.cell(row=1_048_576, column=1).number_format = "@"  # the "used range" reaches the last row
    workbook.save(path)
    started = time.monotonic()
    _, rows = read_all(path)
    assert rows == [(2, ["Иванов", "89123456789"])]
    # A million empty rows used to take several seconds (a warnings filter entered per row).
    assert time.monotonic() - started < 3


def test_word_document_renamed_to_csv_is_named(tmp_path: Path) -> None:
    path = tmp_path / "клиенты.csv"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(NotATableError, match=r"'клиенты\.csv' is a Word document \(\.docx\), not a table"):
        open_table(path)


# --- hostile uploads: zip bombs, giant cells, endless rows (DIALER_UPLOAD_* limits) ------------

SHEET_NS = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SHEET_HEAD = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="' + SHEET_NS
              + b'"><sheetData>')
SHEET_TAIL = b"</sheetData></worksheet>"
MB = 1024 * 1024


def inline_row(number: int, *values: str) -> bytes:
    cells = b"".join(b'<c r="%s%d" t="inlineStr"><is><t>%s</t></is></c>' % (chr(65 + i).encode(), number,
                                                                               v.encode())
                     for i, v in enumerate(values))
    return b'<row r="%d">%s</row>' % (number, cells)


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    """``total`` bytes of ``piece`` repeated, a few MB at a time (the test never holds the bomb)."""
    block = piece * max(1, (4 * MB) // len(piece))
    left = total
    while left > 0:
        chunk = block[:left]
        left -= len(chunk)
        yield chunk


def hostile_xlsx(path: Path, sheet: Iterable[bytes], *, shared: Iterable[bytes] | None = None) -> Path:
    """A real (openpyxl-made) workbook whose sheet XML, and maybe shared strings, are streamed in from
    ``sheet``/``shared``: huge when unpacked, small on disk."""
    base = path.with_name("base-" + path.name)
    workbook = openpyxl.Workbook()
    active = workbook.active
    assert active is not None
    active.append(["Телефон", "Имя"])
    workbook.save(base)
    replaced = {"xl/worksheets/sheet1.xml": sheet}
    if shared is not None:
        replaced["xl/sharedStrings.xml"] = shared
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "[Content_Types].xml" and shared is not None:
                # openpyxl writes inline strings; declare a shared strings part.
                data = data.replace(b"</Types>", b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                                    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>')
            if info.filename not in replaced:
                out.writestr(info, data)
        for member, chunks in replaced.items():
            with out.open(member, "w") as part:
                for chunk in chunks:
                    part.write(chunk)
    base.unlink()
    return path


def set_declared_size(path: Path, member: str, size: int) -> None:
    """Make the ZIP directory (and the local header) lie about ``member``'s unpacked size."""
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at != -1:
        name_len = int.from_bytes(data[at + 28: at + 30], "little")
        if data[at + 46: at + 46 + name_len] == member.encode():
            data[at + 24: at + 28] = size.to_bytes(4, "little")
            local = int.from_bytes(data[at + 42: at + 46], "little")
            data[local + 22: local + 26] = size.to_bytes(4, "little")
            path.write_bytes(bytes(data))
            return
        at = data.find(b"PK\x01\x02", at + 46)
    raise AssertionError(f"{member} not in {path}")


class RssPeak:
    """Peak growth of the process's resident memory while the block runs (sampled every 2 ms)."""

    def __enter__(self) -> "RssPeak":
        import psutil

        self._process = psutil.Process()
        self._base = self._process.memory_info().rss
        self._peak = self._base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._peak = max(self._peak, self._process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self._peak - self._base) / MB


def read_everything(path: Path, limits: UploadLimits | None = None) -> int:
    with open_table(path, limits=limits) as table:
        return sum(1 for _ in table.rows())


def test_xlsx_giant_inline_cell_bomb_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    # A few hundred KB on disk, a 600 MB cell unpacked (openpyxl built it whole: 3 GB of RSS).
    sheet = [SHEET_HEAD, inline_row(1, "Телефон", "Имя"),
             b'<row r="2"><c r="A2" t="inlineStr"><is><t>79001112233</t></is></c>'
             b'<c r="B2" t="inlineStr"><is><t>', *repeated(b"A", 600 * MB), b"</t></is></c></row>", SHEET_TAIL]
    path = hostile_xlsx(tmp_path / "bomb.xlsx", sheet)
    assert path.stat().st_size < 3 * MB
    with RssPeak() as memory, pytest.raises(NotATableError) as refused:
        open_table(path)
    message = str(refused.value)
    assert "The sheet 'Sheet' of 'bomb.xlsx', after row 1" in message
    assert "DIALER_UPLOAD_MAX_CELL_CHARS" in message
    assert memory.growth_mb < 200


def test_xlsx_giant_cell_after_the_first_rows_stops_reading_rows(tmp_path: Path) -> None:
    rows = [inline_row(n, f"7900{n:07d}", "Имя") for n in range(2, 600)]
    sheet = [SHEET_HEAD, inline_row(1, "Телефон", "Имя"), *rows,
             b'<row r="600"><c r="A600" t="inlineStr"><is><t>', *repeated(b"7", 300 * MB), b"</t></is></c></row>",
             SHEET_TAIL]
    path = hostile_xlsx(tmp_path / "late.xlsx", sheet)
    with RssPeak() as memory, open_table(path) as table:
        read: list[int] = []
        with pytest.raises(TableLimitError, match=r"^The sheet 'Sheet' of 'late.xlsx', after row 599: .*"
                                                  r"DIALER_UPLOAD_MAX_CELL_CHARS"):
            for number, _ in table.rows():
                read.append(number)
    assert read[-1] <= 599
    assert memory.growth_mb < 200


def test_xlsx_cell_over_the_cell_limit_names_row_and_column(tmp_path: Path) -> None:
    long = "Ж" * 40_000  # within the XML a row may take, over the 32,767 characters of a cell
    path = hostile_xlsx(tmp_path / "long.xlsx", [SHEET_HEAD, inline_row(1, "Телефон", "Имя"),
                                                 inline_row(2, "79001112233", "Анна"),
                                                 inline_row(3, "79001112234", long), SHEET_TAIL])
    with pytest.raises(NotATableError, match=r"^The sheet 'Sheet' of 'long.xlsx': the cell in row 3, column 2 \(B\) "
                                             r"holds 40,000 characters; a cell may hold at most 32,767 \(the limit, "
                                             r"DIALER_UPLOAD_MAX_CELL_CHARS\)"):
        open_table(path)
    # A smaller limit applies as given; a cell of exactly the limit is fine.
    assert read_everything(path, UploadLimits(max_cell_chars=40_000)) == 2


def test_xlsx_giant_shared_string_bomb_is_refused_on_open(tmp_path: Path) -> None:
    shared = [b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="' + SHEET_NS + b'" count="2" uniqueCount="2">'
              b"<si><t>phone</t></si><si><t>", *repeated(b"B", 600 * MB), b"</t></si></sst>"]
    sheet = [SHEET_HEAD, b'<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>', SHEET_TAIL]
    path = hostile_xlsx(tmp_path / "strings.xlsx", sheet, shared=shared)
    with RssPeak() as memory, pytest.raises(NotATableError, match=r"^'strings.xlsx': a text of the workbook's shared "
                                                                  r"strings .*DIALER_UPLOAD_MAX_CELL_CHARS"):
        open_table(path)
    assert memory.growth_mb < 200


def test_xlsx_row_count_bomb_stops_at_the_row_limit(tmp_path: Path) -> None:
    # 6.1 M rows of the same number in ~2 MB: refused at the limit instead of read to the end.
    row = inline_row(0, "79001112233", "Имя").replace(b' r="0"', b"").replace(b' r="A0"', b"").replace(b' r="B0"', b"")
    sheet = [SHEET_HEAD, inline_row(1, "Телефон", "Имя"), *repeated(row, 6_100_000 * len(row)), SHEET_TAIL]
    path = hostile_xlsx(tmp_path / "rows.xlsx", sheet)
    assert path.stat().st_size < 5 * MB
    limits = UploadLimits(max_rows=20_000)
    with RssPeak() as memory, open_table(path, limits=limits) as table:
        read = 0
        with pytest.raises(TableLimitError, match=r"^The sheet 'Sheet' of 'rows.xlsx' has more than 20,000 rows "
                                                  r"\(the limit, DIALER_UPLOAD_MAX_ROWS; .*stopped at row 20,001"):
            for _ in table.rows():
                read += 1
    assert read == 19_999
    assert memory.growth_mb < 200


def test_xlsx_far_row_number_is_refused_at_the_default_row_limit(tmp_path: Path) -> None:
    # One row numbered 1,000,000,000: openpyxl makes up every empty row before it.
    sheet = [SHEET_HEAD, inline_row(1, "Телефон", "Имя"), inline_row(2, "79001112233", "Анна"),
             inline_row(1_000_000_000, "79001112234", "Борис"), SHEET_TAIL]
    path = hostile_xlsx(tmp_path / "far.xlsx", sheet)
    with pytest.raises(NotATableError, match=r"^The sheet 'Sheet' of 'far.xlsx' has more than 1,500,000 rows "
                                             r".*stopped at row 1,500,001"):
        read_everything(path, UploadLimits())


def test_xlsx_cell_beyond_the_column_limit(tmp_path: Path) -> None:
    far = b'<row r="2"><c r="A2" t="inlineStr"><is><t>79001112233</t></is></c><c r="XFD2" s="0"/></row>'
    path = hostile_xlsx(tmp_path / "wide.xlsx", [SHEET_HEAD, inline_row(1, "Телефон", "Имя"), far, SHEET_TAIL])
    with pytest.raises(NotATableError, match=r"row 2 has a cell in column 16,384 \(XFD\); at most 500 columns .*"
                                             r"DIALER_UPLOAD_MAX_COLUMNS"):
        open_table(path)


def test_xlsx_huge_sheet_xml_without_rows_is_refused(tmp_path: Path) -> None:
    # 600 MB of markup before the rows (whitespace, unknown elements): no row ever starts.
    sheet = [b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="' + SHEET_NS + b'"><sheetPr>',
             *repeated(b"<junk a='1'/>", 600 * MB), b"</sheetPr><sheetData>", inline_row(1, "a", "b"), SHEET_TAIL]
    path = hostile_xlsx(tmp_path / "junk.xlsx", sheet)
    with RssPeak() as memory, pytest.raises(NotATableError, match=r"without a new row"):
        open_table(path)
    assert memory.growth_mb < 200


@pytest.mark.parametrize("declared", [1000, 0xFFFF_FFF0])
def test_xlsx_whose_zip_directory_lies_about_sizes(tmp_path: Path, declared: int) -> None:
    sheet = [SHEET_HEAD, inline_row(1, "Телефон", "Имя"),
             b'<row r="2"><c r="A2" t="inlineStr"><is><t>', *repeated(b"9", 200 * MB), b"</t></is></c></row>",
             SHEET_TAIL]
    path = hostile_xlsx(tmp_path / "liar.xlsx", sheet)
    set_declared_size(path, "xl/worksheets/sheet1.xml", declared)
    with RssPeak() as memory, pytest.raises(NotATableError) as refused:
        read_everything(path)
    if declared > UploadLimits().max_unpacked_bytes:
        assert "'liar.xlsx' declares 4,096 MB unpacked in its ZIP directory" in str(refused.value)
        assert "DIALER_UPLOAD_MAX_UNPACKED_MB" in str(refused.value)
    else:  # what is unpacked stops at the declared size, and the archive's checksum fails
        assert "damaged" in str(refused.value)
    assert memory.growth_mb < 200


def test_xlsx_declared_unpacked_size_is_checked_before_reading(tmp_path: Path) -> None:
    rows = [inline_row(n, f"7900{n:07d}", "Имя Фамилия") for n in range(2, 40_000)]
    path = hostile_xlsx(tmp_path / "big.xlsx", [SHEET_HEAD, inline_row(1, "Телефон", "Имя"), *rows, SHEET_TAIL])
    with zipfile.ZipFile(path) as archive:
        total = sum(info.file_size for info in archive.infolist())
    assert read_everything(path, UploadLimits(max_unpacked_bytes=total)) == 39_998
    with pytest.raises(NotATableError, match=r"^'big.xlsx' declares 6 MB unpacked in its ZIP directory; an upload "
                                             r"may take at most 6 MB unpacked \(the limit"):
        open_table(path, limits=UploadLimits(max_unpacked_bytes=total - 1))


def test_xlsx_part_read_whole_is_counted_while_unpacked(tmp_path: Path) -> None:
    # 300 MB of styles (openpyxl reads that part whole into a tree) within the 2 GB the archive may
    # declare: the read stops at 32 MB.
    path = hostile_xlsx(tmp_path / "styles.xlsx", [SHEET_HEAD, inline_row(1, "a", "b"), SHEET_TAIL])
    bomb = tmp_path / "styles-bomb.xlsx"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
        for info in source.infolist():
            if info.filename != "xl/styles.xml":
                out.writestr(info, source.read(info))
        with out.open("xl/styles.xml", "w") as part:
            part.write(b'<?xml version="1.0"?><styleSheet xmlns="' + SHEET_NS + b'">')
            for chunk in repeated(b" ", 300 * MB):
                part.write(chunk)
            part.write(b"</styleSheet>")
    with RssPeak() as memory, pytest.raises(NotATableError, match=r"^'styles-bomb.xlsx': the part 'xl/styles.xml' "
                                                                  r"unpacks to more than 32 MB"):
        open_table(bomb)
    assert memory.growth_mb < 200


def test_zip_with_too_many_entries_is_refused_before_reading_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "many.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(10_001):
            archive.writestr(f"x/{n}", b"")
    with pytest.raises(NotATableError, match=r"ZIP archive of 10,001 entries"):
        open_table(path)


def test_xlsx_with_prefixed_tags_and_big_sections_after_the_rows_reads_normally(tmp_path: Path) -> None:
    # Some producers write "x:" prefixes; hyperlinks and merged cells after the rows are skipped unread.
    ns = b'xmlns:x="' + SHEET_NS + b'"'
    rows = b"".join(inline_row(n, f"7900{n:07d}", "Имя").replace(b"<", b"<x:").replace(b"<x:/", b"</x:")
                    for n in range(1, 2001))
    merges = b"".join(b'<x:mergeCell ref="C%d:D%d"/>' % (n, n) for n in range(1, 200_000))
    sheet = [b'<?xml version="1.0"?><x:worksheet ' + ns + b"><x:sheetData>", rows, b"</x:sheetData>",
             b'<x:mergeCells count="199999">', merges, b"</x:mergeCells></x:worksheet>"]
    path = hostile_xlsx(tmp_path / "prefixed.xlsx", sheet)
    with open_table(path) as table:
        assert table.headers == ["79000000001", "Имя"]
        assert list(table.rows())[-1] == (2000, ["79000002000", "Имя"])


def test_xlsx_row_just_under_the_xml_bound_is_read(tmp_path: Path) -> None:
    # 15 cells of 30,000 characters: ~450 KB of XML in one row is a (large) legitimate row.
    big = inline_row(2, *["Щ" * 15_000] * 15)
    assert 400_000 < len(big) < UploadLimits().max_xml_gap
    path = hostile_xlsx(tmp_path / "wide-row.xlsx", [SHEET_HEAD, inline_row(1, *[f"h{i}" for i in range(15)]), big,
                                                     SHEET_TAIL])
    with open_table(path) as table:
        assert [len(c) for _, cells in table.rows() for c in cells] == [15_000] * 15


def test_csv_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path, "big.csv", b"phone;name\n" + b"79001112233;Anna\n" * 1000)
    with pytest.raises(NotATableError, match=r"^'big.csv' takes 17,011 bytes; an upload may take at most 10,000 "
                                             r"bytes unpacked \(the limit, DIALER_UPLOAD_MAX_UNPACKED_MB\)"):
        open_table(path, limits=UploadLimits(max_unpacked_bytes=10_000))


def test_csv_giant_line_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "line.csv"
    with path.open("wb") as f:
        f.write(b"phone;name\n79001112233;Anna\n" * 300 + b"79001112234;")
        for chunk in repeated("Ж".encode(), 300 * MB):
            f.write(chunk)
        f.write(b"\n")
    with RssPeak() as memory, open_table(path) as table:  # noqa: SIM117
        with pytest.raises(TableLimitError, match=r"^Row 601 of 'line.csv' goes on for more than 1,048,576 characters"):
            for _ in table.rows():
                pass
    assert memory.growth_mb < 200


def test_csv_endless_quoted_record_is_refused(tmp_path: Path) -> None:
    # Every line ends inside quotes, so the record never ends: cells pile up line after line.
    path = write(tmp_path, "quotes.csv", b"phone;name\n79001112233;Anna\n" + b'"x\n";' * 400_000 + b"\n")
    with pytest.raises(NotATableError, match=r"^Row 3 of 'quotes.csv' goes on for more than 1,048,576 characters "
                                             r"\(to line 209,718\): probably a quote"):
        open_table(path)


def test_csv_cell_rows_and_columns_limits(tmp_path: Path) -> None:
    long = write(tmp_path, "cell.csv", ("phone;name\n79001112233;Anna\n79001112234;" + "Ж" * 40_000 + "\n").encode())
    with pytest.raises(NotATableError, match=r"^'cell.csv': the cell in row 3, column 2 \(B\) holds 40,000 characters"):
        open_table(long)

    rows = write(tmp_path, "rows.csv", b"phone;name\n" + b"79001112233;Anna\n" * 5000)
    with open_table(rows, limits=UploadLimits(max_rows=1000)) as table, \
            pytest.raises(TableLimitError, match=r"^'rows.csv' has more than 1,000 rows .*stopped at row 1,001"):
        list(table.rows())

    # Empty cells beyond the limit (a CSV export of a formatted range) are fine; a value there is not.
    padded = "phone;name" + ";" * 700 + "\n" + ("79001112233;Anna" + ";" * 700 + "\n") * 3
    assert read_everything(write(tmp_path, "padded.csv", padded.encode())) == 3
    wide = "phone;name\n" + "79001112233;Anna" + ";" * 600 + "x\n"
    with pytest.raises(NotATableError, match=r"row 2 has a cell in column 602 \(WD\); at most 500 columns"):
        open_table(write(tmp_path, "wide.csv", wide.encode()))


def test_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dialer.config import Settings, get_settings

    monkeypatch.setenv("DIALER_UPLOAD_MAX_ROWS", "300")
    monkeypatch.setenv("DIALER_UPLOAD_MAX_UNPACKED_MB", "1")
    settings = Settings()
    assert UploadLimits.of(settings) == UploadLimits(max_rows=300, max_unpacked_bytes=MB)
    get_settings.cache_clear()
    try:
        path = write(tmp_path, "rows.csv", b"phone;name\n" + b"79001112233;Anna\n" * 500)
        with open_table(path) as table, pytest.raises(TableLimitError, match="more than 300 rows"):
            list(table.rows())
    finally:
        get_settings.cache_clear()
