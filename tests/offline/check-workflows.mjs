#!/usr/bin/env node
// Checks GitHub Actions workflows: the schema checks of @action-validator/core (the library
// behind the action-validator CLI), plus this project's rules:
//   * every `uses:` of a remote action is pinned to a full 40-hex commit SHA;
//   * a top-level `permissions:` block exists and grants no write access;
//   * every job has a timeout-minutes.
//
// usage: check-workflows.mjs FILE...
import fs from 'node:fs';
import * as actionValidator from '@action-validator/core';
import YAML from 'yaml';

const files = process.argv.slice(2);
if (!files.length) {
  console.error('usage: check-workflows.mjs FILE...');
  process.exit(2);
}
let failed = 0;
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  const errs = [];
  const result = actionValidator.validateWorkflow(text);
  for (const e of result.errors) errs.push(`schema: ${e.title || e.code}${e.detail ? `: ${e.detail}` : ''}${e.path ? ` at ${e.path}` : ''}`);
  let wf;
  try {
    wf = YAML.parse(text);
  } catch (e) {
    errs.push(`yaml: ${e.message}`);
  }
  if (wf && typeof wf === 'object') {
    const perms = wf.permissions;
    if (perms === undefined) errs.push('no top-level permissions');
    else if (perms === 'write-all' || (typeof perms === 'object' && Object.values(perms).includes('write'))) {
      errs.push('top-level permissions grant write access');
    }
    for (const [name, job] of Object.entries(wf.jobs || {})) {
      if (job['timeout-minutes'] === undefined) errs.push(`job ${name}: no timeout-minutes`);
      if (job.permissions && Object.values(job.permissions).includes('write')) errs.push(`job ${name}: write permissions`);
      for (const step of job.steps || []) {
        const uses = step.uses;
        if (!uses || uses.startsWith('./') || uses.startsWith('docker://')) continue;
        if (!/^[^@\s]+@[0-9a-f]{40}$/.test(uses)) errs.push(`job ${name}: "${uses}" is not pinned to a full commit SHA`);
      }
      if (job.uses && !job.uses.startsWith('./') && !/@[0-9a-f]{40}$/.test(job.uses)) errs.push(`job ${name}: "${job.uses}" is not pinned`);
    }
  }
  if (errs.length) {
    failed++;
    console.error(`check-workflows: ${file}: INVALID\n  ${errs.join('\n  ')}`);
  } else {
    console.log(`check-workflows: ${file}: valid`);
  }
}
process.exit(failed ? 1 : 0);
