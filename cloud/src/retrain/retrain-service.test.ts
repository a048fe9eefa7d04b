import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { sha256Hex } from '@linesight/protocol';
import type { ModelContract } from '@linesight/vision';
import { LocalBlobStore } from '../blobs/local-blob-store.ts';
import type { ModelVersion } from '../registry/model-registry.ts';
import type { LabelledSample } from '../review/review-store.ts';
import type { CreateRolloutInput } from '../rollouts/rollout-service.ts';
import { RetrainService, type RetrainServiceOptions } from './retrain-service.ts';
import { RetrainSettingsSchema, type RetrainSettings } from './retrain-settings.ts';
import { RetrainStore, type HeldOutMetrics, type RetrainJob } from './retrain-store.ts';
import type { TrainSpec } from './train-protocol.ts';
import { datasetImageKey, fingerprintOf, putDatasetImage } from './training-datasets.ts';
import { eventually } from '@linesight/testkit/eventually';

// The trainer is the one stand-in here (train-process.test.ts and the e2e test run the real
// one); the store, the blob store, the files and the job's bookkeeping are real.

let dir: string;
let blobs: LocalBlobStore;
let service: RetrainService | undefined;
const image = (n: number) => Buffer.from(`image-${n}`);
const metrics = (auroc: number): HeldOutMetrics => ({
  auroc,
  ap: auroc,
  f1: auroc,
  precision: auroc,
  recall: auroc,
  threshold: 1,
  images: 10,
});

function settings(over: Record<string, unknown> = {}): RetrainSettings {
  return Value.Default(RetrainSettingsSchema, {
    minHoldoutPerLabel: 2,
    holdoutShare: 0.5,
    ...over,
  }) as RetrainSettings;
}

/** A registered champion whose training data holds images 0..5. */
const parentItems = () =>
  [0, 1, 2, 3, 4, 5].map((n) => ({
    sha256: sha256Hex(image(n)),
    label: n < 4 ? ('good' as const) : ('defect' as const),
    className: n < 4 ? 'good' : 'scratch',
  }));

async function champion(): Promise<ModelVersion> {
  const items = parentItems();
  for (const n of [0, 1, 2, 3, 4, 5]) await putDatasetImage(blobs, sha256Hex(image(n)), image(n));
  await blobs.put('models/tile/1.0.0/x.onnx', Buffer.from('champion-onnx'));
  return {
    name: 'tile',
    version: '1.0.0',
    sha256: 'x',
    sizeBytes: 13,
    blobKey: 'models/tile/1.0.0/x.onnx',
    stage: 'candidate',
    contract: {
      datasetFingerprint: fingerprintOf(items),
      inputSpec: { width: 64 },
    } as unknown as ModelContract,
    signed: {} as ModelVersion['signed'],
    createdAt: new Date().toISOString(),
    createdBy: 'op',
    parentVersion: null,
    approvedBy: null,
    approvedAt: null,
    stageChangedAt: null,
  };
}

/** Eight labelled samples uploaded by a device: four good, four defect, one minute apart. */
async function labelled(): Promise<LabelledSample[]> {
  const out: LabelledSample[] = [];
  for (let i = 0; i < 8; i++) {
    const bytes = image(100 + i);
    const key = `samples/dev/1-${i}.jpg`;
    await blobs.put(key, bytes);
    out.push({
      deviceId: 'dev',
      sampleId: `1-${i}`,
      label: i % 2 === 0 ? 'good' : 'defect',
      defectClass: i % 2 === 0 ? null : 'spot',
      objectKey: key,
      mapKey: null,
      sha256: sha256Hex(bytes),
      bytes: bytes.length,
      capturedAt: new Date(Date.UTC(2026, 0, 1, 0, i)).toISOString(),
      sampleClass: 'defect',
      modelName: 'tile',
      modelVersion: '1.0.0',
      score: 1,
      verdict: 'defect',
      labelId: i + 1,
      labelledAt: new Date().toISOString(),
      reviewer: 'r',
    });
  }
  return out;
}

