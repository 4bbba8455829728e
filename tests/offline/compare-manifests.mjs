#!/usr/bin/env node
// Compares two sets of Kubernetes objects (e.g. `helm template` output and `kubectl kustomize
// k8s/`) after parsing: object order, key order, comments and quoting do not matter; any
// missing, extra or different object does. Prints the differing fields.
//
// usage: compare-manifests.mjs A B     (each: a YAML file, '-' for stdin, or a directory
//                                       holding kustomization.yaml)
import fs from 'node:fs';
import { loadDocs, keyOf, canonical, kustomizeLite } from './lib.mjs';

function load(arg) {
  if (arg !== '-' && fs.statSync(arg).isDirectory()) return kustomizeLite(arg);
  return loadDocs(arg);
}

function index(objs, name) {
  const m = new Map();
  for (const o of objs) {
    const k = keyOf(o);
    if (m.has(k)) throw new Error(`${name}: ${k} appears twice`);
    m.set(k, o);
  }
  return m;
}

function diff(a, b, p, out) {
  if (canonical(a) === canonical(b)) return;
  const isObj = (v) => v && typeof v === 'object' && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) diff(a[k], b[k], `${p}.${k}`, out);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((v, i) => diff(v, b[i], `${p}[${i}]`, out));
    return;
  }
  const show = (v) => (v === undefined ? '(absent)' : JSON.stringify(v).slice(0, 300));
  out.push(`${p}: ${show(a)} != ${show(b)}`);
}

const [fa, fb] = process.argv.slice(2);
if (!fa || !fb) {
  console.error('usage: compare-manifests.mjs A B');
  process.exit(2);
}
try {
  const A = index(load(fa), fa);
  const B = index(load(fb), fb);
  const problems = [];
  for (const k of A.keys()) if (!B.has(k)) problems.push(`only in ${fa}: ${k}`);
  for (const k of B.keys()) if (!A.has(k)) problems.push(`only in ${fb}: ${k}`);
  for (const [k, a] of A) {
    if (!B.has(k)) continue;
    const d = [];
    diff(a, B.get(k), '', d);
    if (d.length) problems.push(`${k} differs:\n    ${d.join('\n    ')}`);
  }
  if (problems.length) {
    console.error(`compare-manifests: ${fa} and ${fb} differ:\n  ${problems.join('\n  ')}`);
    console.error('(regenerate k8s/ with tests/offline/gen-k8s.sh after changing the chart)');
    process.exit(1);
  }
  console.log(`compare-manifests: ${A.size} objects identical in ${fa} and ${fb}`);
} catch (e) {
  console.error(`compare-manifests: ${e.message}`);
  process.exit(1);
}
