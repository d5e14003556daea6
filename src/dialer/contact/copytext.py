"""Values in PostgreSQL's ``COPY ... FROM STDIN`` text format, built as plain strings.

The importer writes its rows as one block of text per table and batch: a line per row, columns
separated by tabs, ``\\N`` for NULL, and backslash, tab, newline and carriage return escaped with a
backslash (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2). Building that
text while the rows are checked costs a fraction of encoding every value again in the driver.
"""

from __future__ import annotations

from collections.abc import Iterable

NULL = "\\N"
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def text(value: str) -> str:
    """A text column's value."""
    # Four scans of a short string cost a tenth of translate(), and the characters are rare.
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def optional(value: str | None) -> str:
    return NULL if value is None else text(value)


def boolean(value: bool) -> str:
    return "t" if value else "f"


def text_array(items: Iterable[str]) -> str:
    """A ``text[]`` value: every element quoted, so commas, braces and spaces inside need no care."""
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return text("{" + ",".join(quoted) + "}")
