import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ModelAssignment, SignedManifest } from '@linesight/protocol';
import { RolloutService, type CreateRolloutInput } from './rollout-service.ts';
import { AuditLog } from '../registry/audit-log.ts';
import { openRegistryDatabase, type RegistryDatabase } from '../registry/database.ts';
import { DeviceRegistry } from '../registry/device-registry.ts';
import { ModelRegistry, type ModelVersion } from '../registry/model-registry.ts';
import { RolloutStore } from '../registry/rollout-store.ts';
import type { DesiredContent } from '../signing/desired-issuer.ts';
import type { Clock } from './clock.ts';
import type { FrameSample, LatencySampler } from './result-sampler.ts';
import { RolloutEngine, type DesiredWriter } from './rollout-engine.ts';
import { DEFAULT_GATES } from './rollout-types.ts';

const N = 20;
const ids = Array.from({ length: N }, (_, i) => `dev-${String(i).padStart(2, '0')}`);

/** A clock that only moves when the test says so; the engine's timer never fires. */
class FakeClock implements Clock {
  ms = Date.parse('2026-01-01T00:00:00Z');
  now = () => this.ms;
  setInterval = () => 1;
  clearInterval = () => undefined;
}

/** Desired state in memory, with every assignment a device was ever given. */
class FakeDesired implements DesiredWriter {
  readonly docs = new Map<string, DesiredContent>();
  readonly history = new Map<string, string[]>();
  currentMany(ids: readonly string[]): Map<string, DesiredContent> {
    const result = new Map<string, DesiredContent>();
    for (const id of ids) {
      const doc = this.docs.get(id);
      if (doc !== undefined) result.set(id, doc);
    }
    return result;
  }
  patchMany(
    changes: readonly [string, Partial<DesiredContent>][],
    beforePublish?: (previous: ReadonlyMap<string, DesiredContent>) => void,
  ) {
    const previous = this.currentMany(changes.map(([id]) => id));
    beforePublish?.(previous);
    return this.setMany(
      changes.map(([id, change]) => [id, { ...(previous.get(id) ?? { model: null }), ...change }]),
    );
  }
  setMany(changes: readonly [string, DesiredContent][]) {
    for (const [id, content] of changes) {
      this.docs.set(id, content);
      const h = this.history.get(id) ?? [];
      h.push(versionOf(content.model) ?? 'none');
      this.history.set(id, h);
    }
    return [];
  }
}

const versionOf = (a: ModelAssignment | null | undefined) => a?.signed.manifest.version;

function modelVersion(version: string): ModelVersion {
  const signed = {
    manifest: { name: 'm', version, sha256: version.replace(/\./g, '').padEnd(64, '0') },
    signature: 'x',
  } as unknown as SignedManifest;
  return {
    name: 'm',
    version,
    sha256: signed.manifest.sha256,
    sizeBytes: 1,
    blobKey: 'k',
    stage: 'candidate',
    contract: {} as ModelVersion['contract'],
    signed,
    createdAt: new Date().toISOString(),
    createdBy: 'test',
    parentVersion: null,
    approvedBy: null,
    approvedAt: null,
    stageChangedAt: null,
  };
}

let db: RegistryDatabase;
let clock: FakeClock;
let desired: FakeDesired;
let devices: DeviceRegistry;
let engine: RolloutEngine;
let service: RolloutService;
let audit: AuditLog;
let store: RolloutStore;
/** Per-device simulated counters; `bad` devices flag every frame, `slow` ones are 5x slower. */
const counters = new Map<string, { captured: number; defects: number }>();

/** A result sampler that records which rollouts it watches and serves the frames a test puts in. */
class FakeSampler implements LatencySampler {
  readonly watching = new Set<string>();
  readonly frames = new Map<string, FrameSample[]>();
  async watch(key: string) {
    this.watching.add(key);
  }
  samples() {
    return this.frames;
  }
  async unwatch(key: string) {
    this.watching.delete(key);
  }
}

function build(sampler?: LatencySampler): void {
  store = new RolloutStore(db);
  engine = new RolloutEngine({
    ...(sampler !== undefined ? { sampler } : {}),
    store,
    devices,
    desired,
    models: new ModelRegistry(db),
    audit,
    logger: pino({ level: 'silent' }),
    clock,
  });
  service = new RolloutService({
    models: new ModelRegistry(db),
    devices,
    rollouts: store,
    engine,
    audit,
  });
}

/** Replaces the engine with one that samples frame results through a FakeSampler, and returns it. */
async function useSampler(): Promise<FakeSampler> {
  const sampler = new FakeSampler();
  await engine.close();
  build(sampler);
  return sampler;
}

/** Stores an in-progress rollout of m@2.0.0 as a cloud from before wave plans did: no spec, no progress. */
function addLegacy(deviceIds: string[] = ['dev-00']): void {
  store.add({
    id: 'legacy',
    modelName: 'm',
    modelVersion: '2.0.0',
    deviceIds,
    state: 'in_progress',
    createdAt: new Date(clock.ms).toISOString(),
    createdBy: 'a',
    spec: null,
    progress: null,
    reason: null,
    updatedAt: null,
  });
}

beforeEach(async () => {
  db = openRegistryDatabase(':memory:');
  clock = new FakeClock();
  desired = new FakeDesired();
  devices = new DeviceRegistry(db);
  audit = new AuditLog(db);
  const models = new ModelRegistry(db);
  for (const v of ['1.0.0', '2.0.0']) models.add(modelVersion(v));
  counters.clear();
  for (const [i, id] of ids.entries()) {
    devices.provision(id, { line: i % 2 === 0 ? 'even' : 'odd' });
    devices.setOnline(id, true, new Date(clock.ms).toISOString());
    desired.docs.set(id, {
      model: { signed: models.get('m', '1.0.0').signed, artifactUrl: '/a' },
      telemetryIntervalSec: 1,
    });
  }
  build();
});

afterEach(async () => {
  await engine.close();
  db.close();
});

/**
 * One simulated second: every online device runs what its desired state says
 * and scores 2 frames (10% defects; all defects on version `badVersion`).
 */
