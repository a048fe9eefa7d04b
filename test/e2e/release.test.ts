// The packed release runs without a source checkout or a TypeScript loader: it is built into
// a temporary folder (compiled JavaScript; third-party dependencies linked from this
// checkout's node_modules), then its cloud and its agent run as plain `node` processes from
// another working directory, and the agent scores frames with a model the cloud rolled out.
// Node 20 cannot load a `.ts` file without a loader, so a release that still reached one
// would fail to start here.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import { buildRelease, type BuiltRelease } from '../../scripts/build-release.ts';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess } from '../helpers/linesight-process.ts';
import { FleetObserver } from '../helpers/observer.ts';

const models = inject('models');
const ID = 'release-line';
const TOKEN = randomBytes(24).toString('hex');

let dir: string;
let release: BuiltRelease;
let cloud: LinesightProcess | undefined;
let agent: LinesightProcess | undefined;
const observer = new FleetObserver();

/** Every file under `root`, relative paths; symlinked dependencies are not followed. */
async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

/** The environment of a release process: no loader smuggled in through NODE_OPTIONS. */
function releaseEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { NODE_OPTIONS: '', ...extra };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-release-'));
  release = await buildRelease({ outDir: join(dir, 'out'), pack: true, linkDeps: true });
});

afterAll(async () => {
  await agent?.stop();
  await observer.close();
  await cloud?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('packed release', () => {
  it('holds compiled JavaScript only and no TypeScript loader', async () => {
    const files = await listFiles(join(release.dir, 'node_modules', '@linesight'));
    expect(files.length).toBeGreaterThan(100);
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(files.some((f) => f.endsWith('/agent/src/main.js'))).toBe(true);
    // The inference worker and the dashboard's static files come along.
    expect(files.some((f) => f.endsWith('/vision/src/inference-worker-thread.js'))).toBe(true);
    expect(files.some((f) => f.endsWith('/cloud/src/dashboard/public/index.html'))).toBe(true);
    const manifest = JSON.parse(await readFile(join(release.dir, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      bundleDependencies: string[];
    };
    expect(Object.keys(manifest.dependencies)).not.toContain('tsx');
    expect(manifest.bundleDependencies).toContain('@linesight/agent');
    // Third-party dependencies are pinned to the versions the tests ran against.
    for (const version of Object.values(manifest.dependencies))
      expect(version).toMatch(/^\d+\.\d+\.\d+/);
    const agentManifest = JSON.parse(
      await readFile(join(release.dir, 'node_modules/@linesight/agent/package.json'), 'utf8'),
    ) as { exports: Record<string, string> };
    expect(agentManifest.exports['.']).toBe('./src/index.js');
  });

  it('packs into an npm tarball with the bundled packages, the unit and the install script', async () => {
    expect(release.tarball).toMatch(/linesight-\d+\.\d+\.\d+\.tgz$/);
    const { stdout } = await promisify(execFile)('tar', ['-tzf', release.tarball!], {
      maxBuffer: 16 * 1024 * 1024,
    });
    const entries = stdout.split('\n').filter((e) => e !== '');
    for (const must of [
      'package/package.json',
      'package/bin/linesight.js',
      'package/deploy/linesight-agent@.service',
      'package/deploy/install-agent.sh',
      'package/node_modules/@linesight/agent/src/main.js',
      'package/node_modules/@linesight/cli/bin/linesight.js',
    ])
      expect(entries).toContain(must);
    expect(entries.filter((e) => e.endsWith('.ts'))).toEqual([]);
    // No third-party package rides along: npm installs those for the device's CPU.
    expect(entries.filter((e) => /^package\/node_modules\/(?!@linesight\/)/.test(e))).toEqual([]);
  });

  it("runs the compiled cloud and agent, and the agent scores frames with the cloud's model", async () => {
    const work = join(dir, 'work');
    cloud = new LinesightProcess(
      ['cloud', '--http-port', '0', '--mqtt-port', '0', '--data-dir', join(work, 'cloud')],
      releaseEnv({ LINESIGHT_ADMIN_TOKEN: TOKEN }),
      { bin: release.bin, cwd: dir },
    );
    const ready = await cloud.waitForLog((l) => typeof l.httpUrl === 'string', 120_000);
    const httpUrl = ready.httpUrl as string;
    const mqttUrl = ready.mqttUrl as string;
    const health = await fetch(`${httpUrl}/healthz`);
    expect(health.status).toBe(200);
    // The dashboard's static files are served from the release.
    const page = await fetch(`${httpUrl}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');

    const api = new CloudApiClient({ baseUrl: httpUrl, adminToken: TOKEN });
    await observer.start(mqttUrl, TOKEN);
    await api.publishModel({ name: 'rel', version: '1.0.0', onnx: await readFile(models.v1) });
    const creds = await api.provisionDevice(ID);
    const agentDir = join(work, 'agent');
    await writeDeviceCredentials(join(agentDir, 'device.json'), {
      ...creds,
      cloudUrl: httpUrl,
      mqttUrl,
    });
    agent = new LinesightProcess(
      [
        'agent',
        '--device-id',
        ID,
        '--camera',
        'synthetic:3',
        '--fps',
        '20',
        '--data-dir',
        agentDir,
      ],
      releaseEnv(),
      { bin: release.bin, cwd: dir },
    );
    await agent.waitForLog((l) => l.msg === 'agent started', 120_000);
    await api.createRollout({ model: 'rel', version: '1.0.0' });
    const scored = await eventually(
      () => {
        const done = (observer.results.get(ID) ?? []).filter(
          (r) => r.model?.version === '1.0.0' && r.verdict !== 'unknown',
        );
        return done.length >= 5 ? done : undefined;
      },
      { what: 'five frames scored by the rolled-out model', timeoutMs: 120_000, intervalMs: 100 },
    );
    expect(scored.every((r) => typeof r.score === 'number' && Number.isFinite(r.score))).toBe(true);
    expect(await agent.stop(), agent.exitReport()).toBe(0);
    expect(await cloud.stop(), cloud.exitReport()).toBe(0);
  });
});
