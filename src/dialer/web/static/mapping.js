// The import wizard's guess of which list field a file's column fills, by how alike the column's header and the
// field's name are ("ФИО клиента" → "ФИО", "Сумма долга, руб." → "Сумма долга", "E-mail" → "Email"). No DOM, no
// requests, no imports: unit-tested with node (tests/web/js/mapping.test.mjs).
//
//   guessMapping(headers, fieldNames, known = {}) -> {header: fieldName}
//     known: what the server already mapped (phone and date columns by their values); kept, and its fields are not
//     offered again. Each field fills one column at most; a header alike to no field stays unmapped.
//   similarity(a, b) -> 0..1

export const THRESHOLD = 0.55;

export function normalize(text) {
  return String(text ?? "").toLowerCase().replace(/ё/g, "е").replace(/№/g, " номер ")
    .replace(/[^\p{L}\p{N}]+/gu, " ").trim();
}

function bigrams(s) {
  const compact = s.replace(/ /g, "");
  const out = new Map();
  for (let i = 0; i < compact.length - 1; i++) {
    const g = compact.slice(i, i + 2);
    out.set(g, (out.get(g) || 0) + 1);
  }
  return out;
}

export function similarity(a, b) {
  const x = normalize(a), y = normalize(b);
  if (!x || !y) return 0;
  if (x === y) return 1;
  // one is the other's words plus more ("фио клиента" and "фио"): nearly as good as equal
  const wx = x.split(" "), wy = y.split(" ");
  const [short, long] = wx.length <= wy.length ? [wx, wy] : [wy, wx];
  if (short.every((w) => long.includes(w))) return 0.9 - 0.05 * (long.length - short.length);
  // otherwise the Dice coefficient of their letter pairs ("e mail" ~ "email", "телефон1" ~ "телефон")
  const gx = bigrams(x), gy = bigrams(y);
  let common = 0, total = 0;
  for (const [g, n] of gx) { common += Math.min(n, gy.get(g) || 0); total += n; }
  for (const n of gy.values()) total += n;
  return total ? (2 * common) / total : 0;
}

export function guessMapping(headers, fieldNames, known = {}) {
  const out = {};
  const taken = new Set();
  for (const h of headers) if (known[h]) { out[h] = known[h]; taken.add(known[h]); }
  // the best pairs first, so that a field goes to the column most like it
  const pairs = [];
  for (const h of headers) {
    if (out[h]) continue;
    for (const f of fieldNames) {
      if (taken.has(f)) continue;
      const score = similarity(h, f);
      if (score >= THRESHOLD) pairs.push([score, h, f]);
    }
  }
  pairs.sort((a, b) => b[0] - a[0]);
  for (const [, h, f] of pairs) {
    if (out[h] || taken.has(f)) continue;
    out[h] = f;
    taken.add(f);
  }
  return out;
}