function simulateSecond(
  options: {
    badVersion?: string;
    slowVersion?: string;
    offline?: string[];
    /** Online devices whose camera delivers no frames (their counters stand still). */
    idle?: string[];
    /** Agreement of a shadow model with the live one. */
    shadowAgreement?: number;
    /** Online devices that handle their desired state but keep reporting 1.0.0. */
    stuck?: string[];
  } = {},
) {
  clock.ms += 1000;
  const at = new Date(clock.ms).toISOString();
  for (const id of ids) {
    if (options.offline?.includes(id)) continue;
    const version = options.stuck?.includes(id)
      ? '1.0.0'
      : (versionOf(desired.docs.get(id)?.model) ?? '1.0.0');
    const c = counters.get(id) ?? { captured: 0, defects: 0 };
    if (!options.idle?.includes(id)) {
      c.captured += 2;
      if (version === options.badVersion) c.defects += 2;
      else if (c.captured % 20 === 0) c.defects += 2;
    }
    counters.set(id, c);
    const model = { name: 'm', version };
    const shadowVersion = versionOf(desired.docs.get(id)?.shadow);
    const inference = version === options.slowVersion ? 25 : 5;
    devices.setReported(id, {
      schema: 'linesight.reported/v1',
      deviceId: id,
      phase: 'running',
      desiredRevision: 1,
      model,
      frames: {
        captured: c.captured,
        scored: c.captured,
        unknown: 0,
        droppedOverload: 0,
        defects: c.defects,
      },
      framesByVersion: {},
      agentVersion: 'test',
      updatedAt: at,
    });
    devices.setTelemetry(id, {
      schema: 'linesight.telemetry/v1',
      deviceId: id,
      at,
      intervalSec: 1,
      model,
      frames: {
        captured: c.captured,
        scored: c.captured,
        unknown: 0,
        droppedOverload: 0,
        defects: c.defects,
      },
      fps: 2,
      latencyMs: { p50: inference + 5, p99: inference + 10, max: inference + 20 },
      stageLatencyMs: {
        capture: { p50: 1, p99: 1, max: 1 },
        queue: { p50: 1, p99: 2, max: 3 },
        preprocess: { p50: 3, p99: 4, max: 5 },
        inference: { p50: inference, p99: inference, max: inference },
        publish: { p50: 0, p99: 0, max: 0 },
      },
      errors: 0,
      ...(shadowVersion === undefined
        ? {}
        : {
            shadow: {
              model: { name: 'm', version: shadowVersion },
              scored: c.captured,
              skipped: 0,
              errors: 0,
              agreementRate: options.shadowAgreement ?? 1,
              meanAbsScoreDiff: 0.01,
              latencyMs: { p50: 5, p99: 6, max: 7 },
            },
          }),
    });
  }
}

async function run(seconds: number, options: Parameters<typeof simulateSecond>[0] = {}) {
  for (let s = 0; s < seconds; s++) {
    simulateSecond(options);
    await engine.tick();
  }
}

const WAVES = [1, 10, 50, 100].map((percent) => ({ percent, soakSec: 5 }));

/** Starts the staged rollout of 2.0.0 over WAVES after 3 s of baseline. */
async function startStaged(actor: string, options: Partial<CreateRolloutInput> = {}) {
  await run(3);
  return service.create({ model: 'm', version: '2.0.0', waves: WAVES, actor, ...options });
}

/** Starts the rollout of 2.0.0 to every device (one wave, 2 s soak) behind a shadow phase. */
function startShadowed(shadow: CreateRolloutInput['shadow'] = { durationSec: 3 }) {
  return service.create({
    model: 'm',
    version: '2.0.0',
    waves: [{ percent: 100, soakSec: 2 }],
    shadow,
    actor: 'a',
  });
}

/** Starts the staged rollout with a wave timeout; returns it and its wave-1 device. */
async function startWithWaveTimeout(waveTimeoutSec: number) {
  const created = await startStaged('alice', { waveTimeoutSec });
  const first = service.status(created.id).devices.find((d) => d.wave === 1)?.id as string;
  return { created, first };
}

