#!/usr/bin/env node
// Checks the Grafana dashboard: valid JSON, a title, and a PromQL `expr` in every target of
// every panel. With a rendered chart (monitoring scenario), also that exactly one ConfigMap is
// labelled grafana_dashboard: "1" and holds the same JSON. (Whether the queries return data
// is tested against a real Prometheus by the observability tests, not here.)
//
// usage: check-dashboard.mjs DASHBOARD_JSON [RENDERED_YAML]
import fs from 'node:fs';
import { loadDocs, canonical } from './lib.mjs';

const [file, rendered] = process.argv.slice(2);
try {
  const d = JSON.parse(fs.readFileSync(file, 'utf8'));
  const panels = (d.panels || []).flatMap((p) => [p, ...(p.panels || [])]).filter((p) => p.type !== 'row');
  if (!d.title) throw new Error('no title');
  if (!panels.length) throw new Error('no panels');
  for (const p of panels) {
    if (!(p.targets || []).length || p.targets.some((t) => typeof t.expr !== 'string' || !t.expr.trim())) {
      throw new Error(`panel "${p.title}" has a target without a PromQL expr`);
    }
  }
  let extra = '';
  if (rendered) {
    const cms = loadDocs(rendered).filter((o) => o.kind === 'ConfigMap' && o.metadata?.labels?.grafana_dashboard === '1');
    if (cms.length !== 1) throw new Error(`${rendered}: ${cms.length} ConfigMaps labelled grafana_dashboard: "1", want 1`);
    const data = Object.values(cms[0].data || {});
    if (data.length !== 1 || canonical(JSON.parse(data[0])) !== canonical(d)) {
      throw new Error(`${rendered}: ConfigMap ${cms[0].metadata.name} does not hold ${file} unchanged`);
    }
    extra = `; ConfigMap ${cms[0].metadata.name} in ${cms[0].metadata.namespace} holds it`;
  }
  console.log(`check-dashboard: ${file}: ${panels.length} panel(s), every target has a PromQL expr${extra}`);
} catch (e) {
  console.error(`check-dashboard: ${e.message}`);
  process.exit(1);
}
