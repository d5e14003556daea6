"""Tests for dialer.tabular: sample files are generated on the fly in tmp_path."""

import codecs
import datetime as dt
import random
import time
import tracemalloc
import zipfile
from pathlib import Path

import openpyxl
import pytest

from dialer.tabular import NotATableError, Table, TableError, open_table


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
