// Faults of the cloud while a fleet floods it: kill -9 and restart (with a
// simulated fleet of 20 more devices reconnecting at once), and SIGSTOP for a
// minute. Three `linesight agent` processes score 10 frames/s each and write
// every verdict to the plant broker; the line must keep getting a verdict for
// every frame, no `good` without a score, and every verdict-log record must
// reach the cloud once after it is back. Figures go to the suite's report.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess } from '../helpers/linesight-process.ts';
import { FaultRig } from './fault-rig.ts';
import { recordFault } from './fault-report.ts';
import { freezeSec } from './fault-settings.ts';
import { sumAvailability } from './verdict-availability.ts';

const models = inject('models');
const IDS = ['flood-1', 'flood-2', 'flood-3'];
const STORM_DEVICES = 20;
const rig = new FaultRig();
let sim: LinesightProcess | undefined;

/** Records figures of every device for boot 0, frames captured in the window. */
async function records(window: { fromMs: number; beforeMs: number; cloudKilledAtMs?: number }) {
  const each = await Promise.all(IDS.map((id) => rig.recordFigures(id, [0], window)));
  return {
    lost: each.reduce((n, r) => n + r.lost, 0),
    lostInFlight: each.reduce((n, r) => n + r.lostInFlight, 0),
    duplicated: each.reduce((n, r) => n + r.duplicated, 0),
  };
}

/** Waits until the cloud holds verdict records of frames captured after `atMs` from every device. */
async function cloudCaughtUp(atMs: number): Promise<number> {
  await eventually(
    async () => {
      const latest = await Promise.all(
        IDS.map(async (id) =>
          Math.max(0, ...(await rig.cloudRecords(id)).map((r) => Date.parse(r.at))),
        ),
      );
      return latest.every((ms) => ms >= atMs) ? true : undefined;
    },
    { what: 'the cloud to hold records made after the fault', timeoutMs: 180_000, intervalMs: 250 },
  );
  return Date.now();
}

beforeAll(async () => {
  await rig.start(models.v1);
  await rig.provision(IDS);
  await Promise.all(IDS.map((id) => rig.startAgent(id)));
  await Promise.all(
    IDS.map((id) => rig.device(id).agent!.waitForLog((l) => l.msg === 'model live', 120_000)),
  );
  // The fleet is scoring and the cloud ingesting before any fault.
  await cloudCaughtUp(Date.now());
});

afterAll(async () => {
  await sim?.stop();
  await rig.close();
});