describe('RolloutEngine', () => {
  it('moves a good version through 1/10/50/100% waves, one wave at a time', async () => {
    const created = await startStaged('alice');
    expect(created.state).toBe('in_progress');
    expect(created.waves.map((w) => w.size)).toEqual([1, 1, 8, 10]);
    expect(created.counts).toMatchObject({ pending: 1, waiting: 19 });
    // While wave 1 soaks, nobody else has the version.
    await run(3);
    expect([...desired.docs.values()].filter((d) => versionOf(d.model) === '2.0.0')).toHaveLength(
      1,
    );
    await run(40);
    const status = service.status(created.id);
    expect(status.state).toBe('completed');
    expect(status.counts.done).toBe(N);
    expect(status.waves.every((w) => w.state === 'passed')).toBe(true);
    expect(status.waves[0]!.gates.find((g) => g.gate === 'defectRateChange')?.value).not.toBeNull();
    const actions = audit.list({ subject: `rollout:${created.id}` }).map((e) => e.action);
    expect(actions).toContain('rollout.created');
    expect(actions.filter((a) => a === 'rollout.wave_passed')).toHaveLength(4);
    expect(actions).toContain('rollout.completed');
  });

  it('rolls back the first wave of a version that flags every frame, and no one else ever gets it', async () => {
    const created = await startStaged('alice');
    await run(10, { badVersion: '2.0.0' });
    const status = service.status(created.id);
    expect(status.state).toBe('rolled_back');
    expect(status.reason).toMatch(/wave 1 failed its gates: defectRateChange/);
    const first = status.devices.find((d) => d.wave === 1)!;
    expect(first.state).toBe('rolled_back');
    expect(desired.history.get(first.id)).toEqual(['2.0.0', '1.0.0']);
    for (const id of ids.filter((x) => x !== first.id))
      expect(desired.history.get(id)).toBeUndefined();
    expect(audit.list({ action: 'rollout.rolled_back' })).toHaveLength(1);
  });

  it('rolls back a 5x slower version on the latency gate', async () => {
    const created = await startStaged('a');
    await run(10, { slowVersion: '2.0.0' });
    const status = service.status(created.id);
    expect(status.state).toBe('rolled_back');
    expect(status.reason).toMatch(/p99LatencyRatio 5/);
  });

  it('fails a wave at once when a device refuses the version', async () => {
    const created = await startStaged('a');
    const [first] = service.status(created.id).devices.filter((d) => d.state === 'pending');
    const reported = devices.get(first!.id).reported!;
    clock.ms += 1000;
    devices.setReported(first!.id, {
      ...reported,
      lastError: {
        code: 'ERR_AGENT_MODEL_VERIFY',
        message: 'hash mismatch',
        at: new Date(clock.ms).toISOString(),
        model: { name: 'm', version: '2.0.0' },
      },
    });
    await engine.tick();
    const status = service.status(created.id);
    expect(status.state).toBe('rolled_back');
    expect(status.reason).toMatch(/refusedOrCrashed 1/);
  });

  it('keeps an offline device pending without holding up the wave', async () => {
    await run(3);
    const created = await service.create({
      model: 'm',
      version: '2.0.0',
      waves: [
        { percent: 50, soakSec: 2 },
        { percent: 100, soakSec: 2 },
      ],
      actor: 'a',
    });
    const offline = service.status(created.id).devices.find((d) => d.wave === 1)!.id;
    devices.setOnline(offline, false, new Date(clock.ms).toISOString());
    await run(8, { offline: [offline] });
    const status = service.status(created.id);
    expect(status.waves[0]!.state).toBe('passed');
    expect(status.devices.find((d) => d.id === offline)?.state).toBe('pending');
    expect(versionOf(desired.docs.get(offline)?.model)).toBe('2.0.0');
    await run(10);
    expect(service.status(created.id).devices.find((d) => d.id === offline)?.state).toBe('done');
  });

  it('soaks a wave on until it has scored enough frames, and never passes it on none', async () => {
    const { created, first } = await startWithWaveTimeout(20);
    // The wave-1 line stands still: its soak (5 s) is long over, but the wave waits.
    await run(12, { idle: [first] });
    let status = service.status(created.id);
    expect(status.waves[0]?.state).toBe('soaking');
    expect(status.counts.waiting).toBe(N - 1);
    // The line runs again: enough frames, the gates pass, the rollout goes on.
    await run(8);
    status = service.status(created.id);
    expect(status.waves[0]?.state).toBe('passed');
    expect(status.waves[1]?.state).not.toBe('waiting');
  });

  it('fails a wave with soakFrames when its line never delivers frames', async () => {
    const { created, first } = await startWithWaveTimeout(10);
    await run(30, { idle: [first] });
    const status = service.status(created.id);
    expect(status.state).toBe('rolled_back');
    expect(status.reason).toMatch(
      /wave 1 failed its gates: soakFrames 0 \(limit 10\): the wave scored 0 frames/,
    );
    expect(desired.history.get(first)?.at(-1)).toBe('1.0.0');
  });

  it('pauses, resumes and aborts with the actor in the audit log, restoring moved devices', async () => {
    const created = await startStaged('alice');
    expect((await service.pause(created.id, 'bob')).state).toBe('paused');
    await run(20);
    expect(service.status(created.id).waves[1]!.state).toBe('waiting');
    expect((await service.resume(created.id, 'bob')).state).toBe('in_progress');
    await run(14);
    const mid = service.status(created.id);
    expect(mid.waves[1]!.state).not.toBe('waiting');
    const aborted = await service.abort(created.id, 'carol');
    expect(aborted.state).toBe('aborted');
    expect(aborted.reason).toBe('aborted by carol');
    for (const d of desired.docs.values()) expect(versionOf(d.model)).toBe('1.0.0');
    const entries = audit.list({ subject: `rollout:${created.id}` });
    expect(entries.find((e) => e.action === 'rollout.paused')?.actor).toBe('bob');
    expect(entries.find((e) => e.action === 'rollout.resumed')?.actor).toBe('bob');
    expect(entries.find((e) => e.action === 'rollout.aborted')?.actor).toBe('carol');
    await expect(service.resume(created.id, 'bob')).rejects.toThrow(/not paused/);
  });

  it('resumes an in-progress rollout after a restart from its persisted state', async () => {
    const created = await startStaged('a');
    await run(8);
    expect(service.status(created.id).waves[0]!.state).toBe('passed');
    await engine.close();
    build(); // a new engine and service on the same database, as after a cloud restart
    await run(40);
    expect(service.status(created.id).state).toBe('completed');
  });

  it('selects by label, and refuses to overlap a staged rollout', async () => {
    await run(2);
    const created = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { labels: { line: 'even' } },
      waves: WAVES,
      actor: 'a',
    });
    expect(created.devices).toHaveLength(N / 2);
    await expect(
      service.create({ model: 'm', version: '1.0.0', selector: { ids: ['dev-00'] }, actor: 'a' }),
    ).rejects.toThrow(/active rollout/);
    await service.abort(created.id, 'a');
  });

  it('runs the all-at-once form as before: every device at once, completed when all run it', async () => {
    await run(2);
    const created = await service.create({ model: 'm', version: '2.0.0', actor: 'a' });
    expect(created.counts.pending).toBe(N);
    await run(2);
    expect(service.status(created.id).state).toBe('completed');
  });

  it('runs a shadow phase first, then goes live; a shadow that disagrees never goes live', async () => {
    await run(2);
    const good = await startShadowed();
    expect(good.state).toBe('shadow');
    expect([...desired.docs.values()].every((d) => versionOf(d.shadow) === '2.0.0')).toBe(true);
    expect([...desired.docs.values()].every((d) => versionOf(d.model) === '1.0.0')).toBe(true);
    await run(4, { shadowAgreement: 0.97 });
    const live = service.status(good.id);
    expect(live.shadow).toMatchObject({ state: 'passed' });
    expect([...desired.docs.values()].every((d) => d.shadow === null)).toBe(true);
    await run(8);
    expect(service.status(good.id).state).toBe('completed');

    const bad = await service.create({
      model: 'm',
      version: '1.0.0',
      shadow: { durationSec: 3, minAgreement: 0.95 },
      actor: 'a',
    });
    await run(4, { shadowAgreement: 0.6 });
    const status = service.status(bad.id);
    expect(status.state).toBe('rolled_back');
    expect(status.reason).toMatch(/shadow gate failed: shadowAgreement 0.6/);
    expect([...desired.docs.values()].every((d) => versionOf(d.model) === '2.0.0')).toBe(true);
    expect([...desired.docs.values()].every((d) => (d.shadow ?? null) === null)).toBe(true);
  });
  it('fails an all-at-once rollout at its deadline, naming the devices that never reported the version', async () => {
    await run(2);
    const stuck = ['dev-03', 'dev-07'];
    const created = await service.create({
      model: 'm',
      version: '2.0.0',
      waveTimeoutSec: 30,
      actor: 'a',
    });
    await run(20, { stuck });
    // Before its deadline the rollout waits, saying nothing yet.
    expect(service.status(created.id).state).toBe('in_progress');
    await run(15, { stuck });
    const status = service.status(created.id);
    expect(status.state).toBe('failed');
    expect(status.reason).toMatch(/^2 of 20 devices did not reach the version within 30 s; late: /);
    expect(status.reason).toContain('dev-03 (reports m@1.0.0 after handling desired revision 1)');
    expect(status.waves[0]!.late?.map((d) => d.id).sort()).toEqual(stuck);
    expect(
      status.devices
        .filter((d) => d.late !== undefined)
        .map((d) => d.id)
        .sort(),
    ).toEqual(stuck);
    const [entry] = audit.list({ action: 'rollout.deadline_passed' });
    expect(entry?.details).toMatchObject({ phase: 'applying', action: 'fail', late: 2 });
    // Once a late device gets there, its row no longer says it is late.
    await run(1);
    expect(service.status(created.id).devices.find((d) => d.id === 'dev-03')).toMatchObject({
      state: 'done',
    });
    expect(service.status(created.id).devices.find((d) => d.id === 'dev-03')?.late).toBeUndefined();
  });

  it('pauses a staged rollout at its deadline when asked to, and gives the wave a new deadline on resume', async () => {
    const created = await startStaged('a', { waveTimeoutSec: 10, onDeadline: 'pause' });
    expect(created.spec?.onDeadline).toBe('pause');
    const first = created.devices.find((d) => d.wave === 1)!.id;
    await run(12, { stuck: [first] });
    let status = service.status(created.id);
    expect(status.state).toBe('paused');
    expect(status.reason).toMatch(
      new RegExp(
        `^paused: applying deadline of wave 1 passed: no device of the wave reached the version within 10 s; late: ${first} \\(reports m@1\\.0\\.0`,
      ),
    );
    expect(status.waves[0]).toMatchObject({
      state: 'applying',
      late: [{ id: first, online: true }],
    });
    // Nothing was rolled back: the operator decides.
    expect(versionOf(desired.docs.get(first)?.model)).toBe('2.0.0');
    await run(20, { stuck: [first] });
    expect(service.status(created.id).state).toBe('paused');
    await service.resume(created.id, 'bob');
    await run(5, { stuck: [first] });
    expect(service.status(created.id).state).toBe('in_progress');
    await run(3);
    status = service.status(created.id);
    expect(status.waves[0]!.state).toBe('soaking');
    expect(audit.list({ action: 'rollout.deadline_passed' })).toHaveLength(1);
  });

  it('aborts through the engine: stops sampling and marks moved waves rolled back', async () => {
    const sampler = await useSampler();
    const created = await startStaged('a');
    await run(2);
    expect(sampler.watching.has(created.id)).toBe(true);
    const aborted = await service.abort(created.id, 'carol');
    expect(aborted.state).toBe('aborted');
    expect(aborted.waves[0]!.state).toBe('rolled_back');
    expect(sampler.watching.has(created.id)).toBe(false);
  });
});

