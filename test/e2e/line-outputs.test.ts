// End-to-end: verdicts reach the line without the cloud. `linesight agent`
// processes score synthetic frames and write each verdict to a plant MQTT
// broker (Debian's mosquitto on a free port; a standalone aedes broker where
// mosquitto is missing, unless LINESIGHT_REQUIRE_MOSQUITTO=1), a PLC (a
// Modbus TCP server on 127.0.0.1), a plant webhook (an HTTP server that refuses
// its first requests) and the agent's own SSE endpoint. The cloud
// and its broker are stopped mid-stream; a PLC hangs mid-stream and comes
// back; a device with no model, and one whose model hangs on camera frames,
// send `unknown` everywhere.
import { request } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import { Cloud } from '@linesight/cloud';
import { CHANNEL_SCHEMAS, decodePayload, type FrameResult } from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess } from '../helpers/linesight-process.ts';
import { ModbusPlc, type PlcMap } from '../helpers/modbus-plc.ts';
import { withSlowSideChain } from '../helpers/onnx-mutations.ts';
import { startPlantBroker, type PlantBroker } from '../helpers/plant-broker.ts';
import { WebhookReceiver } from '../helpers/webhook-receiver.ts';

const models = inject('models');
/** A contiguous register block: one Modbus write per verdict (plus the coils). */
const MAP: Required<PlcMap> = {
  defectCoil: 0,
  unknownCoil: 1,
  scoreRegister: 100,
  verdictRegister: 101,
  sequenceRegister: 102,
};
const VERDICT_CODES: Record<FrameResult['verdict'], number> = { good: 0, defect: 1, unknown: 2 };

let dir: string;
let cloud: Cloud;
let cloudUrls: { http: string; mqtt: string };
let cloudDown = false;
let broker: PlantBroker;
let plant: MqttClient;
/** Verdicts received by the plant broker's subscriber, per device. */
const plantVerdicts = new Map<string, FrameResult[]>();
const running = new Set<LinesightProcess>();
const cleanups: (() => Promise<void>)[] = [];

/** An SSE client of the agent's /verdicts/stream, collecting verdicts. */
class SseClient {
  readonly verdicts: FrameResult[] = [];
  #req: ReturnType<typeof request> | undefined;

  constructor(url: string) {
    this.#req = request(`${url}/verdicts/stream`, (res) => {
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const data = buffer
            .slice(0, end)
            .split('\n')
            .find((l) => l.startsWith('data: '));
          buffer = buffer.slice(end + 2);
          if (data !== undefined)
            this.verdicts.push(
              decodePayload(CHANNEL_SCHEMAS.results, Buffer.from(data.slice(6)), 'sse verdict'),
            );
        }
      });
      res.on('error', () => undefined);
    });
    this.#req.on('error', () => undefined);
    this.#req.end();
  }

  close(): void {
    this.#req?.destroy();
  }
}

async function startAgent(
  deviceId: string,
  config: { file: string; text: string },
  fps: number,
  extra: string[] = [],
): Promise<{ agent: LinesightProcess; httpUrl: string }> {
  const configFile = join(dir, config.file);
  await writeFile(configFile, config.text);
  const agent = new LinesightProcess([
    'agent',
    '--device-id',
    deviceId,
    '--cloud',
    cloudUrls.http,
    '--mqtt',
    cloudUrls.mqtt,
    '--camera',
    `synthetic:${deviceId.length}`,
    '--fps',
    String(fps),
    '--data-dir',
    join(dir, 'agents', deviceId),
    '--config',
    configFile,
    '--telemetry-interval',
    '1',
    // Restarts of the same device in this file must not count as a crash loop.
    '--stable-after',
    '1',
    '--crash-loop-starts',
    '50',
    ...extra,
  ]);
  running.add(agent);
  void agent.exited.then(() => running.delete(agent));
  const listening = await agent.waitForLog(
    (l) => l.msg === 'agent http endpoint listening',
    90_000,
  );
  await agent.waitForLog((l) => l.msg === 'agent started', 90_000);
  return { agent, httpUrl: String(listening.url) };
}

async function startPlc(): Promise<ModbusPlc> {
  const plc = new ModbusPlc(MAP);
  await plc.start();
  cleanups.push(() => plc.close());
  return plc;
}

