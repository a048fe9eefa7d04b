// Agent resilience (a `linesight agent` process): kill -9 in the middle of a download and
// in the middle of a swap. After a kill during a download the restarted agent runs the
// verified live version at once and resumes the download where its part file ends, with
// an HTTP Range request the cloud answers (the artifact is one the cloud registered,
// relayed and throttled by the rig's artifact server); after a kill while a new version
// loads, the store still names the previous version, which the restarted agent runs until
// the swap completes. The rig signs the assignments (test/helpers/resilience-setup.ts).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { sha256Hex } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { withPadding, withSlowSideChain } from '../helpers/onnx-mutations.ts';
import { ResilienceRig, modelLiveLog, startedVersion } from '../helpers/resilience-setup.ts';

const models = inject('models');
let rig: ResilienceRig;

beforeAll(async () => {
  rig = await ResilienceRig.start('kill9');
});
afterEach(() => rig.afterEach());
afterAll(() => rig?.close());

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

describe('agent resilience: kill -9', () => {
  it('survives kill -9 in the middle of a download (resumed with Range) and of a swap, and converges', async () => {
    const id = 'killer';
    const dataDir = await rig.provision(id);
    const args = ['--watchdog-ms', '10000'];
    let agent = await rig.startAgent(id, { seed: 13, fps: 5, args });
    const v1 = await readFile(models.v1);
    await rig.setDesired(id, { model: await rig.assignment('line', '1.0.0', v1) });
    await rig.waitForFramesOn(id, '1.0.0', 3);

    // A 6 MB artifact the cloud registers and serves; the proxy sends it at 1.5 MB/s.
    const big = withPadding(await readFile(models.v2), 6 * 1024 * 1024, 'resilience download test');
    await rig.api.publishModel({ name: 'line-big', version: '3.0.0', onnx: big });
    const bigAssignment = await rig.assignment('line', '3.0.0', big, {
      artifactUrl: '/v1/models/line-big/3.0.0/artifact',
    });
    const part = join(dataDir, 'models', `${sha256Hex(big)}.onnx.part`);
    const server = rig.server;
    const artifactRequests = () => server.requests.filter((r) => r.path.endsWith('/artifact'));
    server.throttleBytesPerSec = 1.5 * 1024 * 1024;
    const downloadStarted = performance.now();
    await rig.setDesired(id, { model: bigAssignment });
    const firstRequest = await eventually(() => artifactRequests()[0], {
      what: 'download started',
    });
    expect(firstRequest.range).toBeUndefined();
    await eventually(() => (firstRequest.bytesSent >= big.byteLength / 2 ? true : undefined), {
      what: 'half the artifact sent',
      timeoutMs: 60_000,
      intervalMs: 20,
    });
    await rig.kill9(agent);
    const killedAfterMs = performance.now() - downloadStarted;
    const partBytes = (await sizeOf(part)) ?? 0;
    expect(partBytes).toBeGreaterThan(0);
    expect(partBytes).toBeLessThan(big.byteLength);
    expect(await sizeOf(join(dataDir, 'models', `${sha256Hex(big)}.onnx`))).toBeUndefined();

    // Restart: it runs the verified live version at once and resumes where the part file ends.
    const resumeStarted = performance.now();
    agent = await rig.startAgent(id, { seed: 13, fps: 5, args });
    expect(startedVersion(agent)).toBe('1.0.0');
    await agent.waitForLog(modelLiveLog('3.0.0'), 90_000);
    const resumeMs = performance.now() - resumeStarted;
    const resumed = artifactRequests()[1];
    expect(resumed?.range).toBe(`bytes=${partBytes}-`);
    expect(resumed?.status).toBe(206);
    expect(resumed?.bytesSent).toBe(big.byteLength - partBytes);
    expect(artifactRequests()).toHaveLength(2);
    await rig.waitForFramesOn(id, '3.0.0', 3);
    server.throttleBytesPerSec = undefined;
    expect(await sizeOf(part)).toBeUndefined();
    console.log(
      `[download] ${big.byteLength} bytes at 1.5 MB/s; killed after ${killedAfterMs.toFixed(0)} ms with ` +
        `${partBytes} bytes in the part file; restart to live on the resumed download ${resumeMs.toFixed(0)} ms`,
    );

    // Mid-swap: a version that loads slowly (its golden check takes a while); kill as loading starts.
    const slowLoad = withSlowSideChain(v1, { size: 1024, steps: 12, when: 'always' });
    await rig.setDesired(id, { model: await rig.assignment('line', '4.0.0', slowLoad) });
    await eventually(() => (rig.reported(id)?.phase === 'loading' ? true : undefined), {
      what: 'loading phase',
      timeoutMs: 60_000,
      intervalMs: 1,
    });
    await rig.kill9(agent);
    const atKill = await rig.readState(id);
    // The swap had not happened: the store still names the previous version.
    expect(atKill.active?.manifest.version).toBe('3.0.0');

    agent = await rig.startAgent(id, { seed: 13, fps: 5, args });
    expect(startedVersion(agent)).toBe('3.0.0');
    await agent.waitForLog(modelLiveLog('4.0.0'), 90_000);
    await rig.waitForFramesOn(id, '4.0.0', 2);
    const after = await rig.readState(id);
    expect(after.active?.manifest.version).toBe('4.0.0');
    expect(after.lastKnownGood?.manifest.version).toBe('3.0.0');
    await rig.stopCleanly(agent);
  });
});