describe('RolloutEngine guards', () => {
  it('pauses only a running rollout, and aborts only an active one', async () => {
    await run(2);
    const direct = await service.create({ model: 'm', version: '2.0.0', actor: 'a' });
    await run(2);
    expect(service.status(direct.id).state).toBe('completed');
    await expect(service.pause(direct.id, 'bob')).rejects.toMatchObject({
      code: 'ERR_CLOUD_CONFLICT',
      message: `rollout ${direct.id} is completed; only a running rollout can be paused`,
    });
    await expect(service.abort(direct.id, 'bob')).rejects.toMatchObject({
      code: 'ERR_CLOUD_CONFLICT',
      message: `rollout ${direct.id} is already completed`,
    });
    await expect(service.resume(direct.id, 'bob')).rejects.toMatchObject({
      code: 'ERR_CLOUD_CONFLICT',
    });
    const staged = await startStaged('a');
    await service.pause(staged.id, 'bob');
    await expect(service.pause(staged.id, 'bob')).rejects.toThrow(/is paused; only a running/);
    // A paused rollout can still be aborted.
    expect((await service.abort(staged.id, 'bob')).state).toBe('aborted');
  });

  it('pauses and resumes a shadow phase as a shadow phase', async () => {
    await run(2);
    const created = await startShadowed();
    await service.pause(created.id, 'bob');
    const [paused] = audit.list({ action: 'rollout.paused' });
    expect(paused?.details).toMatchObject({ from: 'shadow' });
    await run(5);
    expect(service.status(created.id).shadow?.state).toBe('running');
    // The resume's kick may already have moved it on (desired state is stored, not awaited).
    expect((await service.resume(created.id, 'bob')).state).not.toBe('paused');
    const [resumed] = audit.list({ action: 'rollout.resumed' });
    expect(resumed?.details).toMatchObject({ to: 'shadow' });
  });

  it('ends a shadow phase exactly at its duration, clearing the shadow slot back to what it was', async () => {
    await run(2);
    const created = await startShadowed();
    await run(2);
    expect(service.status(created.id).shadow?.state).toBe('running');
    await run(1);
    const status = service.status(created.id);
    expect(status.shadow?.state).toBe('passed');
    expect(status.shadow?.finishedAt).toBe(new Date(clock.ms).toISOString());
    expect(status.state).toBe('in_progress');
    expect([...desired.docs.values()].every((d) => d.shadow === null)).toBe(true);
    const actions = audit.list({ subject: `rollout:${created.id}` }).map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining(['rollout.shadow_started', 'rollout.shadow_passed']),
    );
  });

  it('aborts a shadow phase: the shadow failed, no wave moved, every shadow slot restored', async () => {
    await run(2);
    const created = await service.create({
      model: 'm',
      version: '2.0.0',
      waves: [
        { percent: 50, soakSec: 2 },
        { percent: 100, soakSec: 2 },
      ],
      shadow: { durationSec: 30 },
      actor: 'a',
    });
    await run(1);
    const aborted = await service.abort(created.id, 'carol');
    expect(aborted.shadow?.state).toBe('failed');
    expect(aborted.waves.map((w) => w.state)).toEqual(['waiting', 'waiting']);
    expect([...desired.docs.values()].every((d) => d.shadow === null)).toBe(true);
    const [entry] = audit.list({ action: 'rollout.aborted' });
    expect(entry?.details).toMatchObject({ devicesRestored: N });
  });

  it('aborting marks the moved waves rolled back at the abort time and leaves the waiting ones', async () => {
    const created = await startStaged('a');
    await run(8);
    const mid = service.status(created.id);
    expect(mid.waves.map((w) => w.state)).toEqual(['passed', 'soaking', 'waiting', 'waiting']);
    const aborted = await service.abort(created.id, 'carol');
    expect(aborted.waves.map((w) => w.state)).toEqual([
      'rolled_back',
      'rolled_back',
      'waiting',
      'waiting',
    ]);
    const at = new Date(clock.ms).toISOString();
    expect(aborted.waves.map((w) => w.finishedAt)).toEqual([at, at, null, null]);
    const [entry] = audit.list({ action: 'rollout.aborted' });
    expect(entry?.details).toMatchObject({ devicesRestored: 2 });
    // Devices the rollout never touched keep their desired state untouched.
    expect([...desired.history.values()].flat().filter((v) => v === '2.0.0')).toHaveLength(2);
    expect(desired.history.size).toBe(2);
  });

  it('fails a rollout stored before wave plans instead of guessing its progress', async () => {
    addLegacy();
    await engine.tick();
    expect(store.get('legacy')).toMatchObject({
      state: 'failed',
      reason: 'created before staged rollouts; create it again',
    });
    expect(desired.history.size).toBe(0);
  });

  it('a closed engine advances nothing, and a failing rollout does not hold up the others', async () => {
    const even = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { labels: { line: 'even' } },
      waves: WAVES,
      actor: 'a',
    });
    const odd = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { labels: { line: 'odd' } },
      waves: WAVES,
      actor: 'a',
    });
    // The even rollout's desired state cannot be written any more.
    const patchMany = desired.patchMany.bind(desired);
    desired.patchMany = (changes, beforePublish) => {
      if (changes.some(([id]) => Number(id.slice(4)) % 2 === 0)) throw new Error('disk full');
      return patchMany(changes, beforePublish);
    };
    await run(8);
    expect(service.status(even.id).waves[1]?.state).toBe('applying');
    expect(service.status(even.id).waves[1]?.size).toBeGreaterThan(0);
    const oddWaves = service.status(odd.id).waves;
    expect(oddWaves[1]?.state).not.toBe('waiting');
    expect(
      desired.history.get(service.status(odd.id).devices.find((d) => d.wave === 2)!.id),
    ).toEqual(['2.0.0']);
    await engine.close();
    const before = JSON.stringify(service.status(odd.id));
    await run(10);
    expect(JSON.stringify(service.status(odd.id))).toBe(before);
  });

  it('restarted mid-soak, soaks the wave again for its whole soak time', async () => {
    const created = await startStaged('a');
    await run(3);
    expect(service.status(created.id).waves[0]?.state).toBe('soaking');
    await engine.close();
    build(); // a new engine on the same database, as after a cloud restart
    await run(1);
    expect(service.status(created.id).waves[0]?.soakStartedAt).toBe(
      new Date(clock.ms).toISOString(),
    );
    // Without the restart the wave would have passed two seconds from now.
    await run(4);
    expect(service.status(created.id).waves[0]?.state).toBe('soaking');
    await run(1);
    expect(service.status(created.id).waves[0]?.state).toBe('passed');
  });

  it('restarted while its last wave applies or soaks, still judges that wave against its own devices before it', async () => {
    // One wave of every device: nobody is left on the previous version to compare with.
    const whole = { waves: [{ percent: 100, soakSec: 5 }] };
    const applying = await startStaged('a', { ...whole, selector: { labels: { line: 'even' } } });
    const soaking = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { labels: { line: 'odd' } },
      actor: 'a',
      ...whole,
    });
    await run(2, { badVersion: '2.0.0', stuck: ids.filter((_, i) => i % 2 === 0) });
    expect(service.status(applying.id).waves[0]?.state).toBe('applying');
    expect(service.status(soaking.id).waves[0]?.state).toBe('soaking');
    await engine.close();
    build(); // a new engine on the same database, as after a cloud restart
    await run(10, { badVersion: '2.0.0' });
    for (const { id } of [applying, soaking])
      expect(service.status(id)).toMatchObject({
        state: 'rolled_back',
        reason: expect.stringMatching(
          /^wave 1 failed its gates: defectRateChange 1 \(limit 0\.2\)/,
        ),
      });
  });

  it('restarted mid-soak, samples the wave again', async () => {
    const sampler = await useSampler();
    const created = await startStaged('a');
    await run(3);
    await engine.close();
    sampler.watching.clear();
    build(sampler);
    await run(1);
    expect(sampler.watching.has(created.id)).toBe(true);
  });

  it('passes a wave exactly at the end of its soak time', async () => {
    const created = await startStaged('a');
    await run(1);
    const soakStartedAt = service.status(created.id).waves[0]?.soakStartedAt;
    expect(soakStartedAt).toBe(new Date(clock.ms).toISOString());
    await run(4);
    expect(service.status(created.id).waves[0]?.state).toBe('soaking');
    await run(1);
    expect(service.status(created.id).waves[0]).toMatchObject({
      state: 'passed',
      finishedAt: new Date(clock.ms).toISOString(),
    });
  });

  it('passes waves left empty by a small fleet at once, with the wave before them', async () => {
    await run(3);
    const created = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { ids: ['dev-00', 'dev-01'] },
      waves: WAVES,
      actor: 'a',
    });
    const sizes = created.waves.map((w) => w.size);
    expect(sizes.filter((n) => n === 0).length).toBeGreaterThan(0);
    await run(30);
    const status = service.status(created.id);
    expect(status.state).toBe('completed');
    expect(status.waves.every((w) => w.state === 'passed')).toBe(true);
    for (const [i, w] of status.waves.entries())
      if (w.size === 0) expect(w.finishedAt).toBe(status.waves[i - 1]?.finishedAt);
    const [completed] = audit.list({ action: 'rollout.completed' });
    expect(completed?.details).toMatchObject({ devices: 2 });
  });

  it('fails a staged wave at its deadline, naming the late devices, and rolls it back', async () => {
    const { created, first } = await startWithWaveTimeout(10);
    await run(12, { stuck: [first] });
    const status = service.status(created.id);
    expect(status.state).toBe('rolled_back');
    expect(status.reason).toMatch(
      new RegExp(
        `^wave 1 failed its gates: reached 0 \\(limit 1\\): no device of the wave reached the version within 10 s; late: ${first} \\(reports m@1\\.0\\.0`,
      ),
    );
    expect(status.waves[0]).toMatchObject({ state: 'rolled_back', late: [{ id: first }] });
    expect(desired.history.get(first)).toEqual(['2.0.0', '1.0.0']);
    const [entry] = audit.list({ action: 'rollout.deadline_passed' });
    expect(entry?.details).toMatchObject({ phase: 'applying', wave: 1, action: 'fail', late: 1 });
  });
});

