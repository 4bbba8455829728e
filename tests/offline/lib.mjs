// Shared helpers of the offline checks: YAML streams in, Kubernetes objects out.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

// Every non-empty document of a YAML stream (file path or '-' for stdin), as plain objects,
// each with a `__source` label "file#index" (not enumerable, so comparisons ignore it).
export function loadDocs(file) {
  const text = file === '-' ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  const docs = [];
  YAML.parseAllDocuments(text, { prettyErrors: true }).forEach((doc, i) => {
    if (doc.errors.length) {
      throw new Error(`${file}: document ${i}: ${doc.errors.map((e) => e.message).join('; ')}`);
    }
    const obj = doc.toJS({ maxAliasCount: -1 });
    if (obj === null || obj === undefined) return;
    Object.defineProperty(obj, '__source', { value: `${file}#${i}`, enumerable: false });
    docs.push(obj);
  });
  return docs;
}

// What `kubectl kustomize DIR` prints for the subset of kustomize that k8s/ uses (resources
// and namespace). Anything else in kustomization.yaml is an error, not silently ignored.
export function kustomizeLite(dir) {
  const kfile = path.join(dir, 'kustomization.yaml');
  const [k] = loadDocs(kfile);
  const allowed = new Set(['apiVersion', 'kind', 'namespace', 'resources']);
  for (const key of Object.keys(k)) {
    if (!allowed.has(key)) throw new Error(`${kfile}: kustomize-lite does not support "${key}"`);
  }
  if (k.kind !== 'Kustomization') throw new Error(`${kfile}: kind is not Kustomization`);
  const out = [];
  for (const r of k.resources || []) {
    for (const obj of loadDocs(path.join(dir, r))) {
      if (k.namespace) {
        obj.metadata = obj.metadata || {};
        obj.metadata.namespace = k.namespace;
      }
      out.push(obj);
    }
  }
  return out;
}

export function keyOf(obj) {
  const m = obj.metadata || {};
  return `${obj.apiVersion}/${obj.kind}/${m.namespace || ''}/${m.name}`;
}

// JSON with sorted keys: equal objects give equal strings whatever their key order.
export function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}
