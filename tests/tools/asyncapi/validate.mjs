// Validates an AsyncAPI document with the official parser: prints every diagnostic and exits 1 on
// any error, warning, information or hint (the generated document must be clean), 2 on bad usage.
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "information", "hint"];

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs DOCUMENT.json");
  process.exit(2);
}
const text = await readFile(path, "utf8");
const { document, diagnostics } = await new Parser().parse(text, { source: path });
const counts = Object.fromEntries(SEVERITY.map((name) => [name, 0]));
for (const d of diagnostics) {
  const name = SEVERITY[d.severity] ?? String(d.severity);
  counts[name] = (counts[name] ?? 0) + 1;
  console.log(`${name} ${d.code} at /${(d.path ?? []).join("/")}: ${d.message}`);
}
console.log(`errors=${counts.error} warnings=${counts.warning} infos=${counts.information} hints=${counts.hint}`);
process.exit(document && diagnostics.length === 0 ? 0 : 1);
