// End-to-end review: a `linesight agent` process samples frames and uploads
// them; the test labels some through the REST API and some through the
// `linesight review` CLI (as processes), corrects one, and checks the queue
// order, the history and the precision and recall against what it labelled.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CloudApiClient,
  type ReviewQueueItem,
  type ReviewQueuePage,
  type ReviewVersionQuality,
} from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import type { Cloud } from '@linesight/cloud';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess, linesightJson } from '../helpers/linesight-process.ts';

const models = inject('models');

let testCloud: TestCloud | undefined;
let dir: string;
let cloud: Cloud;
let api: CloudApiClient;
let adminToken: string;
let threshold: number;
const running = new Set<LinesightProcess>();
const DEVICE = 'review-1';

const CLASS_RANK: Record<string, number> = { uncertain: 0, defect: 1, random: 2, unknown: 3 };

/** True when a page follows the queue order: class rank, then distance ascending (nulls last). */
function inReviewOrder(items: readonly ReviewQueueItem[]): boolean {
  return items.every((b, i) => {
    const a = items[i - 1];
    if (a === undefined) return true;
    const ra = CLASS_RANK[a.sample.class] ?? 9;
    const rb = CLASS_RANK[b.sample.class] ?? 9;
    if (ra !== rb) return ra < rb;
    if (a.distance === null) return b.distance === null;
    return b.distance === null || a.distance <= b.distance;
  });
}

/** `linesight review ...` as a child process, against this cloud; its JSON output. */
function cli<T>(args: string[]): Promise<T> {
  return linesightJson<T>('review', args, { url: cloud.urls.http, token: adminToken });
}

beforeAll(async () => {
  adminToken = `review-admin-${process.pid}-token`;
  testCloud = await startTestCloud({ config: { adminToken }, logger: pino({ level: 'warn' }) });
  ({ cloud, dir, api } = testCloud);
  const model = await api.publishModel({
    name: 'edge',
    version: '1.0.0',
    onnx: await readFile(models.v1),
  });
  threshold = model.threshold;
});

afterEach(async () => {
  for (const p of running) await p.stop();
  running.clear();
});

afterAll(async () => {
  await testCloud?.close();
});

