// End-to-end edge data: a `linesight agent` process keeps every verdict,
// telemetry window, event and sample in its store while the cloud (and its
// broker) is down, and forwards them exactly once when it is back; kill -9 of
// the agent while it forwards loses and duplicates nothing in the cloud. Run against the
// embedded broker (edge-data.test.ts) and a real Mosquitto (edge-data-mosquitto.test.ts),
// where the broker holds the batches for the cloud's persistent ingest session.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import { Cloud } from '@linesight/cloud';
import {
  CHANNEL_SCHEMAS,
  decodePayload,
  parseDeviceTopic,
  type ReportedState,
  type TelemetryWindow,
  type VerdictRecord,
} from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess } from '../helpers/linesight-process.ts';
import {
  mosquittoCloudConfig,
  startMosquittoFor,
  type BrokerKind,
  type MosquittoBroker,
} from '../helpers/mosquitto-broker.ts';

/** Registers the edge-data tests, with the cloud on the embedded broker or on a Mosquitto started here. */
export function edgeDataSuite(broker: BrokerKind): void {
  const models = inject('models');

  let dir: string;
  let cloud: Cloud | undefined;
  let ports: { http: number; mqtt: number };
  let httpUrl: string;
  let mqttUrl: string;
  let adminToken: string;
  const running = new Set<LinesightProcess>();
  let mosquitto: MosquittoBroker | undefined;

  /** Where the cloud's broker is: its own (embedded, on a port) or the external Mosquitto. */
  function brokerConfig(mqttPort: number) {
    return mosquitto === undefined ? { mqttPort } : mosquittoCloudConfig(mosquitto);
  }

  /** The newest reported state of each device, followed across cloud restarts. */
  class ReportedFeed {
    readonly reported = new Map<string, ReportedState>();
    #client: MqttClient | undefined;

    start(): void {
      const client = mqtt.connect(mqttUrl, {
        clientId: `edge-data-feed-${process.pid}`,
        username: 'admin',
        password: adminToken,
        reconnectPeriod: 200,
      });
      this.#client = client;
      client.on('error', () => undefined);
      client.on('connect', () => {
        void client
          .subscribeAsync('linesight/v1/devices/+/reported', { qos: 1 })
          .catch(() => undefined);
      });
      client.on('message', (topic, payload) => {
        const parsed = parseDeviceTopic(topic);
        if (parsed === undefined || payload.length === 0) return;
        this.reported.set(
          parsed.deviceId,
          decodePayload(CHANNEL_SCHEMAS.reported, payload, 'reported'),
        );
      });
    }

    async close(): Promise<void> {
      await this.#client?.endAsync(true);
    }
  }
  const feed = new ReportedFeed();

  async function startCloud(): Promise<void> {
    cloud = new Cloud(
      {
        httpPort: ports.http,
        ...brokerConfig(ports.mqtt),
        dataDir: join(dir, 'cloud'),
        adminToken,
      },
      pino({ level: 'warn' }),
    );
    await cloud.start();
  }

  async function stopCloud(): Promise<void> {
    await cloud?.close();
    cloud = undefined;
  }

  async function get<T>(path: string): Promise<T> {
    const response = await fetch(`${httpUrl}${path}`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    if (!response.ok)
      throw new Error(`GET ${path}: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  async function provision(id: string): Promise<string> {
    const api = new CloudApiClient({ baseUrl: httpUrl, adminToken });
    const creds = await api.provisionDevice(id);
    const dataDir = join(dir, `agent-${id}`);
    await writeDeviceCredentials(join(dataDir, 'device.json'), { ...creds, cloudUrl: httpUrl });
    await api.createRollout({ model: 'edge', version: '1.0.0', devices: [id] });
    return dataDir;
  }

  function startAgent(id: string, dataDir: string, extra: string[] = []): LinesightProcess {
    const agent = new LinesightProcess([
      'agent',
      '--device-id',
      id,
      '--cloud',
      httpUrl,
      '--mqtt',
      mqttUrl,
      '--camera',
      'synthetic:11',
      '--fps',
      '10',
      '--data-dir',
      dataDir,
      '--telemetry-interval',
      '1',
      '--window-sec',
      '1',
      ...extra,
    ]);
    running.add(agent);
    return agent;
  }

  /** Rows waiting in an agent's store (of one boot, if given), read from its SQLite file beside the running agent. */
  function storeBacklog(
    dataDir: string,
    boot?: number,
  ): { verdicts: number; windows: number; events: number; samples: number } {
    const db = new Database(join(dataDir, 'store', 'store.sqlite'), {
      readonly: true,
      fileMustExist: true,
    });
    try {
      const n = (table: string, bootColumn: string) =>
        (
          db
            .prepare(
              `SELECT COUNT(*) AS n FROM ${table}${boot === undefined ? '' : ` WHERE ${bootColumn} = ${boot}`}`,
            )
            .get() as { n: number }
        ).n;
      return {
        verdicts: n('verdicts', 'boot'),
        windows: n('windows', "json_extract(body, '$.boot')"),
        events: n('events', "json_extract(body, '$.boot')"),
        samples: n('samples', 'boot'),
      };
    } finally {
      db.close();
    }
  }

  /** True once the broker acknowledged every verdict, window and event of these boots (the agent deletes a row on its PUBACK). */
  function acknowledged(dataDir: string, boots: number[]): boolean {
    return boots.every((boot) => {
      const b = storeBacklog(dataDir, boot);
      return b.verdicts === 0 && b.windows === 0 && b.events === 0;
    });
  }

  /** The highest row id of each forwarded table: rows up to these ids are the backlog at that moment. */
  function backlogMark(dataDir: string): Record<'verdicts' | 'windows' | 'events', number> {
    const db = new Database(join(dataDir, 'store', 'store.sqlite'), {
      readonly: true,
      fileMustExist: true,
    });
    try {
      const max = (table: string) =>
        (db.prepare(`SELECT COALESCE(MAX(id), 0) AS m FROM ${table}`).get() as { m: number }).m;
      return { verdicts: max('verdicts'), windows: max('windows'), events: max('events') };
    } finally {
      db.close();
    }
  }

  /** Rows at or below a mark still waiting for their acknowledgement. */
  function leftOf(
    dataDir: string,
    mark: Record<'verdicts' | 'windows' | 'events', number>,
  ): number {
    const db = new Database(join(dataDir, 'store', 'store.sqlite'), {
      readonly: true,
      fileMustExist: true,
    });
    try {
      let left = 0;
      for (const table of ['verdicts', 'windows', 'events'] as const)
        left += (
          db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE id <= ?`).get(mark[table]) as {
            n: number;
          }
        ).n;
      return left;
    } finally {
      db.close();
    }
  }

  /** A boot's samples still in the store, counted by state (stored, uploaded, indexing, missing). */
  function sampleStates(dataDir: string, boot: number): Record<string, number> {
    const db = new Database(join(dataDir, 'store', 'store.sqlite'), {
      readonly: true,
      fileMustExist: true,
    });
    try {
      const rows = db
        .prepare('SELECT state, COUNT(*) AS n FROM samples WHERE boot = ? GROUP BY state')
        .all(boot) as { state: string; n: number }[];
      return Object.fromEntries(rows.map((r) => [r.state, r.n]));
    } finally {
      db.close();
    }
  }

  function contiguous(seqs: number[]): boolean {
    const sorted = [...seqs].sort((a, b) => a - b);
    return sorted.every((s, i) => s === i);
  }

  async function verdictsOf(id: string): Promise<(VerdictRecord & { deviceId: string })[]> {
    return (
      await get<{ records: (VerdictRecord & { deviceId: string })[] }>(
        `/v1/edge/verdicts?deviceId=${id}&limit=10000`,
      )
    ).records;
  }

  async function windowsOf(id: string): Promise<TelemetryWindow[]> {
    return (
      await get<{ windows: TelemetryWindow[] }>(`/v1/edge/windows?deviceId=${id}&limit=10000`)
    ).windows;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'linesight-edge-'));
    adminToken = `edge-admin-${process.pid}-token`;
    if (broker !== 'embedded') mosquitto = await startMosquittoFor(broker);
    cloud = new Cloud(
      { httpPort: 0, ...brokerConfig(0), dataDir: join(dir, 'cloud'), adminToken },
      pino({ level: 'warn' }),
    );
    const urls = await cloud.start();
    httpUrl = urls.http;
    mqttUrl = urls.mqtt;
    // The cloud comes back on the same ports, as a restarted server would.
    ports = { http: Number(new URL(urls.http).port), mqtt: Number(new URL(urls.mqtt).port) };
    const api = new CloudApiClient({ baseUrl: httpUrl, adminToken });
    await api.publishModel({ name: 'edge', version: '1.0.0', onnx: await readFile(models.v1) });
    feed.start();
  });

  afterEach(async () => {
    for (const p of running) await p.stop();
    running.clear();
    await mosquitto?.resume();
    if (cloud === undefined) await startCloud();
  });

  afterAll(async () => {
    await feed.close();
    await stopCloud();
    await mosquitto?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  describe(`edge data (${broker} broker)`, () => {
    it('keeps everything while the cloud is down and delivers it exactly once when it is back', async () => {
      const id = 'offline-1';
      const dataDir = await provision(id);
      const agent = startAgent(id, dataDir);
      await eventually(
        async () =>
          (await verdictsOf(id)).some((r) => r.modelVersion === '1.0.0') ? true : undefined,
        { what: 'verdicts of the live model in the cloud', timeoutMs: 90_000 },
      );

      await stopCloud();
      if (mosquitto !== undefined) {
        // The broker stays up without the cloud: it acknowledges the agent's batches and holds
        // them for the cloud's persistent ingest session. Every row the store held when the
        // cloud stopped goes that way; then the broker stops too (saving what it holds).
        const heldByBroker = backlogMark(dataDir);
        await eventually(() => (leftOf(dataDir, heldByBroker) === 0 ? true : undefined), {
          what: 'rows acknowledged by the broker while the cloud is down',
          timeoutMs: 90_000,
        });
        await mosquitto.halt();
      }
      await agent.waitForLog((l) => l.msg === 'mqtt connection lost; reconnecting with backoff');
      // Several telemetry windows and many frames pile up in the store while nothing is reachable.
      await eventually(
        () => {
          const b = storeBacklog(dataDir);
          return b.verdicts >= 60 && b.windows >= 4 ? b : undefined;
        },
        { what: 'a backlog of frames and windows', timeoutMs: 60_000 },
      );
      // The backlog is what the store held when the cloud came back; the live run keeps adding
      // rows at 10 frames/s, so only those older rows must drain.
      const mark = backlogMark(dataDir);
      await mosquitto?.resume();
      await startCloud();
      // The agent reconnects with capped backoff (up to 60 s after a long outage), then drains.
      await eventually(() => (leftOf(dataDir, mark) === 0 ? true : undefined), {
        what: 'the backlog drained',
        timeoutMs: 180_000,
      }).catch((err: unknown) => {
        throw new Error(
          `${String(err)}: ${leftOf(dataDir, mark)} rows left of the backlog, store ${JSON.stringify(storeBacklog(dataDir))}; agent:\n${agent.text.slice(-12).join('\n')}`,
        );
      });

      // A clean stop stores the last window; a second run forwards what the first left.
      expect(await agent.stop(), agent.exitReport()).toBe(0);
      const stoppedAt = (await agent.waitForLog((l) => l.msg === 'agent stopped')).frames as {
        captured: number;
        scored: number;
        unknown: number;
        droppedOverload: number;
      };
      // The agent reported the policy it runs and its store.
      expect(feed.reported.get(id)?.edgeData?.sampling.defects).toBe(true);
      const again = startAgent(id, dataDir);
      await again.waitForLog((l) => l.msg === 'mqtt connected');
      // The broker acknowledged every record of the first run, then the cloud holds all of them:
      // each channel is forwarded on its own, so verdicts alone do not say windows are in.
      await eventually(() => (acknowledged(dataDir, [0]) ? true : undefined), {
        what: 'every record of the first run acknowledged',
        timeoutMs: 90_000,
      });
      const boot0 = await eventually(
        async () => {
          const rows = (await verdictsOf(id)).filter((r) => r.boot === 0);
          const counted = (await windowsOf(id))
            .filter((w) => w.boot === 0)
            .reduce((n, w) => n + w.counts.good + w.counts.defect + w.counts.unknown, 0);
          return rows.length >= stoppedAt.captured &&
            counted + stoppedAt.droppedOverload >= rows.length
            ? rows
            : undefined;
        },
        { what: 'every verdict and window of the first run in the cloud', timeoutMs: 60_000 },
      );

      // Exactly once: one row per frame the camera delivered (scored, unknown, or dropped for
      // overload and told to the line as unknown), sequence numbers without a gap.
      expect(boot0.length).toBe(stoppedAt.captured);
      expect(contiguous(boot0.map((r) => r.seq))).toBe(true);
      expect(new Set(boot0.map((r) => r.frameSeq)).size).toBe(boot0.length);
      // Windows: without a gap, and together they count every verdict once.
      const windows = (await windowsOf(id)).filter((w) => w.boot === 0);
      expect(contiguous(windows.map((w) => w.seq))).toBe(true);
      const counted = windows.reduce(
        (n, w) => n + w.counts.good + w.counts.defect + w.counts.unknown,
        0,
      );
      // Windows count the frames that reached a model (or found none); dropped ones apart.
      expect(counted + stoppedAt.droppedOverload).toBe(boot0.length);
      expect(windows.length).toBeGreaterThanOrEqual(6);
      // Events of the first run, without a gap.
      const events = (
        await get<{ events: { boot: number; seq: number; type: string }[] }>(
          `/v1/edge/events?deviceId=${id}&limit=10000`,
        )
      ).events.filter((e) => e.boot === 0);
      expect(contiguous(events.map((e) => e.seq))).toBe(true);
      expect(events.map((e) => e.type)).toContain('model.activated');
      // Samples: the index lists each sampled frame once, and each image's checksum matches.
      const sampled = windows.reduce((n, w) => n + w.samples, 0);
      const samples = await eventually(
        async () => {
          const list = (
            await get<{ samples: { id: string; boot: number; sha256: string; bytes: number }[] }>(
              `/v1/samples?deviceId=${id}&limit=1000`,
            )
          ).samples.filter((s) => s.boot === 0);
          return list.length >= sampled ? list : undefined;
        },
        { what: 'every sample of the first run indexed', timeoutMs: 90_000 },
      ).catch(async () => {
        throw new Error(
          `samples indexed: ${JSON.stringify(await get('/v1/edge/ingest-stats'))}; expected ${sampled} of the first run; its samples in the store by state: ${JSON.stringify(sampleStates(dataDir, 0))}; agent: ${again.text
            .filter((l) => l.includes('upload'))
            .slice(-5)
            .join('\n')}`,
        );
      });
      expect(samples.length).toBe(sampled);
      for (const s of samples.slice(0, 5)) {
        const one = await get<{ downloadUrl: string }>(`/v1/samples/${id}/${s.id}`);
        const body = Buffer.from(await (await fetch(one.downloadUrl)).arrayBuffer());
        expect(body.length).toBe(s.bytes);
        expect(createHash('sha256').update(body).digest('hex')).toBe(s.sha256);
      }
      await again.stop();
    });

    it('loses and duplicates nothing when the agent is killed with -9 while forwarding', async () => {
      const id = 'killed-1';
      const dataDir = await provision(id);
      // A slow drain keeps batches in flight when the kill comes.
      const extra = ['--forward-rate', '5'];
      for (let round = 0; round < 3; round++) {
        const agent = startAgent(id, dataDir, extra);
        await agent.waitForLog((l) => l.msg === 'mqtt connected');
        await eventually(() => (storeBacklog(dataDir, round).verdicts >= 30 ? true : undefined), {
          what: `round ${round}: records in flight`,
          timeoutMs: 60_000,
        });
        agent.child.kill('SIGKILL');
        await agent.exited;
        running.delete(agent);
      }
      // A last run with the normal rate drains everything the killed runs stored.
      const last = startAgent(id, dataDir);
      // The killed runs' rows, not the live run's: at 10 frames/s on a busy machine the
      // live run always has rows waiting for their acknowledgement.
      await eventually(() => (acknowledged(dataDir, [0, 1, 2]) ? true : undefined), {
        what: 'the backlog of the killed runs acknowledged',
        timeoutMs: 90_000,
      });
      // Acknowledged by the broker; the cloud's ingest stores them a moment later. A gap would
      // never close, so this wait fails on a lost record as well as on a slow ingest.
      const { rows, windows } = await eventually(
        async () => {
          const all = await verdictsOf(id);
          const win = await windowsOf(id);
          const complete = [0, 1, 2].every((boot) => {
            const seqs = all.filter((r) => r.boot === boot).map((r) => r.seq);
            const windowSeqs = win.filter((w) => w.boot === boot).map((w) => w.seq);
            return seqs.length >= 30 && contiguous(seqs) && contiguous(windowSeqs);
          });
          return complete ? { rows: all, windows: win } : undefined;
        },
        { what: 'the killed runs in the cloud, without a gap', timeoutMs: 60_000 },
      ).catch(async (err: unknown) => {
        const all = await verdictsOf(id);
        const summary = [0, 1, 2].map((boot) => {
          const seqs = all.filter((r) => r.boot === boot).map((r) => r.seq);
          return `boot ${boot}: ${seqs.length} verdicts, contiguous ${contiguous(seqs)}`;
        });
        throw new Error(`${String(err)}; ${summary.join('; ')}`);
      });
      await last.stop();
      for (const boot of [0, 1, 2]) {
        const seqs = rows.filter((r) => r.boot === boot).map((r) => r.seq);
        // Every row a killed run committed reached the cloud once; only the unflushed tail
        // (at most one flush interval) died with the process.
        expect(seqs.length).toBeGreaterThanOrEqual(30);
        expect(contiguous(seqs)).toBe(true);
        expect(new Set(seqs).size).toBe(seqs.length);
      }
      for (const boot of [0, 1, 2])
        expect(contiguous(windows.filter((w) => w.boot === boot).map((w) => w.seq))).toBe(true);
    });
  });
}