describe('RolloutEngine outcomes', () => {
  /** Reports that `id` refused 2.0.0 now. */
  function refuse(id: string) {
    const reported = devices.get(id).reported!;
    devices.setReported(id, {
      ...reported,
      lastError: {
        code: 'ERR_AGENT_MODEL_VERIFY',
        message: 'hash mismatch',
        at: new Date(clock.ms).toISOString(),
        model: { name: 'm', version: '2.0.0' },
      },
    });
  }

  it('fails an all-at-once rollout once no device is pending and some refused, without rolling back', async () => {
    await run(2);
    const created = await service.create({ model: 'm', version: '2.0.0', actor: 'a' });
    await run(1, { stuck: ['dev-04'] });
    refuse('dev-04');
    await engine.tick();
    const status = service.status(created.id);
    expect(status.state).toBe('failed');
    expect(status.reason).toBe('1 of 20 devices refused m@2.0.0');
    expect(status.waves[0]).toMatchObject({
      state: 'failed',
      finishedAt: new Date(clock.ms).toISOString(),
    });
    // The all-at-once form never rolls back: the others keep the version.
    expect(versionOf(desired.docs.get('dev-05')?.model)).toBe('2.0.0');
    const [entry] = audit.list({ action: 'rollout.failed' });
    expect(entry?.details).toMatchObject({ reason: '1 of 20 devices refused m@2.0.0' });
    expect(audit.list({ action: 'rollout.wave_passed' })).toHaveLength(0);
  });

  it('records each wave start and a rollback with what it concerned, and stops sampling', async () => {
    const sampler = await useSampler();
    const created = await startStaged('a');
    const [started] = audit.list({ action: 'rollout.wave_started' });
    expect(started).toMatchObject({
      actor: 'system:rollouts',
      details: { model: 'm@2.0.0', wave: 1, devices: 1, percent: 1 },
    });
    expect(sampler.watching.has(created.id)).toBe(true);
    const first = created.devices.find((d) => d.wave === 1)!.id;
    clock.ms += 1000;
    refuse(first);
    await engine.tick();
    expect(sampler.watching.has(created.id)).toBe(false);
    const [rolledBack] = audit.list({ action: 'rollout.rolled_back' });
    expect(rolledBack?.details).toMatchObject({
      wave: 1,
      devices: 1,
      reason: expect.stringMatching(/^wave 1 failed its gates: refusedOrCrashed 1 \(limit 0\)/),
      gates: [{ gate: 'refusedOrCrashed', passed: false }],
    });
    expect(service.status(created.id).waves[0]).toMatchObject({
      state: 'rolled_back',
      gates: [{ gate: 'refusedOrCrashed', value: 1 }],
      finishedAt: new Date(clock.ms).toISOString(),
    });
  });
});

