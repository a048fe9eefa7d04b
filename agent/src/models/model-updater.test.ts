import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelSlot, type ScoringModel } from '@linesight/vision';
import {
  isLinesightError,
  type AgentPhase,
  type DesiredState,
  type Manifest,
  type ModelAssignment,
} from '@linesight/protocol';
import { ModelStore, type ModelStoreState } from './model-store.ts';
import { ModelUpdater } from './model-updater.ts';
import { testManifest } from '@linesight/testkit/manifests';
import { testSigner } from '@linesight/testkit/signer';
import { eventually } from '@linesight/testkit/eventually';

const signer = testSigner();
const WATCHDOG = {
  code: 'ERR_AGENT_WATCHDOG',
  message: 'watchdog: 3 consecutive runs over 200 ms on m@2.0.0',
} as const;

/** One version, signed and stored in the model store. */
interface Version {
  manifest: Manifest;
  assignment: ModelAssignment;
  bytes: Uint8Array;
}

let dir: string;
let store: ModelStore;
let slot: ModelSlot<ScoringModel, Manifest>;
let updater: ModelUpdater;
let revision: number;
const loads: string[] = [];
const closed: string[] = [];
const refused: { version: string | undefined; code: string; message: string }[] = [];
const activated: { version: string; source: string }[] = [];
const phases: AgentPhase[] = [];
/** Per version: golden runs fail, or loading waits for this promise. */
const behaviour = new Map<
  string,
  { goldenFails?: boolean; loadGate?: Promise<void>; inputWidth?: number }
>();

async function version(v: string): Promise<Version> {
  const bytes = new TextEncoder().encode(`model ${v}`);
  const manifest: Manifest = {
    ...signer.manifestOf(v, bytes),
    issuedAt: new Date().toISOString(),
  };
  await mkdir(store.dir, { recursive: true });
  await writeFile(store.artifactPath(manifest.sha256), bytes);
  return {
    manifest,
    bytes,
    assignment: {
      signed: signer.sign(manifest),
      artifactUrl: `/artifacts/${manifest.sha256}`,
    },
  };
}

function desired(model: Version): DesiredState {
  return signer.desired(model.assignment, ++revision);
}

async function apply(model: Version): Promise<void> {
  updater.apply(desired(model));
  await updater.idle();
}

function versionOf(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes).replace('model ', '');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-updater-'));
  store = new ModelStore(dir);
  slot = new ModelSlot<ScoringModel, Manifest>();
  revision = 0;
  for (const list of [loads, closed, refused, activated, phases]) list.length = 0;
  behaviour.clear();
  updater = new ModelUpdater({
    cloudUrl: 'http://127.0.0.1:9',
    username: 'd1',
    password: 'unused',
    trustedKeys: () => [signer.trusted],
    store,
    slot,
    shadowSlot: new ModelSlot<ScoringModel, Manifest>(),
    watchdogMs: 200,
    downloadTimeoutMs: 1000,
    crashLoopStarts: 3,
    logger: pino({ level: 'silent' }),
    loadModel: async (bytes) => {
      const v = versionOf(bytes);
      loads.push(v);
      await behaviour.get(v)?.loadGate;
      return {
        contract: {
          inputSpec: {
            ...testManifest(v, '').inputSpec,
            ...(behaviour.get(v)?.inputWidth !== undefined
              ? { width: behaviour.get(v)!.inputWidth }
              : {}),
          },
        },
        run: async () => {
          if (behaviour.get(v)?.goldenFails) throw new Error(`${v} exploded`);
          return { score: 0.1 };
        },
        close: async () => {
          closed.push(v);
        },
      } as unknown as ScoringModel;
    },
    hooks: {
      phase: (p) => phases.push(p),
      activated: (m, source) => activated.push({ version: m.version, source }),
      refused: (m, err) =>
        refused.push({
          version: m?.version,
          code: isLinesightError(err) ? err.code : 'none',
          message: String((err as Error).message),
        }),
      handled: () => undefined,
    },
  });
});

afterEach(async () => {
  await updater.close();
  await slot.close();
  await rm(dir, { recursive: true, force: true });
});

async function stored(): Promise<ModelStoreState> {
  return JSON.parse(await readFile(join(store.dir, 'state.json'), 'utf8')) as ModelStoreState;
}

describe('ModelUpdater input-spec check', () => {
  it("refuses a model whose own input spec differs from its signed manifest's, and keeps the live one", async () => {
    const v1 = await version('1.0.0');
    await apply(v1);
    expect(slot.info?.version).toBe('1.0.0');
    const v2 = await version('2.0.0');
    behaviour.set('2.0.0', { inputWidth: testManifest('2.0.0', '').inputSpec.width + 1 });
    await apply(v2);
    expect(loads).toEqual(['1.0.0', '2.0.0']);
    expect(refused).toEqual([
      {
        version: '2.0.0',
        code: 'ERR_AGENT_MODEL_VERIFY',
        message: "m@2.0.0: the model's own input spec differs from its signed manifest",
      },
    ]);
    expect(closed).toContain('2.0.0');
    expect(slot.info?.version).toBe('1.0.0');
  });
});