describe('cloud faults under a flood of results', () => {
  it('kill -9 of the cloud mid-flood and a restart: the line never waits, nothing lost, every device back by itself, no reconnect storm', async () => {
    sim = new LinesightProcess([
      'sim',
      '--devices',
      String(STORM_DEVICES),
      '--fps',
      '1',
      '--id-prefix',
      'storm',
      '--cloud',
      rig.httpUrl,
      '--token',
      rig.adminToken,
      '--data-dir',
      join(rig.dir, 'storm'),
      '--log-level',
      'info',
    ]);
    /** The first connect of each simulated device at or after `after`, ms. */
    const connected = (after: number) => {
      const first = new Map<string, number>();
      for (const l of sim!.lines)
        if (l.msg === 'mqtt connected' && Number(l.time) >= after && !first.has(String(l.deviceId)))
          first.set(String(l.deviceId), Number(l.time));
      return [...first.values()];
    };
    await eventually(() => (connected(0).length >= STORM_DEVICES ? true : undefined), {
      what: `${STORM_DEVICES} simulated devices connected`,
      timeoutMs: 400_000,
      intervalMs: 250,
    });

    const fromMs = Date.now();
    await rig.lineCaughtUp(IDS, fromMs + 3000);
    const killedAt = Date.now();
    await rig.kill9Cloud();
    await rig.startCloud();
    const readyAt = Date.now();
    const connectedAt = await rig.allConnected(IDS);
    const storm = await eventually(
      () => {
        const times = connected(killedAt);
        return times.length >= STORM_DEVICES ? times : undefined;
      },
      { what: 'every simulated device reconnected', timeoutMs: 300_000, intervalMs: 250 },
    );
    const caughtUpAt = await cloudCaughtUp(connectedAt);
    const toMs = caughtUpAt;
    await rig.lineCaughtUp(IDS, toMs);

    const availability = sumAvailability(rig.availability(IDS, fromMs, toMs));
    const rec = await records({ fromMs, beforeMs: toMs, cloudKilledAtMs: killedAt });
    storm.sort((a, b) => a - b);
    let peak = 0;
    for (let i = 0; i < storm.length; i++) {
      let j = i;
      while (j + 1 < storm.length && storm[j + 1]! - storm[i]! < 1000) j++;
      peak = Math.max(peak, j - i + 1);
    }
    const spreadSec = (storm.at(-1)! - storm[0]!) / 1000;
    await recordFault({
      fault: 'cloud kill -9 mid-flood, restart',
      devices: IDS.length + STORM_DEVICES,
      faultSec: (readyAt - killedAt) / 1000,
      recoverySec: (caughtUpAt - readyAt) / 1000,
      recordsLost: rec.lost,
      recordsLostInFlight: rec.lostInFlight,
      recordsDuplicated: rec.duplicated,
      availability,
      notes:
        `cloud down ${((readyAt - killedAt) / 1000).toFixed(1)} s; agents reconnected ${((connectedAt - readyAt) / 1000).toFixed(1)} s after it listened; ` +
        `${STORM_DEVICES} simulated devices reconnected over ${spreadSec.toFixed(1)} s, peak ${peak} connects/s (backoff 1 s doubling, jitter 50-100 %)`,
    });
    await sim.stop();
    sim = undefined;

    expect(availability.unscoredGood).toBe(0);
    expect(rig.tap.invalid).toBe(0);
    // The embedded broker acknowledges a batch only after the ingest committed it: a kill
    // loses nothing the agents had deleted, not even the batch in flight.
    expect(rec.lost).toBe(0);
    expect(rec.lostInFlight).toBe(0);
    expect(rec.duplicated).toBe(0);
  });

  it(`SIGSTOP of the cloud for ${freezeSec()} s: the line keeps its verdicts, the fleet reconnects and forwards everything after SIGCONT`, async () => {
    const freezeMs = freezeSec() * 1000;
    const fromMs = Date.now();
    await rig.lineCaughtUp(IDS, fromMs + 3000);
    const cloud = rig.cloud!;
    const frozenAt = Date.now();
    cloud.child.kill('SIGSTOP');
    // The fault lasts as long as it takes the line to get verdicts of frames captured
    // `freezeMs` after the freeze: the line is what must not notice.
    try {
      await rig.lineCaughtUp(IDS, frozenAt + freezeMs, freezeMs + 120_000);
    } finally {
      cloud.child.kill('SIGCONT');
    }
    const thawedAt = Date.now();
    const connectedAt = await rig.allConnected(IDS);
    const caughtUpAt = await cloudCaughtUp(thawedAt);
    const toMs = caughtUpAt;
    await rig.lineCaughtUp(IDS, toMs);
    const availability = sumAvailability(rig.availability(IDS, fromMs, toMs));
    const rec = await records({ fromMs, beforeMs: toMs });
    await recordFault({
      fault: `cloud frozen (SIGSTOP ${freezeSec()} s)`,
      devices: IDS.length,
      faultSec: (thawedAt - frozenAt) / 1000,
      recoverySec: (caughtUpAt - thawedAt) / 1000,
      recordsLost: rec.lost,
      recordsLostInFlight: rec.lostInFlight,
      recordsDuplicated: rec.duplicated,
      availability,
      notes: `agents connected ${((connectedAt - thawedAt) / 1000).toFixed(1)} s after SIGCONT; backlog of ${freezeSec()} s forwarded`,
    });
    expect(availability.unscoredGood).toBe(0);
    expect(rec.lost).toBe(0);
    expect(rec.lostInFlight).toBe(0);
    expect(rec.duplicated).toBe(0);
  });
});