function sseClient(httpUrl: string): SseClient {
  const client = new SseClient(httpUrl);
  cleanups.push(async () => client.close());
  return client;
}

/** Output counters from the agent's /metrics, by output name. */
async function outputMetrics(httpUrl: string, output: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const values: Record<string, number> = {};
  const pattern = new RegExp(
    `^linesight_output_(\\w+?)(?:_total)?\\{output="${output}",kind="\\w+"\\} (\\S+)$`,
    'gm',
  );
  for (const m of text.matchAll(pattern)) values[m[1]!] = Number(m[2]);
  return values;
}

function plantOf(deviceId: string): FrameResult[] {
  return plantVerdicts.get(deviceId) ?? [];
}

/**
 * Sequence numbers in (after, upTo], a repeat of the previous one dropped: a
 * write the PLC took but answered too late for the agent is written again
 * (at least once), and the PLC sees the same sequence number twice.
 */
function seqsIn(list: readonly { seq: number }[], after: number, upTo: number): number[] {
  return list
    .map((v) => v.seq)
    .filter((s, i, all) => s > after && s <= upTo && (i === 0 || all[i - 1] !== s));
}

function expectIncreasing(seqs: number[], what: string): void {
  for (let i = 1; i < seqs.length; i++)
    expect(seqs[i]!, `${what}: ${seqs[i - 1]} then ${seqs[i]}`).toBeGreaterThan(seqs[i - 1]!);
}

function outputsYaml(plcPort: number, extraModbus = '', extraOutputs = ''): string {
  return `# agent config under test
http:
  port: 0
outputs:
  - kind: mqtt
    url: ${broker.url}
    qos: 1
  - kind: modbus
    host: 127.0.0.1
    port: ${plcPort}
    pulseMs: 50
    timeoutMs: 1000
    map:
      defectCoil: ${MAP.defectCoil}
      unknownCoil: ${MAP.unknownCoil}
      scoreRegister: ${MAP.scoreRegister}
      verdictRegister: ${MAP.verdictRegister}
      sequenceRegister: ${MAP.sequenceRegister}
${extraModbus}${extraOutputs}`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-line-outputs-'));
  broker = await startPlantBroker();
  console.log(`plant broker: ${broker.kind} at ${broker.url}`);
  plant = await mqtt.connectAsync(broker.url, {
    clientId: `plant-observer-${process.pid}`,
    reconnectPeriod: 0,
  });
  plant.on('message', (topic, payload) => {
    const deviceId = topic.split('/')[2] ?? '';
    const list = plantVerdicts.get(deviceId) ?? [];
    list.push(decodePayload(CHANNEL_SCHEMAS.results, payload, 'plant verdict'));
    plantVerdicts.set(deviceId, list);
  });
  await plant.subscribeAsync('linesight/line/+/verdicts', { qos: 1 });

  cloud = new Cloud(
    { httpPort: 0, mqttPort: 0, dataDir: join(dir, 'cloud') },
    pino({ level: 'warn' }),
  );
  cloudUrls = await cloud.start();
  const api = new CloudApiClient({ baseUrl: cloudUrls.http, adminToken: cloud.adminToken.token });
  await api.publishModel({
    name: 'line',
    version: '1.0.0',
    onnx: await readFile(models.v1),
  });
  // Free on the golden inputs (so it registers and passes the device's check), about half a
  // second per run on camera frames: far over the watchdog limit the hanging device runs with.
  await api.publishModel({
    name: 'hang',
    version: '1.0.0',
    onnx: withSlowSideChain(await readFile(models.v1), { size: 1024, steps: 50 }),
  });
  for (const id of ['line-a', 'line-u', 'line-h']) {
    const creds = await api.provisionDevice(id);
    await writeDeviceCredentials(join(dir, 'agents', id, 'device.json'), creds);
  }
  await api.createRollout({ model: 'line', version: '1.0.0', devices: ['line-a'] });
  await api.createRollout({ model: 'hang', version: '1.0.0', devices: ['line-h'] });
});

