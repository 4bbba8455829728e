#!/usr/bin/env node
// A structural check of Helm templates that needs no Go: every {{ }} action closes, and every
// if/with/range/define/block has its {{ end }} (else/else if only inside if/with/range). It
// catches the most common template breakage where helm (or helmrender) cannot run.
//
// usage: check-templates.mjs FILE...
import fs from 'node:fs';

function check(text) {
  const errs = [];
  const stack = [];
  const re = /\{\{(-?)([\s\S]*?)(-?)\}\}/g;
  let last = 0;
  let m;
  const lineAt = (i) => text.slice(0, i).split('\n').length;
  while ((m = re.exec(text))) {
    const between = text.slice(last, m.index);
    if (between.includes('}}')) errs.push(`line ${lineAt(last + between.indexOf('}}'))}: "}}" without "{{"`);
    last = re.lastIndex;
    let body = m[2].trim();
    if (body.startsWith('/*')) {
      if (!body.endsWith('*/')) errs.push(`line ${lineAt(m.index)}: unterminated comment`);
      continue;
    }
    if (body.includes('{{')) errs.push(`line ${lineAt(m.index)}: "{{" inside an action`);
    body = body.replace(/"(?:[^"\\]|\\.)*"|`[^`]*`/g, '""');
    const word = body.split(/[\s(]/)[0];
    if (['if', 'with', 'range', 'define', 'block'].includes(word)) stack.push([word, lineAt(m.index)]);
    else if (word === 'else') {
      const top = stack[stack.length - 1];
      if (!top || !['if', 'with', 'range'].includes(top[0])) errs.push(`line ${lineAt(m.index)}: else outside if/with/range`);
    } else if (word === 'end') {
      if (!stack.pop()) errs.push(`line ${lineAt(m.index)}: end without an open block`);
    }
  }
  const tail = text.slice(last);
  if (tail.includes('{{')) errs.push(`line ${lineAt(last + tail.indexOf('{{'))}: "{{" never closed`);
  if (tail.includes('}}')) errs.push(`line ${lineAt(last + tail.indexOf('}}'))}: "}}" without "{{"`);
  for (const [word, line] of stack) errs.push(`line ${line}: ${word} never ended`);
  return errs;
}

const files = process.argv.slice(2);
let failed = 0;
for (const f of files) {
  const errs = check(fs.readFileSync(f, 'utf8'));
  if (errs.length) {
    failed++;
    console.error(`check-templates: ${f}: ${errs.join('; ')}`);
  }
}
if (!failed) console.log(`check-templates: ${files.length} templates balanced`);
process.exit(failed ? 1 : 0);
