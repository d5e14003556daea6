// Values as Russians write them (src/dialer/web/static/format.js): amounts "12 345,67", dates "25.12.2026", and
// natural order of names. Run by tests/web/test_js_units.py (node --test).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadStatic } from "./static.mjs";

const { fmtNumber, fmtDate, fmtDateTimeIn, fmtFieldValue, naturalCompare } = await loadStatic("format.js");

// Intl groups Russian thousands with a no-break space: compare with plain spaces
const plain = (s) => s.replace(/[\u00a0\u202f]/g, " ");

test("amounts in Russian and English", () => {
  assert.equal(plain(fmtNumber(12345.67, "ru")), "12 345,67");
  assert.equal(plain(fmtNumber("12345.67", "ru", { decimals: 2 })), "12 345,67");
  assert.equal(plain(fmtNumber(1500, "ru", { decimals: 2 })), "1 500,00");
  assert.equal(fmtNumber(12345.67, "en"), "12,345.67");
  assert.equal(fmtNumber(null, "ru"), "");
  assert.equal(fmtNumber("не число", "ru"), "не число");
});

test("calendar dates do not move with the time zone", () => {
  assert.equal(fmtDate("2026-12-25", "ru"), "25.12.2026");
  assert.equal(fmtDate("2026-01-01", "en"), "01/01/2026");
  assert.equal(fmtDate("", "ru"), "");
});

test("a moment in the campaign's time zone", () => {
  // 21:30 UTC is already the next day in Vladivostok (UTC+10)
  assert.equal(plain(fmtDateTimeIn("2026-12-25T21:30:00Z", "ru", "Asia/Vladivostok")), "26.12.2026, 07:30");
  assert.equal(plain(fmtDateTimeIn("2026-12-25T21:30:00Z", "ru", "Europe/Moscow")), "26.12.2026, 00:30");
  // a zone the browser does not know falls back to the local one instead of failing
  assert.ok(fmtDateTimeIn("2026-12-25T21:30:00Z", "ru", "Nowhere/Atlantis").includes("2026"));
});

test("contact field values by type", () => {
  assert.equal(plain(fmtFieldValue("decimal", 12345.67, "ru")), "12 345,67");
  assert.equal(plain(fmtFieldValue("decimal", 1500, "ru")), "1 500");
  assert.equal(plain(fmtFieldValue("integer", 1234567, "ru")), "1 234 567");
  assert.equal(fmtFieldValue("date", "2026-12-25", "ru"), "25.12.2026");
  assert.equal(fmtFieldValue("string", "12345", "ru"), "12345");  // an order number stays as written
  assert.equal(fmtFieldValue("phone", "+79161234567", "ru"), "+79161234567");
  assert.equal(fmtFieldValue("boolean", true, "ru"), null);
});

test("natural order: 1, 2, 10", () => {
  const names = ["Оператор 10", "Оператор 2", "оператор 1", "Анна"];
  assert.deepEqual([...names].sort((a, b) => naturalCompare(a, b)), ["Анна", "оператор 1", "Оператор 2", "Оператор 10"]);
});