describe('RolloutEngine details', () => {
  const refusal = (atMs: number) => ({
    code: 'ERR_AGENT_MODEL_VERIFY',
    message: 'hash mismatch',
    at: new Date(atMs).toISOString(),
    model: { name: 'm', version: '2.0.0' },
  });

  it('ticks every 250 ms unless told otherwise', async () => {
    const intervals: number[] = [];
    const recording = new RolloutEngine({
      store: new RolloutStore(db),
      devices,
      desired,
      models: new ModelRegistry(db),
      audit,
      logger: pino({ level: 'silent' }),
      clock: { ...clock, now: clock.now, setInterval: (_fn, ms) => intervals.push(ms) },
    });
    recording.start();
    await recording.close();
    expect(intervals).toEqual([250]);
  });

  it("an operator's pause and resume do not move a wave's deadline", async () => {
    const { created, first } = await startWithWaveTimeout(10);
    await run(5, { stuck: [first] });
    await service.pause(created.id, 'bob');
    await service.resume(created.id, 'bob');
    await run(5, { stuck: [first] });
    expect(service.status(created.id).state).toBe('rolled_back');
  });

  it('aborts a wave still applying, and a rollout stored before wave plans', async () => {
    const created = await startStaged('a');
    const aborted = await service.abort(created.id, 'carol');
    expect(aborted.waves[0]?.state).toBe('rolled_back');
    addLegacy();
    expect(service.status('legacy')).toMatchObject({
      waves: [],
      shadow: null,
      devices: [{ id: 'dev-00', wave: 1, state: 'pending' }],
    });
    expect(await service.abort('legacy', 'carol')).toMatchObject({
      state: 'aborted',
      reason: 'aborted by carol',
    });
  });

  it('gives devices back the shadow model they had, after a shadow phase and on abort', async () => {
    const models = new ModelRegistry(db);
    const old = { signed: models.get('m', '1.0.0').signed, artifactUrl: '/a' };
    desired.docs.set('dev-00', { ...desired.docs.get('dev-00')!, shadow: old });
    // A device with no desired state yet.
    desired.docs.delete('dev-01');
    await run(2);
    const shadowed = await service.create({
      model: 'm',
      version: '2.0.0',
      waves: [{ percent: 100, soakSec: 2 }],
      shadow: { durationSec: 2 },
      actor: 'a',
    });
    expect(audit.list({ action: 'rollout.shadow_started' })[0]?.details).toMatchObject({
      devices: N,
    });
    await run(2);
    expect(service.status(shadowed.id).shadow?.state).toBe('passed');
    expect(versionOf(desired.docs.get('dev-00')?.shadow)).toBe('1.0.0');
    expect(desired.docs.get('dev-02')?.shadow).toBeNull();
    await service.abort(shadowed.id, 'carol');
    expect(versionOf(desired.docs.get('dev-00')?.shadow)).toBe('1.0.0');
    expect(versionOf(desired.docs.get('dev-00')?.model)).toBe('1.0.0');
    expect(desired.docs.get('dev-01')?.model).toBeNull();
  });

  it("counts a refusal from the wave's start, however late a tick sees it, and not one from before", async () => {
    await run(3);
    // An earlier attempt at the version, long before this rollout.
    const early = 'dev-10';
    devices.setReported(early, {
      ...devices.get(early).reported!,
      lastError: refusal(clock.ms - 60_000),
    });
    const created = await startStaged('a', { waves: [{ percent: 100, soakSec: 2 }] });
    clock.ms += 1000;
    const refuser = 'dev-03';
    devices.setReported(refuser, {
      ...devices.get(refuser).reported!,
      lastError: refusal(clock.ms),
    });
    clock.ms += 20_000;
    await engine.tick();
    const status = service.status(created.id);
    expect(status.state).toBe('rolled_back');
    expect(status.reason).toBe(
      'wave 1 failed its gates: refusedOrCrashed 1 (limit 0): 1 of 20 wave devices refused or crashed on the version',
    );
  });

  it('passes a wave whose devices refused the version before the rollout began', async () => {
    await run(3);
    const earlier = clock.ms - 60_000;
    // Each device keeps reporting the error of that earlier attempt.
    const reportOldRefusals = () => {
      for (const id of ids)
        devices.setReported(id, { ...devices.get(id).reported!, lastError: refusal(earlier) });
    };
    reportOldRefusals();
    const created = await service.create({
      model: 'm',
      version: '2.0.0',
      waves: [{ percent: 100, soakSec: 3 }],
      actor: 'a',
    });
    for (let s = 0; s < 6; s++) {
      simulateSecond();
      reportOldRefusals();
      await engine.tick();
    }
    expect(service.status(created.id).state).toBe('completed');
  });

  it('an all-at-once rollout completes without gates or wave audit entries', async () => {
    await run(2);
    const created = await service.create({ model: 'm', version: '2.0.0', actor: 'a' });
    expect(created.shadow).toBeNull();
    await run(2);
    const status = service.status(created.id);
    expect(status.state).toBe('completed');
    expect(status.waves[0]).toMatchObject({ state: 'passed', gates: [] });
    expect(status.waves[0]?.late).toBeUndefined();
    expect(audit.list({ action: 'rollout.wave_passed' })).toHaveLength(0);
  });

  it('records the waves passed, and judges the last wave against its own devices before it', async () => {
    const created = await startStaged('a');
    expect(created.waves[1]?.gates).toEqual([]);
    await run(40);
    const status = service.status(created.id);
    expect(status.state).toBe('completed');
    const passed = audit.list({ action: 'rollout.wave_passed' }).map((e) => e.details.wave);
    expect(passed.sort()).toEqual([1, 2, 3, 4]);
    const last = status.waves[3]!.gates.find((g) => g.gate === 'defectRateChange');
    expect(last?.value).not.toBeNull();
    expect(status.waves.every((w) => w.late === undefined)).toBe(true);
  });

  it('says which phase missed its deadline and names the late devices of a soak', async () => {
    const { created, first } = await startWithWaveTimeout(10);
    await run(30, { idle: [first] });
    const status = service.status(created.id);
    expect(status.reason).toContain(`; late: ${first} (online; telemetry counts`);
    const [entry] = audit.list({ action: 'rollout.deadline_passed' });
    expect(entry?.details).toMatchObject({ phase: 'soaking', wave: 1, action: 'fail' });
  });

  it('names at most ten late devices in the audit entry of an all-at-once deadline', async () => {
    await run(2);
    const stuck = ids.slice(0, 12);
    const created = await service.create({
      model: 'm',
      version: '2.0.0',
      waveTimeoutSec: 5,
      actor: 'a',
    });
    await run(6, { stuck });
    const status = service.status(created.id);
    expect(status.state).toBe('failed');
    expect(status.waves[0]?.state).toBe('failed');
    expect(status.waves[0]?.finishedAt).not.toBeNull();
    const [entry] = audit.list({ action: 'rollout.deadline_passed' });
    expect(entry?.details).toMatchObject({ late: 12 });
    expect((entry?.details.lateDevices as unknown[]).length).toBe(10);
    expect(audit.list({ action: 'rollout.failed' })[0]?.details).toMatchObject({
      reason: status.reason,
    });
  });

  it('records that the engine paused a rollout at its deadline, and why', async () => {
    await run(3);
    const created = await startStaged('a', { waveTimeoutSec: 10, onDeadline: 'pause' });
    const first = created.devices.find((d) => d.wave === 1)!.id;
    await run(12, { stuck: [first] });
    const [paused] = audit.list({ action: 'rollout.paused' });
    expect(paused).toMatchObject({
      actor: 'system:rollouts',
      details: { from: 'in_progress', reason: service.status(created.id).reason },
    });
  });
});

