import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cloud } from '../cloud.ts';

const MANIFESTS = fileURLToPath(new URL('../../../manifests/', import.meta.url));

let dir: string;
let cloud: Cloud;
let exposed: Set<string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-manifests-'));
  cloud = new Cloud({ httpPort: 0, mqttPort: 0, dataDir: dir }, pino({ level: 'silent' }));
  const { http } = await cloud.start();
  const text = await (await fetch(`${http}/metrics`)).text();
  exposed = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

/** Metric names a PromQL expression uses (histogram series map to their metric). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\blinesight_[a-z0-9_]+/g)].map((m) =>
    (m[0] as string).replace(/_(bucket|sum|count)$/, ''),
  );
}

describe('observability manifests', () => {
  it('the Grafana dashboard names only metrics the cloud exposes', async () => {
    const dashboard = JSON.parse(
      await readFile(join(MANIFESTS, 'grafana', 'linesight-fleet.json'), 'utf8'),
    ) as { panels: { title: string; targets: { expr: string }[] }[] };
    const named = dashboard.panels.flatMap((p) => p.targets.flatMap((t) => metricsIn(t.expr)));
    expect(named.length).toBeGreaterThan(5);
    expect(exposed.size).toBeGreaterThan(0);
    expect(named.filter((m) => !exposed.has(m))).toEqual([]);
    // The request-latency histogram and every fleet aggregate have a panel.
    const charted = new Set(named);
    expect(charted.has('linesight_http_request_duration_seconds')).toBe(true);
    const fleet = [...exposed].filter((m) => m.startsWith('linesight_fleet_'));
    expect(fleet.length).toBeGreaterThan(5);
    expect(fleet.filter((m) => !charted.has(m))).toEqual([]);
  });

  it('the Prometheus config scrapes the cloud at /metrics', async () => {
    const config = await readFile(join(MANIFESTS, 'prometheus', 'prometheus.yml'), 'utf8');
    expect(config).toMatch(/job_name: linesight-cloud/);
    expect(config).toMatch(/metrics_path: \/metrics/);
    expect(metricsIn(config).filter((m) => !exposed.has(m))).toEqual([]);
  });
});