describe('ModelUpdater.quarantineLive', () => {
  it('quarantines the live version, falls back to last-known-good through the golden check, and refuses it again', async () => {
    const v1 = await version('1.0.0');
    const v2 = await version('2.0.0');
    await apply(v1);
    await apply(v2);
    expect(slot.info?.version).toBe('2.0.0');
    loads.length = 0;
    activated.length = 0;

    await updater.quarantineLive(v2.manifest, WATCHDOG);
    expect(slot.info?.version).toBe('1.0.0');
    // Loaded afresh (in a new model, golden inputs run) rather than trusted blindly.
    expect(loads).toEqual(['1.0.0']);
    expect(activated).toEqual([{ version: '1.0.0', source: 'last-known-good' }]);
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ version: '2.0.0', code: 'ERR_AGENT_WATCHDOG' });
    expect(refused[0]?.message).toBe(
      'watchdog: 3 consecutive runs over 200 ms on m@2.0.0; quarantined, falling back to the last-known-good version m@1.0.0',
    );
    await eventually(() => closed.includes('2.0.0'), { intervalMs: 2 });

    const state = await stored();
    expect(state.active?.manifest.version).toBe('1.0.0');
    expect(state.lastKnownGood).toBeNull();
    expect(state.quarantined).toEqual([v2.manifest.sha256]);
    expect(state.quarantineReasons[v2.manifest.sha256]).toMatchObject(WATCHDOG);

    // Desired state naming it again: refused with the same code and reason, not loaded.
    await apply(v2);
    expect(loads).toEqual(['1.0.0']);
    expect(slot.info?.version).toBe('1.0.0');
    expect(refused[1]).toMatchObject({ version: '2.0.0', code: 'ERR_AGENT_WATCHDOG' });
    expect(refused[1]?.message).toMatch(
      /^m@2\.0\.0 is quarantined on this device \(watchdog: 3 consecutive runs over 200 ms on m@2\.0\.0\); it is not loaded again/,
    );

    // A different version loads normally.
    const v3 = await version('3.0.0');
    await apply(v3);
    expect(slot.info?.version).toBe('3.0.0');
    expect((await stored()).lastKnownGood?.manifest.version).toBe('1.0.0');
  });

  it('with no last-known-good stops running the version; a new version loads normally', async () => {
    const v2 = await version('2.0.0');
    await apply(v2);
    phases.length = 0;

    await updater.quarantineLive(v2.manifest, WATCHDOG);
    expect(slot.hasModel).toBe(false);
    expect(phases).toEqual(['idle']);
    expect(activated.map((a) => a.source)).toEqual(['update']);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.message).toMatch(/; quarantined, no last-known-good version to fall back/);
    await eventually(() => closed.includes('2.0.0'), { intervalMs: 2 });
    const state = await stored();
    expect(state.active).toBeNull();
    expect(state.quarantined).toEqual([v2.manifest.sha256]);

    const v3 = await version('3.0.0');
    await apply(v3);
    expect(slot.info?.version).toBe('3.0.0');
    expect((await stored()).active?.manifest.version).toBe('3.0.0');
  });

  it('stops running the version when last-known-good fails its golden check', async () => {
    const v1 = await version('1.0.0');
    const v2 = await version('2.0.0');
    await apply(v1);
    await apply(v2);
    behaviour.set('1.0.0', { goldenFails: true });

    await updater.quarantineLive(v2.manifest, WATCHDOG);
    expect(slot.hasModel).toBe(false);
    expect(refused.map((r) => [r.version, r.code])).toEqual([
      ['2.0.0', 'ERR_AGENT_WATCHDOG'],
      ['1.0.0', 'ERR_MODEL_OUTPUT'],
    ]);
    expect(closed).toContain('1.0.0');
  });

  it('lets an update that went live meanwhile win over the fallback', async () => {
    const v1 = await version('1.0.0');
    const v2 = await version('2.0.0');
    const v3 = await version('3.0.0');
    await apply(v1);
    await apply(v2);
    let open!: () => void;
    behaviour.set('1.0.0', { loadGate: new Promise<void>((r) => (open = r)) });

    const quarantined = updater.quarantineLive(v2.manifest, WATCHDOG);
    await eventually(() => loads.at(-1) === '1.0.0', { intervalMs: 2 });
    await apply(v3);
    expect(slot.info?.version).toBe('3.0.0');
    open();
    await quarantined;
    expect(slot.info?.version).toBe('3.0.0');
    expect(activated.filter((a) => a.source === 'last-known-good')).toEqual([]);
    expect(closed).toContain('1.0.0');
    // Both state changes survived: v3 active, v2 quarantined.
    const state = await stored();
    expect(state.active?.manifest.version).toBe('3.0.0');
    expect(state.quarantined).toEqual([v2.manifest.sha256]);
  });
});

describe('ModelUpdater with the same bytes under a new version', () => {
  it('runs and records the version it was told to run, without a download', async () => {
    const v1 = await version('1.0.0');
    const v0 = await version('0.9.0');
    await apply(v0);
    await apply(v1);
    const manifest: Manifest = { ...v1.manifest, version: '1.0.1' };
    await apply({
      manifest,
      bytes: v1.bytes,
      assignment: { signed: signer.sign(manifest), artifactUrl: '/unreachable' },
    });
    expect(slot.info?.version).toBe('1.0.1');
    expect(activated.at(-1)).toEqual({ version: '1.0.1', source: 'update' });
    expect(refused).toEqual([]);
    const state = await stored();
    expect(state.active?.manifest.version).toBe('1.0.1');
    // The same bytes are not their own fallback: last-known-good stays the version before.
    expect(state.lastKnownGood?.manifest.version).toBe('0.9.0');
  });
});
