// Values as the UI's language writes them: "12 345,67" and "25.12.2026" in Russian, "12,345.67" and "25/12/2026"
// in English (Intl with the page's language). No DOM, no requests, no imports: unit-tested with node
// (tests/web/js/format.test.mjs); app.js re-exports it.
//
//   fmtNumber(12345.67, "ru")              "12 345,67"  (grouped; as many decimals as the value has, up to 6)
//   fmtNumber(x, lang, {decimals: 2})       exactly two decimals
//   fmtDate("2026-12-25", "ru")            "25.12.2026" (a calendar date: no time-zone shift)
//   fmtDateTimeIn(iso, lang, zone)          "25.12.2026, 14:05" in a time zone (the campaign's), or the browser's
//   fmtFieldValue(type, value, lang)        a contact field's value by its type (integer, decimal, date, datetime,
//                                           boolean → null: the caller says yes/no in its own words)
//   naturalCompare(a, b)                    "оператор 2" before "оператор 10"
//   idleText(reason, zone, t, lang)         why a running campaign places no calls ({code, params} of the live
//                                           floor's idle_reasons) in words: "supervisor.idle.<code>" filled in,
//                                           its times in the campaign's time zone

export function locale(lang) { return lang === "en" ? "en-GB" : "ru-RU"; }

export function fmtNumber(value, lang, { decimals = null } = {}) {
  if (value === null || value === undefined || value === "") return "";
  const n = typeof value === "number" ? value : Number(String(value).replace(",", "."));
  if (!Number.isFinite(n)) return String(value);
  const opts = decimals === null ? { maximumFractionDigits: 6 } : { minimumFractionDigits: decimals, maximumFractionDigits: decimals };
  return new Intl.NumberFormat(locale(lang), opts).format(n);
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export function fmtDate(value, lang) {
  if (!value) return "";
  const m = ISO_DATE.exec(String(value));
  if (m) {
    // a calendar date: built in UTC and shown in UTC, so no time zone moves it to the day before
    const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    return new Intl.DateTimeFormat(locale(lang), { day: "2-digit", month: "2-digit", year: "numeric", timeZone: "UTC" }).format(d);
  }
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return new Intl.DateTimeFormat(locale(lang), { day: "2-digit", month: "2-digit", year: "numeric" }).format(d);
}

export function fmtDateTimeIn(value, lang, zone = undefined, { seconds = false } = {}) {
  if (!value) return "";
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const opts = { day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit" };
  if (seconds) opts.second = "2-digit";
  try {
    return new Intl.DateTimeFormat(locale(lang), { ...opts, timeZone: zone || undefined }).format(d);
  } catch {
    return new Intl.DateTimeFormat(locale(lang), opts).format(d);  // a zone this browser does not know
  }
}

export function fmtFieldValue(type, value, lang) {
  if (value === null || value === undefined || value === "") return "";
  if (Array.isArray(value)) return value.map((v) => fmtFieldValue(type, v, lang)).join(", ");
  switch (type) {
    case "integer": return fmtNumber(value, lang, { decimals: 0 });
    case "decimal": {
      const n = Number(value);
      return fmtNumber(value, lang, { decimals: Number.isInteger(n) ? 0 : 2 });
    }
    case "date": return fmtDate(value, lang);
    case "datetime": return fmtDateTimeIn(value, lang);
    case "boolean": return null;
    default: return String(value);
  }
}

const collators = new Map();

export function naturalCompare(a, b, lang = "ru") {
  if (!collators.has(lang)) collators.set(lang, new Intl.Collator(locale(lang), { numeric: true, sensitivity: "base" }));
  return collators.get(lang).compare(String(a ?? ""), String(b ?? ""));
}

export function idleText(reason, zone, t, lang) {
  const p = reason.params || {};
  const when = (iso) => (iso ? fmtDateTimeIn(iso, lang, zone) : "—");
  const params = {
    next_open_at: when(p.next_open_at), next_window_at: when(p.next_window_at), next_retry_at: when(p.next_retry_at),
    skills: Array.isArray(p.skills) ? p.skills.join(", ") : (p.skills || "—"),
    limit: p.limit ?? "—", reason: p.reason || "—",
    abandon_pct: fmtNumber(p.abandon_pct, lang, { decimals: 2 }) + "%",
    cap_pct: fmtNumber(p.cap_pct, lang) + "%",
  };
  const id = "supervisor.idle." + reason.code;
  const text = t(id, params);
  return text === id ? reason.code : text;
}
