// Validates custom resources in rendered manifests against their published schemas, offline.
// Usage: node tools/validate-custom-resources.mjs FILE...
// Prints a JSON list of problems ([] when all is well). The kinds that may appear, and the npm
// schema package of each API group, are declared once in tools/custom-resources.json; any
// other kind is a problem. Groups declared with a local JSON "schema" instead of a package
// (no published one exists) are validated by the Python checks, and are an error here.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const DECLARED = JSON.parse(
  readFileSync(new URL("./custom-resources.json", import.meta.url), "utf8"),
);

const problems = [];
for (const file of process.argv.slice(2)) {
  for (const document of parseAllDocuments(readFileSync(file, "utf8"))) {
    const object = document.toJS();
    if (!object) continue;
    const where = { file, kind: object.kind, name: object.metadata?.name };
    const group = DECLARED[object.apiVersion];
    if (!group || !group.kinds.includes(object.kind)) {
      problems.push({ ...where, error: `no schema known for ${object.apiVersion} ${object.kind}` });
      continue;
    }
    if (!group.module) {
      problems.push({ ...where, error: `${object.apiVersion} has a local JSON schema, not a package` });
      continue;
    }
    const models = await import(group.module);
    const Model = models[object.kind];
    if (!Model) {
      problems.push({ ...where, error: `${group.package} has no model for ${object.kind}` });
      continue;
    }
    try {
      new Model(object).validate();
    } catch (error) {
      problems.push({ ...where, error: String(error.message ?? error) });
    }
  }
}
console.log(JSON.stringify(problems, null, 2));
