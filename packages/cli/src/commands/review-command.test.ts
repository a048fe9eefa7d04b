import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestCloud, type TestCloud } from '@linesight/testkit/cloud';
import { tinyOnnx } from '@linesight/testkit/onnx';
import { EdgeDataStore } from '../../../../cloud/src/ingest/edge-data-store.ts';
import { parseTime, reviewCommand } from './review-command.ts';

let dir: string;
let cloud: TestCloud;
let out: string[] = [];

beforeAll(async () => {
  cloud = await startTestCloud();
  dir = cloud.dir;
  const api = cloud.api;
  await api.publishModel({
    name: 'tiny',
    version: '1.0.0',
    onnx: tinyOnnx({ width: 8, height: 8 }),
  });
  // Two samples as the ingest stores them, in the cloud's edge-data file.
  const edge = new EdgeDataStore(join(dir, 'cloud', 'edge-data.sqlite'));
  edge.write([
    {
      kind: 'samples',
      deviceId: 'cam-1',
      records: [0.9, 0.49].map((score, seq) => ({
        boot: 1,
        seq,
        frameSeq: seq,
        at: '2026-02-03T04:05:06.000Z',
        class: score > 0.5 ? ('defect' as const) : ('uncertain' as const),
        modelName: 'tiny',
        modelVersion: '1.0.0',
        score,
        verdict: score >= 0.5 ? ('defect' as const) : ('good' as const),
        objectKey: `samples/cam-1/${seq}.jpg`,
        bytes: 10,
        sha256: 'a'.repeat(64),
      })),
    },
  ]);
  edge.close();
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    out.push(args.join(' '));
  });
});

afterEach(() => {
  out = [];
});

afterAll(async () => {
  vi.restoreAllMocks();
  await cloud?.close();
});

async function run(args: string[]): Promise<string[]> {
  out = [];
  const command = reviewCommand();
  // Argument errors throw instead of exiting the test process, without writing to stderr.
  for (const c of [command, ...command.commands])
    c.exitOverride().configureOutput({ writeErr: () => undefined });
  await command.parseAsync([...args, '--cloud', cloud.httpUrl, '--token', cloud.adminToken], {
    from: 'user',
  });
  return out.flatMap((o) => o.split('\n'));
}

describe('linesight review', () => {
  it('queue, label, history and quality, as text and JSON', async () => {
    const text = await run(['queue']);
    expect(text[0]).toBe('1-2 of 2');
    expect(text[2]).toMatch(
      /^cam-1 {2}1-1 {2}uncertain {2}tiny@1\.0\.0 {2}0\.490 {2}0\.500 {2}0\.020/,
    );
    const page = JSON.parse((await run(['queue', '--reason', 'defect', '--json']))[0] ?? '');
    expect(page.items.map((i: { sample: { id: string } }) => i.sample.id)).toEqual(['1-0']);

    expect(await run(['label', 'cam-1', '1-1', 'good', '--reviewer', 'eve'])).toEqual([
      expect.stringMatching(/^cam-1 1-1: good by eve at /),
    ]);
    const fixed = JSON.parse(
      (
        await run([
          'label',
          'cam-1',
          '1-1',
          'defect',
          '--class',
          'dent',
          '--note',
          'edge',
          '--json',
        ])
      )[0] ?? '',
    );
    expect(fixed).toMatchObject({
      label: 'defect',
      defectClass: 'dent',
      note: 'edge',
      reviewer: 'admin',
    });
    const history = await run(['history', 'cam-1', '1-1']);
    expect(history).toHaveLength(2);
    expect(history[0]).toMatch(/^good by eve/);
    expect(history[1]).toMatch(/^defect\/dent by admin .* "edge" {2}\(current\)$/);
    expect((await run(['queue', '--labelled']))[2]).toMatch(/defect\/dent by admin/);

    await run(['label', 'cam-1', '1-0', 'defect']);
    // 1-0: defect/defect TP; 1-1: verdict good (0.49), label defect: FN.
    const quality = await run(['quality', '--model', 'tiny', '--from', '2026-02-03']);
    expect(quality[0]).toBe(
      'tiny@1.0.0: precision 1.000  recall 0.500  (2 labelled: tp 1 fp 0 fn 1 tn 0)',
    );
    expect(quality).toContain(
      '  device cam-1: precision 1.000  recall 0.500  (2 labelled: tp 1 fp 0 fn 1 tn 0)',
    );
    const json = JSON.parse((await run(['quality', '--json']))[0] ?? '');
    expect(json.versions[0].total).toMatchObject({ tp: 1, fn: 1, precision: 1, recall: 0.5 });
    expect(await run(['quality', '--from', '2026-02-04'])).toEqual(['no labelled samples']);
    const out = join(dir, 'dataset.json');
    const [summary] = await run(['export', '--model', 'tiny', '--out', out]);
    const manifest = JSON.parse(await readFile(out, 'utf8'));
    expect(summary).toBe(
      `2 labelled samples (0 good, 2 defect), fingerprint ${manifest.fingerprint} -> ${out}`,
    );
    expect(manifest.items.map((i: { className: string }) => i.className)).toEqual([
      'defect',
      'dent',
    ]);
  });

  it('refuses bad arguments before calling the cloud, and reports the cloud 400', async () => {
    await expect(run(['label', 'cam-1', '1-0', 'maybe'])).rejects.toThrow(/good or defect/);
    await expect(run(['queue', '--reason', 'odd'])).rejects.toThrow(/uncertain, defect/);
    await expect(run(['label', 'cam-1', '1-0', 'good', '--class', 'dent'])).rejects.toThrow(
      /defectClass is for label "defect" only/,
    );
    await expect(run(['history', 'cam-1', '9-9'])).rejects.toMatchObject({
      code: 'ERR_CLOUD_NOT_FOUND',
    });
    expect(() => parseTime('yesterday')).toThrow(/ISO time/);
    expect(parseTime('2026-03-01')).toBe('2026-03-01T00:00:00.000Z');
  });

  it('has help for every verb', () => {
    const cmd = reviewCommand();
    expect(cmd.commands.map((c) => c.name())).toEqual([
      'queue',
      'label',
      'history',
      'quality',
      'export',
    ]);
    for (const c of cmd.commands) expect(c.helpInformation()).toMatch(/--json/);
  });
});