interface Harness {
  registered: { version: string; parentVersion: string; onnx: string }[];
  rollouts: CreateRolloutInput[];
  specs: TrainSpec[];
}

function start(
  over: Partial<RetrainServiceOptions> & {
    challenger?: number;
    /** The challenger's held-out F1 when it is not its AUROC. */
    challengerF1?: number;
    gate?: Promise<void>;
    /** Held-out verdict agreement the trainer reports. */
    agreement?: number | null;
  },
  model: ModelVersion,
  samples: LabelledSample[],
): Harness {
  const h: Harness = { registered: [], rollouts: [], specs: [] };
  service = new RetrainService({
    settings: settings(),
    path: join(dir, 'retrain.sqlite'),
    workDir: join(dir, 'work'),
    blobs,
    models: () => [model],
    register: async (input) => {
      h.registered.push({
        version: input.version,
        parentVersion: input.parentVersion,
        onnx: Buffer.from(input.onnx).toString(),
      });
      return { ...model, version: input.version, parentVersion: input.parentVersion };
    },
    labelled: () => samples,
    createRollout: async (input) => {
      h.rollouts.push(input);
      return { id: 'rollout-1' };
    },
    devicesRunning: () => ['dev'],
    openAlerts: () => [],
    audit: () => undefined,
    logger: pino({ level: 'silent' }),
    train: async (specPath, { signal, onProgress }) => {
      const spec = JSON.parse(await readFile(specPath, 'utf8')) as TrainSpec;
      h.specs.push(spec);
      onProgress({ step: 'fit', done: 1, total: 2 });
      if (over.gate !== undefined)
        await new Promise<void>((resolve, reject) => {
          signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true });
          void over.gate?.then(resolve);
        });
      const items = await Promise.all(
        spec.train.map(async (s) => ({
          sha256: sha256Hex(await readFile(s.path)),
          label: s.label,
        })),
      );
      await writeFile(spec.outPath, 'challenger-onnx');
      return {
        type: 'done',
        champion: metrics(0.7),
        challenger: {
          ...metrics(over.challenger ?? 0.9),
          ...(over.challengerF1 !== undefined ? { f1: over.challengerF1 } : {}),
        },
        agreement: over.agreement === undefined ? 0.6 : over.agreement,
        trainingMs: 12,
        datasetFingerprint: fingerprintOf(items),
        mode: 'supervised',
      };
    },
    ...over,
  });
  service.store.addDataset({
    fingerprint: fingerprintOf(parentItems()),
    name: 'parent',
    createdBy: 'op',
    source: 'upload',
    items: parentItems(),
  });
  service.start();
  return h;
}

async function ended(id: string): Promise<RetrainJob> {
  for (let i = 0; i < 500; i++) {
    const job = service?.store.get(id) as RetrainJob;
    if (job.state !== 'queued' && job.state !== 'running') return job;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`job ${id} did not end`);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-retrain-service-'));
  blobs = new LocalBlobStore(join(dir, 'blobs'));
  await blobs.start();
});