describe('review queue', () => {
  it('queues uploaded samples in review order, keeps label history and measures quality', async () => {
    const creds = await api.provisionDevice(DEVICE);
    const dataDir = join(dir, 'agent');
    await writeDeviceCredentials(join(dataDir, 'device.json'), {
      ...creds,
      cloudUrl: cloud.urls.http,
    });
    await api.createRollout({ model: 'edge', version: '1.0.0', devices: [DEVICE] });
    const agent = new LinesightProcess([
      'agent',
      '--device-id',
      DEVICE,
      '--cloud',
      cloud.urls.http,
      '--mqtt',
      cloud.urls.mqtt,
      '--camera',
      'synthetic:11',
      '--fps',
      '10',
      '--data-dir',
      dataDir,
      '--window-sec',
      '1',
    ]);
    running.add(agent);
    // Samples arrive image first, then their index record; enough of them to label and order.
    await eventually(
      async () => {
        const page = await api.reviewQueue({ deviceId: DEVICE, limit: 500 });
        return page.items.filter((i) => i.sample.verdict !== 'unknown').length >= 8
          ? page
          : undefined;
      },
      { what: 'eight scored samples of the agent in the review queue', timeoutMs: 150_000 },
    );
    // A clean stop. Records the broker acknowledged may still be on their way into the
    // index, so what follows compares against this page's samples, never bare totals.
    expect(await agent.stop(), agent.exitReport()).toBe(0);

    const page = await api.reviewQueue({ deviceId: DEVICE, limit: 500 });
    expect(page.total).toBe(page.items.length);
    const pageIds = new Set(page.items.map((i) => i.sample.id));
    expect(inReviewOrder(page.items)).toBe(true);
    for (const item of page.items) {
      expect(item.sample.modelVersion === null || item.threshold === threshold).toBe(true);
      if (item.sample.score !== null && item.threshold !== null)
        expect(item.distance).toBeCloseTo(Math.abs(item.sample.score - threshold) / threshold, 10);
    }
    // The image URL serves the uploaded JPEG, byte for byte.
    const first = page.items[0] as ReviewQueueItem;
    const body = Buffer.from(await (await fetch(first.imageUrl ?? '')).arrayBuffer());
    expect(createHash('sha256').update(body).digest('hex')).toBe(first.sample.sha256);
    if (first.sample.mapKey !== undefined)
      expect((await fetch(first.mapUrl ?? '')).status).toBe(200);
    // Filters: each class on its own, in the same relative order.
    for (const cls of new Set(page.items.map((i) => i.sample.class))) {
      const only = await api.reviewQueue({ deviceId: DEVICE, reason: cls, limit: 500 });
      expect(only.items.map((i) => i.sample.id).filter((id) => pageIds.has(id))).toEqual(
        page.items.filter((i) => i.sample.class === cls).map((i) => i.sample.id),
      );
    }

    // Label the first six scored samples: the odd ones as the model said, the even ones the
    // other way; three through the REST API and three through the CLI.
    const chosen = page.items.filter((i) => i.sample.verdict !== 'unknown').slice(0, 6);
    expect(chosen.length).toBe(6);
    const truth = new Map<string, 'good' | 'defect'>();
    for (const [n, item] of chosen.entries()) {
      const agree = n % 2 === 1;
      const label: 'good' | 'defect' =
        (item.sample.verdict === 'defect') === agree ? 'defect' : 'good';
      truth.set(item.sample.id, label);
      const entry =
        n < 3
          ? await api.labelSample(DEVICE, item.sample.id, {
              label,
              ...(label === 'defect' ? { defectClass: 'scratch' } : {}),
              reviewer: 'rest-reviewer',
            })
          : await cli<{ label: string; reviewer: string }>([
              'label',
              DEVICE,
              item.sample.id,
              label,
              '--reviewer',
              'cli-reviewer',
              '--note',
              `pass ${n}`,
            ]);
      expect(entry).toMatchObject({
        label,
        reviewer: n < 3 ? 'rest-reviewer' : 'cli-reviewer',
      });
    }
    // A correction through the CLI: the first label flips; both stay in the history.
    const corrected = (chosen[0] as ReviewQueueItem).sample.id;
    const flipped = truth.get(corrected) === 'good' ? 'defect' : 'good';
    await cli(['label', DEVICE, corrected, flipped, '--reviewer', 'lead']);
    truth.set(corrected, flipped);
    const history = await cli<{ current: { label: string }; history: { reviewer: string }[] }>([
      'history',
      DEVICE,
      corrected,
    ]);
    expect(history.history.map((h) => h.reviewer)).toEqual(['rest-reviewer', 'lead']);
    expect(history.current.label).toBe(flipped);

    // Labelled samples left the queue; labelled=true lists exactly them.
    const left = await api.reviewQueue({ deviceId: DEVICE, limit: 500 });
    const leftIds = new Set(left.items.map((i) => i.sample.id));
    expect([...pageIds].filter((id) => !leftIds.has(id)).sort()).toEqual([...truth.keys()].sort());
    expect(inReviewOrder(left.items)).toBe(true);
    const labelled = await cli<ReviewQueuePage>(['queue', '--labelled', '--device', DEVICE]);
    expect(new Set(labelled.items.map((i) => i.sample.id))).toEqual(new Set(truth.keys()));
    expect(labelled.items[0]?.sample.id).toBe(corrected);
    for (const item of labelled.items) expect(item.label?.label).toBe(truth.get(item.sample.id));

    // Precision and recall from what was labelled, against the model's verdicts.
    const expected = { tp: 0, fp: 0, fn: 0, tn: 0 };
    for (const item of chosen) {
      const said = item.sample.verdict === 'defect';
      const is = truth.get(item.sample.id) === 'defect';
      if (said && is) expected.tp++;
      else if (said) expected.fp++;
      else if (is) expected.fn++;
      else expected.tn++;
    }
    const rate = (a: number, b: number) => (a + b === 0 ? null : a / (a + b));
    const want = {
      labelled: 6,
      ...expected,
      unscored: 0,
      precision: rate(expected.tp, expected.fp),
      recall: rate(expected.tp, expected.fn),
    };
    const viaRest = await api.reviewQuality({ model: 'edge', version: '1.0.0' });
    const viaCli = await cli<{ versions: ReviewVersionQuality[] }>(['quality', '--model', 'edge']);
    for (const q of [viaRest, viaCli]) {
      expect(q.versions).toHaveLength(1);
      const v = q.versions[0] as ReviewVersionQuality;
      expect(v.total).toEqual(want);
      expect(v.devices.map((d) => [d.deviceId, d.total])).toEqual([[DEVICE, want]]);
      expect(v.daily.reduce((n, d) => n + d.labelled, 0)).toBe(6);
    }
    const metricsText = async () => (await fetch(`${cloud.urls.http}/metrics`)).text();
    // The queue gauge counts what the queue lists (read twice around it: the index may still grow).
    await eventually(
      async () => {
        const before = (await api.reviewQueue({ limit: 1 })).total;
        const text = await metricsText();
        const after = (await api.reviewQueue({ limit: 1 })).total;
        return before === after && text.includes(`linesight_review_queue_samples ${before}\n`);
      },
      { what: 'the queue gauge to match the queue', timeoutMs: 30_000 },
    );
    const metrics = await metricsText();
    if (want.precision !== null)
      expect(metrics).toContain(
        `linesight_review_precision{model="edge",version="1.0.0"} ${want.precision}\n`,
      );
    if (want.recall !== null)
      expect(metrics).toContain(
        `linesight_review_recall{model="edge",version="1.0.0"} ${want.recall}\n`,
      );

    // The export lists exactly the labelled samples with their current labels; its fingerprint
    // is the trainer's formula over the images as downloaded.
    const manifest = await api.reviewExport({ deviceId: DEVICE, urls: true });
    expect(manifest.count).toBe(6);
    expect(new Map(manifest.items.map((i) => [i.sampleId, i.label]))).toEqual(truth);
    const lines: string[] = [];
    for (const item of manifest.items) {
      const bytes = Buffer.from(await (await fetch(item.imageUrl ?? '')).arrayBuffer());
      lines.push(`${createHash('sha256').update(bytes).digest('hex')} ${item.label}`);
    }
    lines.sort();
    expect(manifest.fingerprint).toBe(createHash('sha256').update(lines.join('\n')).digest('hex'));
  });
});