describe('RolloutEngine late devices, sampled frames and failed shadows', () => {
  it('soaks a wave whose device was offline when the soak started on its frames from its first telemetry on the version', async () => {
    await run(3);
    const [late, idle] = ['dev-04', 'dev-05'];
    devices.setOnline(late, false, new Date(clock.ms).toISOString());
    const created = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { ids: [late, idle] },
      waves: [{ percent: 100, soakSec: 3 }],
      waveTimeoutSec: 30,
      actor: 'a',
    });
    // The idle device swaps but scores nothing: only the late device's frames can judge the wave.
    await run(1, { offline: [late], idle: [idle] });
    const offlineSince = expect.stringMatching(/^offline since /);
    let status = service.status(created.id);
    expect(status.waves[0]).toMatchObject({
      state: 'soaking',
      late: [{ id: late, online: false, reason: offlineSince }],
    });
    expect(status.devices.find((d) => d.id === late)).toMatchObject({
      state: 'pending',
      online: false,
      late: offlineSince,
    });
    await run(5, { offline: [late], idle: [idle] });
    expect(service.status(created.id).waves[0]?.state).toBe('soaking');
    devices.setOnline(late, true, new Date(clock.ms).toISOString());
    // Back on the version at 2 frames/s: the frames it scored before do not count, so the
    // 10 frames the gates need take five seconds from its first telemetry on the version.
    await run(5, { idle: [idle] });
    expect(service.status(created.id).waves[0]?.state).toBe('soaking');
    await run(1, { idle: [idle] });
    status = service.status(created.id);
    expect(status.state).toBe('completed');
    expect(status.waves[0]?.gates.find((g) => g.gate === 'defectRateChange')?.detail).toMatch(
      /in the wave \(10 frames\)/,
    );
    expect(status.devices.find((d) => d.id === late)).toEqual({
      id: late,
      wave: 1,
      state: 'done',
      running: 'm@2.0.0',
      online: true,
    });
  });

  it("judges a wave's latency on the frames sampled since its soak started, not the slow first frames of its swap", async () => {
    const sampler = await useSampler();
    const created = await startStaged('a');
    await run(1);
    const soakStartMs = clock.ms;
    expect(service.status(created.id).waves[0]?.soakStartedAt).toBe(
      new Date(soakStartMs).toISOString(),
    );
    const first = created.devices.find((d) => d.wave === 1)!.id;
    const baseline = created.devices.find((d) => d.wave === 4)!.id;
    const frames = (n: number, model: string, fromMs: number, inferenceMs: number) =>
      Array.from({ length: n }, (_, i) => ({
        model,
        atMs: fromMs + i * 10,
        inferenceMs,
        totalMs: inferenceMs + 5,
      }));
    sampler.frames.set(first, [
      ...frames(30, 'm@2.0.0', soakStartMs - 1000, 50),
      ...frames(20, 'm@2.0.0', soakStartMs, 5),
    ]);
    sampler.frames.set(baseline, frames(20, 'm@1.0.0', soakStartMs, 5));
    await run(5);
    const wave = service.status(created.id).waves[0];
    expect(wave?.state).toBe('passed');
    expect(wave?.gates.find((g) => g.gate === 'p50LatencyRatio')).toMatchObject({
      passed: true,
      value: 1,
      detail: expect.stringContaining('over 20 wave frames vs 5 ms over 20 frames'),
    });
  });

  it('ends a shadow phase that fails: shadow failed with its gates, no wave started, the rollback audited', async () => {
    await run(2);
    const created = await startShadowed({ durationSec: 3, minAgreement: 0.95 });
    await run(3, { shadowAgreement: 0.6 });
    const status = service.status(created.id);
    expect(status).toMatchObject({
      state: 'rolled_back',
      shadow: { state: 'failed', finishedAt: new Date(clock.ms).toISOString() },
    });
    expect(status.shadow?.gates).toContainEqual(
      expect.objectContaining({ gate: 'shadowAgreement', passed: false, value: 0.6 }),
    );
    expect(status.waves.map((w) => [w.state, w.startedAt])).toEqual([['waiting', null]]);
    const [entry] = audit.list({ action: 'rollout.rolled_back' });
    expect(entry).toMatchObject({
      actor: 'system:rollouts',
      subject: `rollout:${created.id}`,
      details: {
        model: 'm@2.0.0',
        phase: 'shadow',
        reason: status.reason,
        gates: status.shadow?.gates,
      },
    });
    expect(audit.list({ action: 'rollout.wave_started' })).toHaveLength(0);
    expect(audit.list({ action: 'rollout.shadow_passed' })).toHaveLength(0);
  });
});

describe('RolloutEngine pause and resume edges', () => {
  it('pauses a rollout still pending because its shadow phase could not start, and resumes it as pending', async () => {
    await run(2);
    const patchMany = desired.patchMany.bind(desired);
    desired.patchMany = () => {
      throw new Error('disk full');
    };
    const created = await startShadowed();
    expect(created.state).toBe('pending');
    expect((await service.pause(created.id, 'bob')).state).toBe('paused');
    desired.patchMany = patchMany;
    // The resume's kick may already have started the shadow phase (desired state is stored, not awaited).
    expect((await service.resume(created.id, 'bob')).state).not.toBe('paused');
    expect(audit.list({ action: 'rollout.resumed' })[0]?.details).toEqual({ to: 'pending' });
    await engine.idle();
    expect(service.status(created.id).state).toBe('shadow');
  });

  it('pauses and resumes a rollout stored before wave plans, which the next tick then fails', async () => {
    addLegacy();
    await service.pause('legacy', 'bob');
    await engine.close(); // no tick between the resume and the check
    await service.resume('legacy', 'bob');
    expect(store.get('legacy').state).toBe('pending');
    build();
    await engine.tick();
    expect(store.get('legacy').state).toBe('failed');
  });

  it('gives a wave a new deadline on the resume after its deadline paused it, and not again on a later operator pause', async () => {
    const created = await startStaged('a', { waveTimeoutSec: 10, onDeadline: 'pause' });
    const first = created.devices.find((d) => d.wave === 1)!.id;
    await run(10, { stuck: [first] });
    expect(service.status(created.id).state).toBe('paused');
    await service.resume(created.id, 'bob');
    await run(5, { stuck: [first] });
    await service.pause(created.id, 'bob');
    await service.resume(created.id, 'bob');
    await run(4, { stuck: [first] });
    expect(service.status(created.id).state).toBe('in_progress');
    await run(1, { stuck: [first] });
    expect(service.status(created.id).state).toBe('paused');
    expect(audit.list({ action: 'rollout.deadline_passed' })).toHaveLength(2);
  });
});