afterEach(async () => {
  await service?.close();
  service = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('RetrainService', () => {
  it('reads as registered only once its rollout started, and then with the rollout id', async () => {
    const model = await champion();
    const samples = await labelled();
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let asked = false;
    start(
      {
        createRollout: async () => {
          asked = true;
          await gate;
          return { id: 'rollout-slow' };
        },
      },
      model,
      samples,
    );
    const job = service?.startJob({
      model: 'tile',
      trigger: 'api',
      actor: 'op',
      rollout: 'shadow',
    });
    await eventually(() => asked, { what: 'the rollout to be asked for', intervalMs: 5 });
    // The candidate is registered, but the job does not say so before its rollout is known.
    const whileStarting = service?.store.get(job?.id ?? '').state;
    open();
    expect(whileStarting).toBe('running');
    const done = await ended(job?.id ?? '');
    expect(done.state).toBe('registered');
    expect(done.result).toMatchObject({ rolloutId: 'rollout-slow', rolloutError: null });
  });

  it('registers a winning challenger with its lineage and starts its rollout', async () => {
    const model = await champion();
    const samples = await labelled();
    // F1 is not a condition by default (maxF1Drop null): a lower F1 does not stop the winner.
    const h = start({ challengerF1: 0.2 }, model, samples);
    const job = service?.startJob({
      model: 'tile',
      trigger: 'api',
      actor: 'op',
      rollout: 'shadow',
    });
    const done = await ended(job?.id ?? '');
    expect(done.error).toBeNull();
    expect(done.state).toBe('registered');
    const r = done.result;
    // The newest half of each label is held out (labels 5-8), the rest trained on.
    expect(r?.labels).toEqual({ train: [1, 2, 3, 4], holdout: [5, 6, 7, 8] });
    expect(r).toMatchObject({
      championVersion: '1.0.0',
      candidateVersion: '1.1.0',
      counts: { parent: 6, labelledTrain: 4, holdoutGood: 2, holdoutDefect: 2, duplicates: 0 },
      rolloutId: 'rollout-1',
    });
    expect(r?.improvement).toBeCloseTo(0.2, 10);
    expect(h.specs[0]?.train).toHaveLength(10);
    // The labelled samples it trains on are the line as it is now: they set its threshold.
    const recent = h.specs[0]?.train.filter((s) => s.recent === true) ?? [];
    expect(recent.map((s) => s.className).sort()).toEqual(['good', 'good', 'spot', 'spot']);
    expect(h.specs[0]?.holdout.filter((s) => s.recent !== undefined)).toEqual([]);
    expect(h.specs[0]?.holdout.map((s) => s.className)).toEqual(['good', 'spot', 'good', 'spot']);
    expect(h.registered).toEqual([
      { version: '1.1.0', parentVersion: '1.0.0', onnx: 'challenger-onnx' },
    ]);
    // The challenger's training set is a dataset of its own, images included.
    expect(service?.store.dataset(r?.datasetFingerprint ?? '')).toMatchObject({
      source: 'retrain',
      count: 10,
      jobId: done.id,
    });
    expect(await blobs.stat(datasetImageKey(samples[0]?.sha256 ?? ''))).toBeDefined();
    expect(h.rollouts).toEqual([
      expect.objectContaining({
        model: 'tile',
        version: '1.1.0',
        selector: { ids: ['dev'] },
        shadow: { durationSec: 3600, minAgreement: 0.308 },
        gates: { maxDefectRateChange: 0.692 },
      }),
    ]);
    expect(service?.lineage('tile', '1.1.0').id).toBe(done.id);
  });

  it('gates a candidate’s rollout on the verdict agreement measured on the held-out set', async () => {
    const audits: { action: string; details: Record<string, unknown> }[] = [];
    const audit: RetrainServiceOptions['audit'] = (_actor, action, _subject, details) =>
      audits.push({ action, details });
    const model = await champion();
    const samples = await labelled();
    // 6 of 10 held-out verdicts agree: the champion is wrong on the line, so the candidate
    // disagrees with it, and the shadow phase must not stop it at the default 0.9. The limit is
    // the Wilson lower bound of 6/10 at z = 2, and the wave after it may move the defect rate
    // by as much as that much disagreement allows.
    const h = start({ audit, agreement: 0.6 }, model, samples);
    const shadowJob = service?.startJob({
      model: 'tile',
      trigger: 'api',
      actor: 'op',
      rollout: 'shadow',
    });
    const shadowDone = await ended(shadowJob?.id ?? '');
    expect(shadowDone.result).toMatchObject({
      agreement: 0.6,
      rolloutGates: { minAgreement: 0.308, maxDefectRateChange: 0.692 },
    });
    expect(h.rollouts[0]).toMatchObject({
      shadow: { minAgreement: 0.308 },
      gates: { maxDefectRateChange: 0.692 },
    });
    // Latency, error and refusal gates are not touched.
    expect(Object.keys(h.rollouts[0]?.gates ?? {})).toEqual(['maxDefectRateChange']);
    expect(audits.find((a) => a.action === 'model.retrain')?.details).toMatchObject({
      agreement: 0.6,
      rolloutId: 'rollout-1',
      rolloutGates: { minAgreement: 0.308, maxDefectRateChange: 0.692 },
    });
  });

  it('never gates a candidate’s rollout above the defaults; canary waves get the defect-rate limit', async () => {
    const h = start({ agreement: 1 }, await champion(), await labelled());
    const job = service?.startJob({
      model: 'tile',
      trigger: 'api',
      actor: 'op',
      rollout: 'canary',
    });
    const done = await ended(job?.id ?? '');
    // 10 of 10 agree, but 10 images are weak evidence: the bound is 0.7142, below the default.
    expect(done.result?.rolloutGates).toEqual({
      minAgreement: 0.7142,
      maxDefectRateChange: 0.2858,
    });
    // A canary rollout has no shadow phase; its waves get the defect-rate limit.
    expect(h.rollouts[0]).toMatchObject({ gates: { maxDefectRateChange: 0.2858 } });
    expect(h.rollouts[0]?.shadow).toBeUndefined();
  });

  it('starts a rollout with the default gates when the trainer measured no agreement', async () => {
    const h = start({ agreement: null }, await champion(), await labelled());
    const job = service?.startJob({
      model: 'tile',
      trigger: 'api',
      actor: 'op',
      rollout: 'shadow',
    });
    const done = await ended(job?.id ?? '');
    expect(done.result).toMatchObject({
      agreement: null,
      rolloutGates: { minAgreement: 0.9, maxDefectRateChange: 0.2 },
    });
    expect(h.rollouts[0]).toMatchObject({
      shadow: { minAgreement: 0.9 },
      gates: { maxDefectRateChange: 0.2 },
    });
  });

  it('leaves out, and counts, labelled samples whose image is gone from storage', async () => {
    const samples = await labelled();
    // The two oldest images were deleted (by retention before it kept labelled images).
    for (const s of samples.slice(0, 2)) await blobs.delete(s.objectKey);
    start({}, await champion(), samples);
    const job = service?.startJob({ model: 'tile', trigger: 'api', actor: 'op' });
    const done = await ended(job?.id ?? '');
    expect(done.error).toBeNull();
    expect(done.state).toBe('registered');
    const r = done.result;
    expect(r?.counts.missingImages).toBe(2);
    const used = [...(r?.labels.train ?? []), ...(r?.labels.holdout ?? [])];
    expect(used.sort()).toEqual([3, 4, 5, 6, 7, 8]);
  });

  it('registers nothing when the challenger does not win by the margin', async () => {
    const h = start({ challenger: 0.71 }, await champion(), await labelled());
    const job = service?.startJob({ model: 'tile', trigger: 'api', actor: 'op' });
    const done = await ended(job?.id ?? '');
    expect(done.state).toBe('rejected');
    expect(done.error).toMatch(/held-out auroc: challenger 0.7100 vs champion 0.7000/);
    expect(done.result?.candidateVersion).toBeNull();
    expect(h.registered).toEqual([]);
    expect(service?.store.datasets().map((d) => d.source)).toEqual(['upload']);
  });

  it('with maxF1Drop, refuses a challenger that ranks better but whose F1 is clearly worse', async () => {
    // AUROC 0.7 -> 0.9, but F1 0.7 -> 0.5: more than maxF1Drop (0.15) lost at its threshold.
    const h = start(
      { challengerF1: 0.5, settings: settings({ maxF1Drop: 0.15 }) },
      await champion(),
      await labelled(),
    );
    const job = service?.startJob({
      model: 'tile',
      trigger: 'api',
      actor: 'op',
      rollout: 'shadow',
    });
    const done = await ended(job?.id ?? '');
    expect(done.state).toBe('rejected');
    expect(done.error).toMatch(
      /f1 challenger 0.5000 vs champion 0.7000 falls more than maxF1Drop 0.15/,
    );
    expect(done.result?.maxF1Drop).toBe(0.15);
    expect(h.registered).toEqual([]);
    expect(h.rollouts).toEqual([]);
  });

  it('fails, registering nothing, when the parent’s training data is not registered', async () => {
    const model = await champion();
    const samples = await labelled();
    const h = start(
      {},
      { ...model, contract: { ...model.contract, datasetFingerprint: 'f'.repeat(64) } },
      samples,
    );
    const job = service?.startJob({ model: 'tile', trigger: 'api', actor: 'op' });
    const done = await ended(job?.id ?? '');
    expect(done.state).toBe('failed');
    expect(done.error).toMatch(/is not registered: push it/);
    expect(h.specs).toEqual([]);
    expect(h.registered).toEqual([]);
  });

  it('fails when too few labelled samples are left to compare on', async () => {
    const h = start({}, await champion(), (await labelled()).slice(0, 3));
    const done = await ended(
      service?.startJob({ model: 'tile', trigger: 'api', actor: 'op' }).id ?? '',
    );
    expect(done.state).toBe('failed');
    expect(done.error).toMatch(/not enough labelled samples/);
    expect(h.registered).toEqual([]);
  });

  it('cancels a training job: nothing registered, and the model takes a new job', async () => {
    let release = () => undefined as void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const h = start({ gate }, await champion(), await labelled());
    const job = service?.startJob({ model: 'tile', trigger: 'api', actor: 'op' });
    expect(() => service?.startJob({ model: 'tile', trigger: 'api', actor: 'op' })).toThrow(
      /one job per model/,
    );
    for (let i = 0; i < 500 && h.specs.length === 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(service?.store.get(job?.id ?? '').progress).toMatchObject({ step: 'fit' });
    service?.cancel(job?.id ?? '', 'lead');
    const done = await ended(job?.id ?? '');
    expect(done).toMatchObject({ state: 'cancelled', error: 'cancelled by lead' });
    expect(h.registered).toEqual([]);
    expect(() => service?.cancel(job?.id ?? '', 'lead')).toThrow(/already ended/);
    release();
    const next = service?.startJob({ model: 'tile', trigger: 'api', actor: 'op' });
    expect((await ended(next?.id ?? '')).state).toBe('registered');
  });

  it('fails a job the cloud shuts down under', async () => {
    const gate = new Promise<void>(() => undefined);
    const h = start({ gate }, await champion(), await labelled());
    const job = service?.startJob({ model: 'tile', trigger: 'api', actor: 'op' });
    for (let i = 0; i < 500 && h.specs.length === 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    const store = service?.store;
    await service?.close();
    service = undefined;
    const reopened = new RetrainStore(join(dir, 'retrain.sqlite'));
    expect(reopened.get(job?.id ?? '')).toMatchObject({
      state: 'failed',
      error: expect.stringMatching(/^interrupted: the cloud shut down; nothing was registered/),
    });
    reopened.close();
    expect(store).toBeDefined();
    expect(h.registered).toEqual([]);
  });

  it('marks a job a killed cloud left running failed when it starts again', async () => {
    const killed = new RetrainStore(join(dir, 'retrain.sqlite'));
    killed.add({
      id: 'old',
      model: 'tile',
      parentVersion: null,
      trigger: 'schedule',
      triggerDetail: null,
      actor: 'retrain:schedule',
      options: { rollout: 'none', epochs: 1, seed: 1, members: 1 },
    });
    killed.markRunning('old', '1.0.0');
    killed.close();
    start({}, await champion(), await labelled());
    expect(service?.store.get('old')).toMatchObject({
      state: 'failed',
      error: expect.stringMatching(/interrupted: the cloud restarted/),
    });
    expect(() => service?.startJob({ model: 'nope', trigger: 'api', actor: 'op' })).toThrow(
      /model nope is not registered/,
    );
    const job = service?.startJob({ model: 'tile', trigger: 'api', actor: 'op' });
    expect((await ended(job?.id ?? '')).state).toBe('registered');
  });
});
