// Validates custom resources in rendered manifests against their published schemas, offline.
// Usage: node tools/validate-custom-resources.mjs FILE...
// Prints a JSON list of problems ([] when all is well); a kind without a known schema is one.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

// apiVersion -> module with one model class per kind (npm @kubernetes-models/*).
const MODELS = {
  "external-secrets.io/v1": "@kubernetes-models/external-secrets/external-secrets.io/v1",
};

const problems = [];
for (const file of process.argv.slice(2)) {
  for (const document of parseAllDocuments(readFileSync(file, "utf8"))) {
    const object = document.toJS();
    if (!object) continue;
    const where = { file, kind: object.kind, name: object.metadata?.name };
    const modulePath = MODELS[object.apiVersion];
    if (!modulePath) {
      problems.push({ ...where, error: `no schema known for ${object.apiVersion}` });
      continue;
    }
    const models = await import(modulePath);
    const Model = models[object.kind];
    if (!Model) {
      problems.push({ ...where, error: `no schema known for ${object.apiVersion} ${object.kind}` });
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
