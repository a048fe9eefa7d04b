// A network partition of one device: its MQTT and HTTP traffic to the cloud
// pass through TCP proxies in the test that blackhole everything (held bytes,
// unanswered connections, no resets) for minutes, then heal. The line keeps
// getting a verdict for every frame meanwhile; once healed the device comes
// back by itself and forwards its verdict log without a loss or a duplicate.
// A second device, not partitioned, shows the fleet around it is untouched.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { eventually } from '@linesight/testkit/eventually';
import { FaultRig } from './fault-rig.ts';
import { recordFault } from './fault-report.ts';
import { partitionSec } from './fault-settings.ts';
import { sumAvailability } from './verdict-availability.ts';

const models = inject('models');
const CUT = 'cut-1';
const PEER = 'peer-1';
const rig = new FaultRig();

beforeAll(async () => {
  await rig.start(models.v1);
  await rig.provision([CUT], { behindProxies: true });
  await rig.provision([PEER]);
  for (const id of [CUT, PEER]) {
    await rig.startAgent(id);
    await rig.device(id).agent!.waitForLog((l) => l.msg === 'model live', 120_000);
  }
});

afterAll(async () => {
  await rig.close();
});

/** The newest capture time among a device's records in the cloud (0 without any). */
async function newestRecordMs(id: string): Promise<number> {
  return Math.max(0, ...(await rig.cloudRecords(id)).map((r) => Date.parse(r.at)));
}

describe('a network partition of one device', () => {
  it(`for ${partitionSec()} s: the line keeps its verdicts, the device comes back by itself, nothing lost or doubled`, async () => {
    const partitionMs = partitionSec() * 1000;
    const { proxies } = rig.device(CUT);
    const fromMs = Date.now();
    await rig.lineCaughtUp([CUT, PEER], fromMs + 3000);
    await eventually(async () => ((await newestRecordMs(CUT)) >= fromMs ? true : undefined), {
      what: 'records of the device in the cloud before the cut',
      timeoutMs: 120_000,
      intervalMs: 250,
    });

    const cutAt = Date.now();
    proxies!.mqtt.partition();
    proxies!.http.partition();
    let sawDisconnect = false;
    try {
      // The partition lasts until the line has verdicts of frames captured `partitionMs` after
      // the cut; meanwhile the device must notice it lost the cloud (keepalive).
      await eventually(
        async () => {
          if (!(await rig.cloudConnected(CUT))) sawDisconnect = true;
          return rig.tap.caughtUp([CUT, PEER], cutAt + partitionMs) ? true : undefined;
        },
        {
          what: 'the line to keep getting verdicts through the partition',
          timeoutMs: partitionMs + 120_000,
          intervalMs: 500,
        },
      );
    } finally {
      proxies!.mqtt.heal();
      proxies!.http.heal();
    }
    const healedAt = Date.now();
    const connectedAt = await rig.allConnected([CUT], 300_000);
    await eventually(async () => ((await newestRecordMs(CUT)) >= healedAt ? true : undefined), {
      what: 'records made after the heal in the cloud',
      timeoutMs: 300_000,
      intervalMs: 250,
    });
    const caughtUpAt = Date.now();
    await rig.lineCaughtUp([CUT, PEER], caughtUpAt);
    const [cut, peer] = rig.availability([CUT, PEER], fromMs, caughtUpAt);
    const rec = await rig.recordFigures(CUT, [0], { fromMs, beforeMs: caughtUpAt });
    const peerRec = await rig.recordFigures(PEER, [0], { fromMs, beforeMs: caughtUpAt });
    await recordFault({
      fault: `network partition of one device (${partitionSec()} s)`,
      devices: 2,
      faultSec: (healedAt - cutAt) / 1000,
      recoverySec: (caughtUpAt - healedAt) / 1000,
      recordsLost: rec.lost + peerRec.lost,
      recordsLostInFlight: rec.lostInFlight + peerRec.lostInFlight,
      recordsDuplicated: rec.duplicated + peerRec.duplicated,
      availability: sumAvailability([cut!, peer!]),
      notes:
        `device saw the cloud gone: ${sawDisconnect ? 'yes' : 'no'}; reconnected ${((connectedAt - healedAt) / 1000).toFixed(1)} s after the heal ` +
        `(backoff up to 60 s); MQTT connections through the proxy ${proxies!.mqtt.connections}`,
    });
    expect(sawDisconnect).toBe(true);
    expect(cut!.unscoredGood + peer!.unscoredGood).toBe(0);
    expect(rec.lost + peerRec.lost).toBe(0);
    expect(rec.duplicated + peerRec.duplicated).toBe(0);
  });
});
