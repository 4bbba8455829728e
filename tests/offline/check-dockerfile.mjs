#!/usr/bin/env node
// Checks a Dockerfile without a Docker engine: dockerfile-utils' validator (the one behind
// VS Code's Dockerfile support: unknown instructions, bad flags and arguments, ...) plus this
// project's rules: every stage FROM debian:bookworm(-slim), the final stage runs as the
// numeric non-root user 65532, installs no -dev package, exposes 8080 and 9091, and its
// entrypoint is /usr/local/bin/rlog.
//
// usage: check-dockerfile.mjs FILE
import fs from 'node:fs';
import { validate } from 'dockerfile-utils';
import { DockerfileParser } from 'dockerfile-ast';

const file = process.argv[2];
if (!file) {
  console.error('usage: check-dockerfile.mjs FILE');
  process.exit(2);
}
const text = fs.readFileSync(file, 'utf8');
const errs = [];
// Severity 1 = error, 2 = warning: both fail.
for (const d of validate(text)) {
  if (d.severity <= 2) errs.push(`line ${d.range.start.line + 1}: ${d.message}`);
}
const df = DockerfileParser.parse(text);
const froms = df.getFROMs();
if (!froms.length) errs.push('no FROM');
for (const f of froms) {
  const image = f.getImage() || '';
  const stages = froms.map((x) => x.getBuildStage()).filter(Boolean);
  if (!/^debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})?$/.test(image) && !stages.includes(image)) {
    errs.push(`line ${f.getRange().start.line + 1}: FROM ${image} is not debian:bookworm(-slim)`);
  }
}
// Instructions of the final stage.
const instructions = df.getInstructions();
const lastFrom = froms[froms.length - 1];
const final = instructions.filter((i) => i.getRange().start.line > (lastFrom ? lastFrom.getRange().start.line : -1));
const users = final.filter((i) => i.getKeyword() === 'USER');
const lastUser = users.length ? users[users.length - 1].getArgumentsContent().trim() : '';
if (!/^65532(:65532)?$/.test(lastUser)) errs.push(`final stage USER is "${lastUser}", want 65532 or 65532:65532`);
const runs = final.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() || '');
if (runs.some((r) => /\b[a-z0-9.+-]+-dev\b/.test(r))) errs.push('final stage installs a -dev package');
const exposed = final.filter((i) => i.getKeyword() === 'EXPOSE').flatMap((i) => i.getArgumentsContent().split(/\s+/));
for (const p of ['8080', '9091']) if (!exposed.some((e) => e.split('/')[0] === p)) errs.push(`final stage does not EXPOSE ${p}`);
const entry = final.filter((i) => i.getKeyword() === 'ENTRYPOINT').pop();
if (!entry || !entry.getArgumentsContent().includes('/usr/local/bin/rlog')) errs.push('final ENTRYPOINT is not /usr/local/bin/rlog');

if (errs.length) {
  console.error(`check-dockerfile: ${file}: INVALID\n  ${errs.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-dockerfile: ${file}: valid (${froms.length} stages)`);