describe('RolloutService guards', () => {
  it('fills a staged spec with the defaults, and only a request without waves, gates or shadow is all-at-once', async () => {
    await run(2);
    const gated = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { ids: ['dev-00'] },
      gates: { maxErrorRate: 0.5 },
      actor: 'a',
    });
    expect(gated.spec).toEqual({
      selector: { ids: ['dev-00'] },
      waves: [{ percent: 100, soakSec: 0 }],
      gates: { ...DEFAULT_GATES, maxErrorRate: 0.5 },
      shadow: null,
      direct: false,
      waveTimeoutSec: 600,
      onDeadline: 'fail',
    });
    const shadowed = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { ids: ['dev-01'] },
      shadow: { durationSec: 5 },
      actor: 'a',
    });
    expect(shadowed.spec).toMatchObject({
      shadow: { durationSec: 5, minAgreement: 0.9, maxLatencyRatio: 2 },
      direct: false,
    });
    const staged = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { ids: ['dev-02'] },
      waves: [{ percent: 100, soakSec: 1 }],
      actor: 'a',
    });
    expect(staged.spec?.direct).toBe(false);
    const direct = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { ids: ['dev-03'] },
      actor: 'a',
    });
    expect(direct.spec).toMatchObject({ direct: true, selector: { ids: ['dev-03'] } });
    const created = audit.list({ action: 'rollout.created' });
    const details = (id: string) => created.find((e) => e.subject === `rollout:${id}`)?.details;
    expect(details(direct.id)).toMatchObject({
      model: 'm@2.0.0',
      devices: 1,
      waves: [1],
      gates: null,
      shadow: null,
    });
    expect(details(gated.id)).toMatchObject({ gates: { maxErrorRate: 0.5 } });
    expect(details(shadowed.id)).toMatchObject({ shadow: { durationSec: 5, minAgreement: 0.9 } });
  });

  it('refuses a shadow without a duration, unknown devices and a selection of none', async () => {
    await expect(
      service.create({ model: 'm', version: '2.0.0', shadow: { durationSec: 0 }, actor: 'a' }),
    ).rejects.toMatchObject({
      code: 'ERR_CLOUD_BAD_REQUEST',
      message: 'shadow.durationSec must be above 0',
    });
    await expect(
      service.create({
        model: 'm',
        version: '2.0.0',
        selector: { ids: ['dev-00', 'zz', 'yy', 'zz'] },
        actor: 'a',
      }),
    ).rejects.toMatchObject({
      code: 'ERR_CLOUD_NOT_FOUND',
      message: 'unknown devices: zz, yy',
      details: { missing: ['zz', 'yy'] },
    });
    await expect(
      service.create({
        model: 'm',
        version: '2.0.0',
        selector: { labels: { line: 'none' } },
        actor: 'a',
      }),
    ).rejects.toMatchObject({
      code: 'ERR_CLOUD_BAD_REQUEST',
      message: 'a rollout needs at least one device: the selector matches none',
    });
    expect(service.list()).toEqual([]);
  });

  it('supersedes an overlapping all-at-once rollout and leaves the others alone', async () => {
    await run(2);
    const old = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { ids: ['dev-00', 'dev-01'] },
      actor: 'a',
    });
    const apart = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { ids: ['dev-05'] },
      actor: 'a',
    });
    const newer = await service.create({
      model: 'm',
      version: '1.0.0',
      selector: { ids: ['dev-01', 'dev-02'] },
      actor: 'bob',
    });
    expect(service.status(old.id)).toMatchObject({
      state: 'aborted',
      reason: `superseded by rollout ${newer.id}`,
    });
    expect(service.status(apart.id).state).toBe('in_progress');
    const [entry] = audit.list({ action: 'rollout.superseded' });
    expect(entry).toMatchObject({
      actor: 'bob',
      subject: `rollout:${old.id}`,
      details: { by: newer.id },
    });
  });

  it('supersedes an active rollout stored before wave plans', async () => {
    await run(2);
    addLegacy(['dev-00', 'dev-01']);
    const newer = await service.create({
      model: 'm',
      version: '2.0.0',
      selector: { ids: ['dev-01'] },
      actor: 'bob',
    });
    expect(newer.state).toBe('in_progress');
    expect(store.get('legacy')).toMatchObject({
      state: 'aborted',
      reason: `superseded by rollout ${newer.id}`,
    });
    expect(audit.list({ action: 'rollout.superseded' })).toMatchObject([
      { actor: 'bob', subject: 'rollout:legacy', details: { by: newer.id } },
    ]);
  });

  it('names at most 20 of the overlapping devices in a conflict', async () => {
    for (const id of ['dev-20', 'dev-21', 'dev-22']) devices.provision(id);
    const staged = await startStaged('a');
    expect(staged.deviceIds).toHaveLength(N + 3);
    const err = await service
      .create({ model: 'm', version: '1.0.0', actor: 'bob' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ERR_CLOUD_CONFLICT',
      message: `23 selected devices (e.g. dev-00) are in active rollout ${staged.id}; abort it or let it finish first`,
      details: { rollout: staged.id, devices: ids },
    });
  });

  it('names the staged rollout a new one overlaps', async () => {
    await run(2);
    const staged = await startStaged('a');
    const err = await service
      .create({ model: 'm', version: '1.0.0', selector: { ids: ['dev-00', 'dev-01'] }, actor: 'a' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ERR_CLOUD_CONFLICT',
      message: `2 selected devices (e.g. dev-00) are in active rollout ${staged.id}; abort it or let it finish first`,
      details: { rollout: staged.id, devices: ['dev-00', 'dev-01'] },
    });
  });

  it('reports each device: its wave, state, what it runs, whether online, its error', async () => {
    const created = await startStaged('a');
    const first = created.devices.find((d) => d.wave === 1)!;
    expect(first).toStrictEqual({
      id: first.id,
      wave: 1,
      state: 'pending',
      running: 'm@1.0.0',
      online: true,
    });
    const waiting = created.devices.find((d) => d.wave === 4)!;
    expect(waiting).toMatchObject({ wave: 4, state: 'waiting' });
    expect(created.waves.map((w) => w.counts)).toEqual([
      { waiting: 0, pending: 1, done: 0, failed: 0, rolled_back: 0 },
      { waiting: 1, pending: 0, done: 0, failed: 0, rolled_back: 0 },
      { waiting: 8, pending: 0, done: 0, failed: 0, rolled_back: 0 },
      { waiting: 10, pending: 0, done: 0, failed: 0, rolled_back: 0 },
    ]);
    const reported = devices.get(first.id).reported!;
    devices.setReported(first.id, {
      ...reported,
      lastError: {
        code: 'ERR_AGENT_MODEL_VERIFY',
        message: 'hash mismatch',
        at: new Date(clock.ms).toISOString(),
        model: { name: 'm', version: '2.0.0' },
      },
    });
    devices.setOnline(first.id, false, new Date(clock.ms).toISOString());
    expect(service.status(created.id).devices.find((d) => d.id === first.id)).toEqual({
      id: first.id,
      wave: 1,
      state: 'failed',
      running: 'm@1.0.0',
      online: false,
      error: 'ERR_AGENT_MODEL_VERIFY: hash mismatch',
    });
    await engine.tick();
    const status = service.status(created.id);
    expect(status.devices.find((d) => d.id === first.id)?.state).toBe('rolled_back');
    expect(status.counts).toEqual({ waiting: 19, pending: 0, done: 0, failed: 0, rolled_back: 1 });
    expect(service.list()).toEqual([status]);
  });

  it('reports a device removed from the registry during a rollout as offline, running nothing', async () => {
    const created = await startStaged('a');
    const waiting = created.devices.find((d) => d.wave === 4)!.id;
    devices.remove(waiting);
    expect(service.status(created.id).devices.find((d) => d.id === waiting)).toStrictEqual({
      id: waiting,
      wave: 4,
      state: 'waiting',
      running: null,
      online: false,
    });
  });
});
