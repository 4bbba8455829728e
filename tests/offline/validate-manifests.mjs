#!/usr/bin/env node
// Validates Kubernetes objects against the Kubernetes schemas of kubernetes-models 4.x (and
// @kubernetes-models/prometheus-operator for ServiceMonitor): each object is built with its
// model class and validate()d. On top of the schema:
//   * unknown fields are errors (the schemas allow them; a typo such as "readinesProbe" would
//     otherwise pass): validate() runs on a Proxy that records which fields the validator
//     reads, and every field it never reads is unknown;
//   * --policy: every pod spec meets what the chart promises (restricted security context,
//     no service account token, no service links, resource requests, probes on servers).
//
// usage: validate-manifests.mjs [--policy] [--kustomize DIR] [FILE|-]...
import { loadDocs, keyOf, kustomizeLite } from './lib.mjs';

const MODULES = {
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};
function moduleFor(apiVersion) {
  if (MODULES[apiVersion]) return MODULES[apiVersion];
  return `kubernetes-models/${apiVersion}`;
}

async function modelClass(obj) {
  if (!obj.apiVersion || !obj.kind) throw new Error('no apiVersion or kind');
  let mod;
  try {
    mod = await import(moduleFor(obj.apiVersion));
  } catch {
    throw new Error(`no schema for apiVersion ${obj.apiVersion}`);
  }
  const Model = mod[obj.kind];
  if (typeof Model !== 'function') throw new Error(`no schema for ${obj.apiVersion} ${obj.kind}`);
  return Model;
}

// Runs Model.validate() and returns the paths of fields the validator never looked at.
function validateStrict(Model, obj) {
  const seen = new Set();
  const wrap = (v, p) => {
    if (v === null || typeof v !== 'object') return v;
    return new Proxy(v, {
      get(target, key, receiver) {
        const val = Reflect.get(target, key, receiver);
        if (typeof key === 'string' && Object.prototype.hasOwnProperty.call(target, key)) {
          seen.add(`${p}/${key}`);
          return wrap(val, `${p}/${key}`);
        }
        return val;
      },
    });
  };
  const inst = new Model(obj);
  Model.prototype.validate.call(wrap(inst, '')); // throws on schema errors
  const unknown = [];
  const walk = (v, p) => {
    if (v === null || typeof v !== 'object') return;
    for (const k of Object.keys(v)) {
      const q = `${p}/${k}`;
      if (!Array.isArray(v) && !seen.has(q)) unknown.push(q);
      walk(v[k], q);
    }
  };
  walk(inst, '');
  return unknown;
}

function podSpecOf(obj) {
  if (obj.kind === 'Pod') return obj.spec;
  if (['StatefulSet', 'Deployment', 'DaemonSet', 'ReplicaSet', 'Job'].includes(obj.kind)) {
    return obj.spec?.template?.spec;
  }
  return undefined;
}

function policyErrors(obj) {
  const spec = podSpecOf(obj);
  if (!spec) return [];
  const errs = [];
  const want = (cond, msg) => { if (!cond) errs.push(msg); };
  want(spec.automountServiceAccountToken === false, 'automountServiceAccountToken is not false');
  want(spec.enableServiceLinks === false, 'enableServiceLinks is not false');
  const psc = spec.securityContext || {};
  want(psc.runAsNonRoot === true, 'pod securityContext.runAsNonRoot is not true');
  want(psc.seccompProfile?.type === 'RuntimeDefault', 'pod seccompProfile is not RuntimeDefault');
  const volumes = new Map((spec.volumes || []).map((v) => [v.name, v]));
  for (const c of [...(spec.initContainers || []), ...(spec.containers || [])]) {
    const sc = c.securityContext || {};
    const at = `container ${c.name}:`;
    want(sc.allowPrivilegeEscalation === false, `${at} allowPrivilegeEscalation is not false`);
    want(sc.readOnlyRootFilesystem === true, `${at} readOnlyRootFilesystem is not true`);
    want((sc.capabilities?.drop || []).includes('ALL'), `${at} capabilities do not drop ALL`);
    want(!(sc.capabilities?.add || []).length, `${at} adds capabilities`);
    want(sc.runAsUser === undefined || sc.runAsUser !== 0, `${at} runs as root`);
    want(sc.runAsNonRoot === true || psc.runAsNonRoot === true, `${at} runAsNonRoot is not true`);
    want(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${at} no cpu and memory requests`);
    const tmp = (c.volumeMounts || []).find((m) => m.mountPath === '/tmp');
    want(tmp && volumes.get(tmp.name)?.emptyDir, `${at} /tmp is not an emptyDir`);
    if ((c.ports || []).length) {
      for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
        want(c[probe], `${at} no ${probe}`);
      }
    }
  }
  return errs;
}

async function main() {
  const args = process.argv.slice(2);
  let policy = false;
  const objs = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--policy') policy = true;
    else if (args[i] === '--kustomize') objs.push(...kustomizeLite(args[++i]));
    else objs.push(...loadDocs(args[i]));
  }
  if (!objs.length) {
    console.error('validate-manifests: no objects given');
    process.exit(1);
  }
  let failed = 0;
  const kinds = {};
  for (const obj of objs) {
    const where = `${obj.__source ?? '?'} ${keyOf(obj)}`;
    const errs = [];
    try {
      const Model = await modelClass(obj);
      const unknown = validateStrict(Model, obj);
      for (const u of unknown) errs.push(`unknown field ${u}`);
    } catch (e) {
      errs.push(e.message);
    }
    if (policy) errs.push(...policyErrors(obj));
    if (errs.length) {
      failed++;
      console.error(`INVALID ${where}:\n  ${errs.join('\n  ')}`);
    }
    kinds[obj.kind] = (kinds[obj.kind] || 0) + 1;
  }
  const summary = Object.entries(kinds).map(([k, n]) => `${n} ${k}`).join(', ');
  if (failed) {
    console.error(`validate-manifests: ${failed} of ${objs.length} objects invalid`);
    process.exit(1);
  }
  console.log(`validate-manifests: ${objs.length} objects valid${policy ? ' (schema + policy)' : ''}: ${summary}`);
}

main().catch((e) => {
  console.error(`validate-manifests: ${e.message}`);
  process.exit(1);
});
