// The import wizard's column guess by header similarity (src/dialer/web/static/mapping.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadStatic } from "./static.mjs";

const { guessMapping, similarity } = await loadStatic("mapping.js");

const FIELDS = ["Телефон", "ФИО", "Сумма долга", "Дата договора", "Город", "Email", "Номер договора"];

test("headers are mapped to the list's fields they resemble", () => {
  const headers = ["ФИО клиента", "Сумма долга, руб.", "E-mail", "Город проживания", "№ договора", "Примечание"];
  assert.deepEqual(guessMapping(headers, FIELDS), {
    "ФИО клиента": "ФИО",
    "Сумма долга, руб.": "Сумма долга",
    "E-mail": "Email",
    "Город проживания": "Город",
    "№ договора": "Номер договора",
  });
});

test("what the server mapped stays, and its field is not given to another column", () => {
  const headers = ["тел", "Телефон 2", "дата"];
  const mapped = guessMapping(headers, FIELDS, { "тел": "Телефон", "дата": "Дата договора" });
  assert.equal(mapped["тел"], "Телефон");
  assert.equal(mapped["дата"], "Дата договора");
  assert.equal(mapped["Телефон 2"], undefined);
});

test("each field goes to the column most like it", () => {
  const mapped = guessMapping(["Город", "Город (старый)"], FIELDS);
  assert.deepEqual(mapped, { "Город": "Город" });
});

test("case, ё and punctuation do not matter; unrelated words do not match", () => {
  assert.equal(similarity("ГОРОД", "город"), 1);
  assert.equal(similarity("Счёт", "счет"), 1);
  assert.ok(similarity("Комментарий", "Город") < 0.55);
  assert.deepEqual(guessMapping(["Комментарий оператора", "Колонка 7"], FIELDS), {});
});
