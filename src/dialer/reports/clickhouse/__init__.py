"""The ClickHouse copy of attempts and operators' periods and the reports read from it (issue #14 §4)."""
