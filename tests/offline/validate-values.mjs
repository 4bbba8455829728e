#!/usr/bin/env node
// Validates Helm values files against helm/rlog/values.schema.json with ajv (draft-07, as
// Helm does): values.yaml alone, and values.yaml with each override file merged over it the
// way Helm coalesces values (maps merge, anything else replaces, null deletes).
//
// usage: validate-values.mjs SCHEMA BASE_VALUES [OVERRIDE...]
import fs from 'node:fs';
import Ajv from 'ajv';
import { loadDocs } from './lib.mjs';

function merge(dst, src) {
  for (const [k, v] of Object.entries(src || {})) {
    if (v === null) delete dst[k];
    else if (v && typeof v === 'object' && !Array.isArray(v) && dst[k] && typeof dst[k] === 'object' && !Array.isArray(dst[k])) merge(dst[k], v);
    else dst[k] = v;
  }
  return dst;
}

const [schemaFile, baseFile, ...overrides] = process.argv.slice(2);
if (!schemaFile || !baseFile) {
  console.error('usage: validate-values.mjs SCHEMA BASE_VALUES [OVERRIDE...]');
  process.exit(2);
}
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
let validate;
try {
  validate = ajv.compile(JSON.parse(fs.readFileSync(schemaFile, 'utf8')));
} catch (e) {
  console.error(`validate-values: ${schemaFile}: ${e.message}`);
  process.exit(1);
}
const base = () => loadDocs(baseFile)[0] || {};
const cases = [[baseFile, base()]];
for (const f of overrides) cases.push([`${baseFile} + ${f}`, merge(base(), loadDocs(f)[0] || {})]);
let failed = 0;
for (const [name, values] of cases) {
  if (validate(values)) {
    console.log(`validate-values: ${name}: valid`);
  } else {
    failed++;
    console.error(`validate-values: ${name}: INVALID\n  ${validate.errors.map((e) => `${e.instancePath || '/'} ${e.message}${e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`).join('\n  ')}`);
  }
}
process.exit(failed ? 1 : 0);
