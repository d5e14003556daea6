// Loads an ES module of src/dialer/web/static/ into node. They are .js files with no package.json saying they are
// ES modules (the browser needs none), which node before 22 reads as CommonJS: the source is imported from a data:
// URL instead, so any node from Debian's (18) on runs the tests. Only modules without imports of their own (the
// pure ones) load this way.
import { readFileSync } from "node:fs";

const STATIC = new URL("../../../src/dialer/web/static/", import.meta.url);

export async function loadStatic(name) {
  const source = readFileSync(new URL(name, STATIC), "utf8");
  return import("data:text/javascript;base64," + Buffer.from(source).toString("base64"));
}