afterEach(async () => {
  await Promise.all([...running].map((a) => a.stop()));
  // A test that stopped the cloud leaves it back on the same ports for the next one.
  if (cloudDown) {
    cloud = new Cloud(
      {
        httpPort: Number(new URL(cloudUrls.http).port),
        mqttPort: Number(new URL(cloudUrls.mqtt).port),
        dataDir: join(dir, 'cloud'),
      },
      pino({ level: 'warn' }),
    );
    await cloud.start();
    cloudDown = false;
  }
  // Sequence numbers start again with each agent process.
  plantVerdicts.clear();
  for (const c of cleanups.splice(0).reverse()) await c();
});

afterAll(async () => {
  await Promise.all([...running].map((a) => a.stop()));
  await plant?.endAsync(true);
  await cloud?.close();
  await broker?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('verdicts reach the line without the cloud', () => {
  it('with the cloud and its broker stopped, every verdict reaches the plant broker, the PLC, a webhook and SSE, in order, one per frame', async () => {
    const plc = await startPlc();
    const webhook = new WebhookReceiver({ token: 'plant-webhook-secret', failFirst: 3 });
    await webhook.start();
    cleanups.push(() => webhook.close());
    const webhookYaml = `  - kind: webhook
    url: ${webhook.url}
    batchMax: 20
    timeoutMs: 2000
    headers:
      authorization: Bearer plant-webhook-secret
`;
    const { agent, httpUrl } = await startAgent(
      'line-a',
      { file: 'line-a.yaml', text: outputsYaml(plc.port, '', webhookYaml) },
      10,
    );
    await agent.waitForLog((l) => l.msg === 'model live', 90_000);
    const sse = sseClient(httpUrl);
    await eventually(
      () =>
        plantOf('line-a').some((v) => v.verdict !== 'unknown') &&
        plc.commits.length >= 3 &&
        webhook.results.length >= 3 &&
        sse.verdicts.length >= 3
          ? true
          : undefined,
      { what: 'scored verdicts at all four outputs', timeoutMs: 60_000, intervalMs: 50 },
    );

    await cloud.close();
    cloudDown = true;
    await eventually(
      async () => {
        const health = (await (await fetch(`${httpUrl}/healthz`)).json()) as {
          cloudConnected: boolean;
        };
        return health.cloudConnected ? undefined : true;
      },
      { what: 'the agent to see the cloud gone', timeoutMs: 30_000, intervalMs: 50 },
    );
    // Every verdict after this one was made with the cloud down.
    const from = sse.verdicts.at(-1)!.seq;
    const upTo = await eventually(() => sse.verdicts.filter((v) => v.seq > from)[29]?.seq, {
      what: '30 verdicts on SSE after the cloud stopped',
      timeoutMs: 60_000,
      intervalMs: 50,
    });
    await eventually(
      () =>
        plantOf('line-a').some((v) => v.seq >= upTo) &&
        plc.commits.some((c) => c.seq >= upTo) &&
        webhook.results.some((v) => v.seq >= upTo)
          ? true
          : undefined,
      {
        what: 'the plant broker, the PLC and the webhook to catch up',
        timeoutMs: 30_000,
        intervalMs: 50,
      },
    );

    const sseSeqs = seqsIn(sse.verdicts, from, upTo);
    const plantSeqs = seqsIn(plantOf('line-a'), from, upTo);
    const plcSeqs = seqsIn(plc.commits, from, upTo);
    expect(sseSeqs).toHaveLength(30);
    // SSE is written exactly once per verdict: no repeat even before the filter above.
    expectIncreasing(
      sse.verdicts.map((v) => v.seq).filter((q) => q > from && q <= upTo),
      'sse',
    );
    expect(plantSeqs).toEqual(sseSeqs);
    expect(plcSeqs).toEqual(sseSeqs);
    // The webhook answered 503 three times first: those verdicts were posted again, none lost.
    expect(webhook.refused).toBe(3);
    expect(webhook.unauthorized).toBe(0);
    expect(seqsIn(webhook.results, from, upTo)).toEqual(sseSeqs);
    // The same verdict everywhere, and scored by the stored model, not unknown.
    const bySeq = new Map(sse.verdicts.map((v) => [v.seq, v]));
    for (const v of [...plantOf('line-a'), ...webhook.results].filter(
      (x) => x.seq > from && x.seq <= upTo,
    )) {
      expect(v).toEqual(bySeq.get(v.seq));
      expect(v.verdict).not.toBe('unknown');
    }
    for (const c of plc.commits.filter((x) => x.seq > from && x.seq <= upTo)) {
      const v = bySeq.get(c.seq)!;
      expect(c.verdict, `PLC verdict of frame ${c.seq}`).toBe(VERDICT_CODES[v.verdict]);
      // Score x1000 as a signed 16-bit INT.
      expect(c.score >= 0x8000 ? c.score - 0x10000 : c.score).toBe(Math.round(v.score! * 1000));
      if (v.verdict === 'defect') expect(c.defectCoil, `reject coil of frame ${c.seq}`).toBe(true);
    }
    // The agent's own log of recent verdicts agrees.
    const recent = (await (await fetch(`${httpUrl}/verdicts?limit=1000`)).json()) as {
      verdicts: FrameResult[];
    };
    expect(seqsIn(recent.verdicts, from, upTo)).toEqual(sseSeqs);
    // The refused posts came first, before the cloud stopped: retried, they are not missing
    // from the webhook's record of the whole run (as far back as the agent's log reaches).
    const oldest = Math.min(...recent.verdicts.map((v) => v.seq)) - 1;
    expect(seqsIn(webhook.results, oldest, upTo)).toEqual(seqsIn(recent.verdicts, oldest, upTo));
  });

  it('a PLC that stops answering mid-stream: the other outputs get every verdict, writes resume when it answers, the gap is counted', async () => {
    const plc = await startPlc();
    const { httpUrl } = await startAgent(
      'line-a',
      {
        file: 'line-a.json',
        text: JSON.stringify({
          http: { port: 0 },
          outputs: [
            { kind: 'mqtt', url: broker.url, qos: 1 },
            {
              kind: 'modbus',
              host: '127.0.0.1',
              port: plc.port,
              map: MAP,
              pulseMs: 50,
              timeoutMs: 500,
              maxAgeMs: 1000,
              retryBackoff: { initialMs: 100, maxMs: 400 },
            },
          ],
        }),
      },
      20,
    );
    const sse = sseClient(httpUrl);
    await eventually(() => (plc.commits.length >= 10 ? true : undefined), {
      what: 'PLC commits',
      timeoutMs: 60_000,
      intervalMs: 50,
    });

    plc.freeze();
    await eventually(
      async () => ((await outputMetrics(httpUrl, 'modbus')).up === 0 ? true : undefined),
      { what: 'the agent to report the PLC down', timeoutMs: 30_000, intervalMs: 50 },
    );
    const frozenAfter = sse.verdicts.at(-1)!.seq;
    const thawAt = await eventually(
      () => sse.verdicts.filter((v) => v.seq > frozenAfter)[39]?.seq,
      { what: '40 more verdicts on SSE while the PLC hangs', timeoutMs: 60_000, intervalMs: 50 },
    );
    await eventually(() => (plantOf('line-a').some((v) => v.seq >= thawAt) ? true : undefined), {
      what: 'the plant broker to have them too',
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    const sseDuring = seqsIn(sse.verdicts, frozenAfter, thawAt);
    expect(seqsIn(plantOf('line-a'), frozenAfter, thawAt)).toEqual(sseDuring);
    expect(seqsIn(plc.commits, frozenAfter, thawAt)).toEqual([]);

    const failuresFrozen = (await outputMetrics(httpUrl, 'modbus')).failures ?? 0;
    plc.thaw();
    await eventually(() => (plc.commits.some((c) => c.seq > thawAt) ? true : undefined), {
      what: 'PLC writes to resume',
      timeoutMs: 30_000,
      intervalMs: 50,
    });
    // The gap in the PLC's sequence is what the agent counted as stale or dropped. Frames keep
    // flowing, so the PLC's commits are read first and the agent's counts after: every verdict
    // before the last commit has had its turn by then, so each one missing at the PLC is counted.
    // A count may exceed the gap by the writes that timed out after the thaw: a PLC answering
    // late (a busy machine) can commit a write that the agent, past its timeout, retries only
    // to find the verdict stale. It cannot know that the PLC took it.
    const counted = await eventually(
      async () => {
        const commits = seqsIn(plc.commits, -1, Number.POSITIVE_INFINITY);
        const m = await outputMetrics(httpUrl, 'modbus');
        const first = commits[0]!;
        const last = commits.at(-1)!;
        // Every verdict up to the last commit must have reached SSE too.
        if (m.up !== 1 || !sse.verdicts.some((v) => v.seq >= last)) return undefined;
        const offered = new Set(
          sse.verdicts.map((v) => v.seq).filter((s) => s >= first && s <= last),
        );
        const missing = [...offered].filter((s) => !commits.includes(s)).length;
        const count = (m.stale ?? 0) + (m.dropped ?? 0);
        const timeoutsAfterThaw = (m.failures ?? 0) - failuresFrozen;
        if (count < missing || count - missing > timeoutsAfterThaw)
          // Thrown, not returned, so a timeout names the last state seen.
          throw new Error(
            `stale ${m.stale ?? 0} + dropped ${m.dropped ?? 0} against ${missing} missing in ${first}..${last}; ${timeoutsAfterThaw} failed writes since the thaw`,
          );
        return { outages: m.outages ?? 0, failures: m.failures ?? 0, missing };
      },
      { what: 'the counted gap to match the PLC', timeoutMs: 30_000, intervalMs: 50 },
    );
    expect(counted.missing).toBeGreaterThan(0);
    // At least the freeze (a busy machine may add a timeout of its own).
    expect(counted.outages).toBeGreaterThanOrEqual(1);
    expect(counted.failures).toBeGreaterThanOrEqual(1);
    expectIncreasing(seqsIn(plc.commits, -1, Number.POSITIVE_INFINITY), 'PLC commits');
    // The plant broker never went down.
    expect((await outputMetrics(httpUrl, 'mqtt')).outages).toBe(0);
  });

  it('unknown verdicts (no model) reach every output as unknown, never as good', async () => {
    const plc = await startPlc();
    const { httpUrl } = await startAgent(
      'line-u',
      { file: 'line-u.yaml', text: outputsYaml(plc.port, '    unknownAction: reject\n') },
      10,
    );
    const sse = sseClient(httpUrl);
    await eventually(
      () =>
        plantOf('line-u').length >= 10 && plc.commits.length >= 10 && sse.verdicts.length >= 10
          ? true
          : undefined,
      { what: '10 verdicts at every output', timeoutMs: 60_000, intervalMs: 50 },
    );
    for (const v of [...plantOf('line-u'), ...sse.verdicts]) {
      expect(v.verdict).toBe('unknown');
      expect(v.score).toBeNull();
      expect(v.reason).toBe('no model loaded');
    }
    for (const c of plc.commits) {
      expect(c).toMatchObject({ verdict: 2, score: 0x8000, unknownCoil: true, defectCoil: true });
    }
  });

  it('a model that hangs on camera frames: every output gets unknown from the watchdog and the open breaker, never good', async () => {
    const plc = await startPlc();
    const { agent, httpUrl } = await startAgent(
      'line-h',
      { file: 'line-h.yaml', text: outputsYaml(plc.port, '    unknownAction: reject\n') },
      2,
      ['--watchdog-ms', '200'],
    );
    const sse = sseClient(httpUrl);
    await agent.waitForLog((l) => l.msg === 'model live', 90_000);
    // The breaker opens after its trips; the version is then quarantined.
    await agent.waitForLog((l) => l.msg?.startsWith('circuit breaker open') === true, 90_000);
    const watchdogAt = (list: FrameResult[]) =>
      list.filter((v) => /watchdog/.test(v.reason ?? '')).length;
    await eventually(
      () =>
        watchdogAt(plantOf('line-h')) >= 3 &&
        watchdogAt(sse.verdicts) >= 3 &&
        plc.commits.length >= 3
          ? true
          : undefined,
      { what: 'the watchdog verdicts at the plant broker and SSE', timeoutMs: 60_000 },
    );
    for (const v of [...plantOf('line-h'), ...sse.verdicts]) {
      expect(v.verdict).toBe('unknown');
      expect(v.score).toBeNull();
    }
    // Every PLC write is an unknown with the reject coil set.
    for (const c of plc.commits)
      expect(c).toMatchObject({ verdict: 2, unknownCoil: true, defectCoil: true });
  });
});
