// The fleet end-to-end test, run against the embedded broker (fleet-rollout.test.ts) and
// against a real Mosquitto the cloud manages (fleet-rollout-mosquitto.test.ts).
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { readModelContract, withModelContract } from '@linesight/vision';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CloudApiClient, type DeviceSummary } from '@linesight/api-client';
import { writeDeviceCredentials } from '@linesight/agent';
import {
  allDevicesFilter,
  deviceTopic,
  encodePayload,
  CHANNEL_SCHEMAS,
  type DesiredState,
  type FrameResult,
} from '@linesight/protocol';
import { eventually } from '@linesight/testkit/eventually';
import { LinesightProcess, runLinesight } from '../helpers/linesight-process.ts';
import { FleetObserver } from '../helpers/observer.ts';
import {
  mosquittoCloudArgs,
  startMosquittoFor,
  type BrokerKind,
  type MosquittoBroker,
} from '../helpers/mosquitto-broker.ts';

/** Registers the fleet tests, with the cloud on the embedded broker or on a Mosquitto started here. */
export function fleetRolloutSuite(broker: BrokerKind): void {
  const DEVICES = ['line-a', 'line-b', 'line-c'];
  const MODEL = 'surface-defects';
  const models = inject('models');
  const adminToken = `test-${randomBytes(16).toString('hex')}`;

  let dir: string;
  let cloud: LinesightProcess;
  let api: CloudApiClient;
  let mqttUrl: string;
  let httpUrl: string;
  const agents = new Map<string, LinesightProcess>();
  let mosquitto: MosquittoBroker | undefined;
  const observer = new FleetObserver();

  async function runCli(args: string[]): Promise<void> {
    await runLinesight(args, { LINESIGHT_ADMIN_TOKEN: adminToken });
  }

  /** Provisions a device through the API and writes its credentials where its agent looks. */
  async function provision(id: string, labels: Record<string, string> = {}): Promise<void> {
    const creds = await api.provisionDevice(id, labels);
    await writeDeviceCredentials(join(dir, 'agents', id, 'device.json'), {
      ...creds,
      cloudUrl: httpUrl,
    });
  }

  /** Starts `linesight agent` for a provisioned device on a seeded synthetic camera. */
  function startAgent(id: string, seed: number, fps: number): LinesightProcess {
    return new LinesightProcess([
      'agent',
      '--device-id',
      id,
      '--cloud',
      httpUrl,
      '--mqtt',
      mqttUrl,
      '--camera',
      `synthetic:${seed}`,
      '--fps',
      String(fps),
      '--data-dir',
      join(dir, 'agents', id),
      '--telemetry-interval',
      '1',
    ]);
  }

  function devicesOn(version: string, devices: DeviceSummary[], ids = DEVICES): boolean {
    return ids.every((id) => devices.find((d) => d.id === id)?.model?.version === version);
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'linesight-e2e-'));
    if (broker !== 'embedded') mosquitto = await startMosquittoFor(broker);
    const brokerArgs =
      mosquitto === undefined ? ['--mqtt-port', '0'] : mosquittoCloudArgs(mosquitto);
    cloud = new LinesightProcess(
      ['cloud', '--http-port', '0', ...brokerArgs, '--data-dir', join(dir, 'cloud')],
      { LINESIGHT_ADMIN_TOKEN: adminToken },
    );
    const ready = await cloud.waitForLog((l) => typeof l.httpUrl === 'string');
    httpUrl = ready.httpUrl as string;
    mqttUrl = ready.mqttUrl as string;
    api = new CloudApiClient({ baseUrl: httpUrl, adminToken });
    await observer.start(mqttUrl, adminToken);

    // Two model versions trained by the real command (test/helpers/global-setup.ts).
    for (const [i, id] of DEVICES.entries()) {
      await provision(id, { line: id });
      agents.set(id, startAgent(id, 100 + i, 10));
    }
    await Promise.all(
      [...agents.values()].map((a) => a.waitForLog((l) => l.msg === 'agent started')),
    );
  }, 420_000);

  afterAll(async () => {
    await Promise.all([...agents.values()].map((a) => a.stop()));
    await observer.close();
    await cloud?.stop();
    await mosquitto?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  describe(`fleet end to end (cloud and three agents as processes; ${broker} broker)`, () => {
    it('rolls out 1.0.0, then swaps every agent to 1.1.0 without losing a frame', async () => {
      await runCli([
        'model',
        'publish',
        models.v1,
        '--name',
        MODEL,
        '--version',
        '1.0.0',
        '--cloud',
        httpUrl,
      ]);
      const r1 = await api.createRollout({ model: MODEL, version: '1.0.0' });
      expect(r1.devices.map((d) => d.id).sort()).toEqual(DEVICES);
      await eventually(
        async () => (devicesOn('1.0.0', await api.listDevices()) ? true : undefined),
        {
          what: 'all devices on 1.0.0',
        },
      );
      await eventually(
        async () => ((await api.getRollout(r1.id)).state === 'completed' ? true : undefined),
        { what: 'rollout 1.0.0 completed' },
      );
      // Every device is scoring frames on 1.0.0.
      await eventually(
        () =>
          DEVICES.every((id) => (observer.reported.get(id)?.framesByVersion['1.0.0'] ?? 0) >= 10) ||
          undefined,
        { what: 'frames scored on 1.0.0' },
      );

      await runCli([
        'model',
        'publish',
        models.v2,
        '--name',
        MODEL,
        '--version',
        '1.1.0',
        '--cloud',
        httpUrl,
      ]);
      const r2 = await api.createRollout({ model: MODEL, version: '1.1.0', devices: DEVICES });
      await eventually(
        async () => (devicesOn('1.1.0', await api.listDevices()) ? true : undefined),
        {
          what: 'all devices on 1.1.0',
        },
      );
      await eventually(
        () =>
          DEVICES.every((id) => (observer.reported.get(id)?.framesByVersion['1.1.0'] ?? 0) >= 10) ||
          undefined,
        { what: 'frames scored on 1.1.0' },
      );
      await eventually(
        async () => ((await api.getRollout(r2.id)).state === 'completed' ? true : undefined),
        { what: 'rollout 1.1.0 completed' },
      );

      // Stop the agents cleanly: each drains its queue and reports final counters.
      await Promise.all(
        DEVICES.map(async (id) =>
          expect(await agents.get(id)!.stop(), agents.get(id)!.exitReport()).toBe(0),
        ),
      );
      // A stopping agent publishes its last results, then its final state, then its offline
      // status, in that order on one connection: once the status is here, so is the rest.
      await eventually(() => DEVICES.every((id) => observer.status.get(id)?.online === false), {
        what: 'offline status of every agent',
        timeoutMs: 10_000,
        intervalMs: 20,
      });
      for (const id of DEVICES) {
        const final = observer.reported.get(id)!;
        const f = final.frames;
        // Every frame the camera delivered is accounted for. A frame dropped because the queue was
        // full is the pipeline's declared overload policy (counted, never silent), not a loss: on a
        // starved machine one slow moment may cost one; the swap itself must cost none (below).
        expect(f.scored + f.unknown + f.droppedOverload).toBe(f.captured);
        expect(final.framesByVersion['1.0.0']! + final.framesByVersion['1.1.0']!).toBe(f.scored);

        // The results stream has every frame exactly once, in order (a dropped one as unknown,
        // reason overload), and switches version once.
        const results = observer.results.get(id)!;
        const seqs = results.map((r) => r.seq);
        expect(seqs.every((q, i) => i === 0 || q === seqs[i - 1]! + 1)).toBe(true);
        expect(seqs.at(-1)).toBe(f.captured - 1);
        expect(results, `${id}: ${f.droppedOverload} dropped of ${f.captured}`).toHaveLength(
          f.captured,
        );
        const overload = (r: FrameResult) =>
          r.verdict === 'unknown' && r.model === null && r.reason?.startsWith('overload:') === true;
        expect(results.filter(overload)).toHaveLength(f.droppedOverload);
        const versions = results.filter((r) => r.model !== null).map((r) => r.model!.version);
        const firstV2 = versions.indexOf('1.1.0');
        expect(firstV2).toBeGreaterThan(0);
        expect(versions.slice(0, firstV2).every((v) => v === '1.0.0')).toBe(true);
        expect(versions.slice(firstV2).every((v) => v === '1.1.0')).toBe(true);
        // The swap happened between two consecutive frames, both scored.
        const swapAt = results.findIndex((r) => r.model?.version === '1.1.0');
        expect(results[swapAt - 1]!.model?.version).toBe('1.0.0');
        // Unknown verdicts (other than overload's) only before the first model arrived, never after.
        const firstScored = results.findIndex((r) => r.model !== null);
        expect(
          results.slice(firstScored).every((r) => r.verdict !== 'unknown' || overload(r)),
        ).toBe(true);
        expect(
          results
            .slice(0, firstScored)
            .every(
              (r) => r.verdict === 'unknown' && (r.reason === 'no model loaded' || overload(r)),
            ),
        ).toBe(true);
      }
    });

    it('refuses an artifact changed after signing and keeps running the previous version', async () => {
      const id = 'line-tamper';
      await provision(id);
      agents.set(id, startAgent(id, 9, 10));
      await api.createRollout({ model: MODEL, version: '1.1.0', devices: [id] });
      await eventually(
        async () => (devicesOn('1.1.0', await api.listDevices(), [id]) ? true : undefined),
        { what: 'tamper device on 1.1.0' },
      );

      // Publish 1.2.0, then change its stored bytes behind the registry's back.
      await runCli([
        'model',
        'publish',
        models.v1,
        '--name',
        MODEL,
        '--version',
        '1.2.0',
        '--cloud',
        httpUrl,
      ]);
      const blobDir = join(dir, 'cloud', 'blobs', 'models', MODEL, '1.2.0');
      const [blobName] = await readdir(blobDir);
      const blobPath = join(blobDir, blobName!);
      const bytes = await readFile(blobPath);
      bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff;
      await writeFile(blobPath, bytes);

      const rollout = await api.createRollout({ model: MODEL, version: '1.2.0', devices: [id] });
      const device = await eventually(
        async () => {
          const d = (await api.listDevices()).find((x) => x.id === id);
          return d?.lastError?.model?.version === '1.2.0' ? d : undefined;
        },
        { what: 'refusal reported' },
      );
      expect(device.lastError?.code).toBe('ERR_AGENT_MODEL_VERIFY');
      expect(device.model?.version).toBe('1.1.0');
      // The rollout engine notices on its next step.
      await eventually(
        async () => ((await api.getRollout(rollout.id)).state === 'failed' ? true : undefined),
        { what: 'rollout marked failed' },
      );

      // Still scoring frames on 1.1.0.
      const before = observer.reported.get(id)!.framesByVersion['1.1.0'] ?? 0;
      await eventually(
        () =>
          (observer.reported.get(id)?.framesByVersion['1.1.0'] ?? 0) > before + 5
            ? true
            : undefined,
        { what: 'frames keep flowing on 1.1.0' },
      );
      expect(observer.reported.get(id)!.framesByVersion['1.2.0']).toBeUndefined();
      const events = (await (
        await fetch(`${httpUrl}/v1/devices/${id}/events`, {
          headers: { authorization: `Bearer ${adminToken}` },
        })
      ).json()) as { type: string; code?: string }[];
      expect(
        events.some((e) => e.type === 'model.refused' && e.code === 'ERR_AGENT_MODEL_VERIFY'),
      ).toBe(true);
    });

    it('refuses desired state that was altered after signing or replayed', async () => {
      const id = 'line-tamper';
      const history = observer.desired.get(id)!;
      expect(history.length).toBeGreaterThanOrEqual(2);
      const latest = history.at(-1)!;
      const admin = await mqtt.connectAsync(mqttUrl, {
        username: 'admin',
        password: adminToken,
        reconnectPeriod: 0,
      });
      const publish = (doc: DesiredState) =>
        admin.publishAsync(
          deviceTopic(id, 'desired'),
          encodePayload(CHANNEL_SCHEMAS.desired, doc, 'desired'),
          { qos: 1, retain: true },
        );
      const lastErrorCode = async () =>
        (await api.listDevices()).find((d) => d.id === id)?.lastError?.code;

      // Someone with broker access points the device at another artifact: the signature no longer verifies.
      await publish({
        ...latest,
        revision: latest.revision + 100,
        model: { ...latest.model!, artifactUrl: '/elsewhere' },
      });
      await eventually(
        async () => ((await lastErrorCode()) === 'ERR_SIGNATURE_INVALID' ? true : undefined),
        { what: 'altered document refused' },
      );

      // A genuine but older document (a rollback to 1.2.0's failed attempt's predecessor) is a replay.
      await publish(history[0]!);
      await eventually(
        async () => ((await lastErrorCode()) === 'ERR_DESIRED_REPLAY' ? true : undefined),
        { what: 'replay refused' },
      );

      // The current document re-delivered (as after a reconnect) is fine; the device never moved.
      await publish(latest);
      await admin.endAsync();
      const device = (await api.listDevices()).find((d) => d.id === id)!;
      expect(device.model?.version).toBe('1.1.0');
      const events = (await (
        await fetch(`${httpUrl}/v1/devices/${id}/events`, {
          headers: { authorization: `Bearer ${adminToken}` },
        })
      ).json()) as { type: string; code?: string }[];
      expect(events.filter((e) => e.type === 'desired.rejected').map((e) => e.code)).toEqual([
        'ERR_SIGNATURE_INVALID',
        'ERR_DESIRED_REPLAY',
      ]);
    });

    it('rotates the signing key without re-provisioning: devices accept the new key, then the old one is retired', async () => {
      const ids = [
        ...DEVICES.filter((id) => agents.get(id)!.child.exitCode === null),
        'line-tamper',
      ];
      // The first test stopped the three line agents; start them again on their stored state.
      for (const [i, id] of DEVICES.entries()) {
        agents.set(id, startAgent(id, 100 + i, 5));
      }
      const all = [...new Set([...ids, ...DEVICES])];
      await eventually(
        async () => {
          const list = await api.listDevices();
          return all.every(
            (id) =>
              list.find((d) => d.id === id)?.online &&
              list.find((d) => d.id === id)?.model !== null,
          )
            ? true
            : undefined;
        },
        { what: 'all online on their models' },
      );
      const auth = { authorization: `Bearer ${adminToken}` };
      const before = (await (await fetch(`${httpUrl}/v1/keys`, { headers: auth })).json()) as {
        keyId: string;
      }[];
      const rotated = (await (
        await fetch(`${httpUrl}/v1/keys/rotate`, { method: 'POST', headers: auth })
      ).json()) as { keyId: string };
      expect(before.map((k) => k.keyId)).not.toContain(rotated.keyId);

      // A version published now is signed by the new key (its bytes differ: contract note added).
      const v1 = await readFile(models.v1);
      const variant = withModelContract(v1, {
        ...readModelContract(v1),
        training: { note: 'signed after rotation' },
      });
      const variantPath = join(dir, 'v1-rotated.onnx');
      await writeFile(variantPath, variant);
      await runCli([
        'model',
        'publish',
        variantPath,
        '--name',
        MODEL,
        '--version',
        '2.0.0',
        '--cloud',
        httpUrl,
      ]);
      await api.createRollout({ model: MODEL, version: '2.0.0', devices: all });
      await eventually(
        async () => (devicesOn('2.0.0', await api.listDevices(), all) ? true : undefined),
        { what: 'all on 2.0.0 (new key)' },
      );

      // Retire the old key: manifests it signed are re-signed, devices get new desired state and keep working.
      const retired = (await (
        await fetch(`${httpUrl}/v1/keys/${before[0]!.keyId}/retire`, {
          method: 'POST',
          headers: auth,
        })
      ).json()) as { manifests: number; devices: number };
      expect(retired.manifests).toBeGreaterThanOrEqual(3);
      expect(retired.devices).toBe(all.length);
      await api.createRollout({ model: MODEL, version: '1.0.0', devices: all });
      await eventually(
        async () => (devicesOn('1.0.0', await api.listDevices(), all) ? true : undefined),
        { what: 'all back on 1.0.0 (re-signed manifest)' },
      );
      const list = await api.listDevices();
      for (const id of all)
        expect(list.find((d) => d.id === id)?.lastError?.code ?? 'none').not.toMatch(/SIGNATURE/);
    });
    it('keeps each device to its own topics: another device’s desired state and reported state are out of reach', async () => {
      const spyId = 'line-spy';
      const creds = await api.provisionDevice(spyId);
      const login = {
        clientId: spyId,
        username: creds.username,
        password: creds.password,
        reconnectPeriod: 0,
      };
      // Where devices log in (with password and ACL files, not the cloud's own listener).
      const spy = await mqtt.connectAsync(creds.mqttUrl, login);
      const delivered: string[] = [];
      spy.on('message', (topic) => delivered.push(topic));
      // Subscriptions to another device's desired state or to every device's results are refused.
      const granted = await spy
        .subscribeAsync([deviceTopic('line-a', 'desired'), allDevicesFilter('results')], { qos: 1 })
        .then(
          (grants) => grants.map((g) => g.qos),
          (err: { packet?: { granted?: number[] } }) => err.packet?.granted,
        );
      // Mosquitto's acl_file grants every subscription and checks each delivery instead: line-a's
      // retained desired state (sent before the PUBACK below, were it allowed) never comes.
      expect(granted).toEqual(broker === 'mosquitto-files' ? [1, 1] : [128, 128]);
      // A forged reported state on another device's topic never reaches anyone.
      const real = await eventually(() => observer.reported.get('line-a'), {
        what: 'line-a’s reported state',
      });
      const forgedAt = '2001-01-01T00:00:00.000Z';
      // The broker drops it (Mosquitto) or closes the connection (aedes): either way it is not delivered.
      // (aedes closes the connection without a PUBACK, so the publish alone would never settle).
      const spyClosed = new Promise<void>((resolve) => spy.once('close', () => resolve()));
      await Promise.race([
        spy
          .publishAsync(
            deviceTopic('line-a', 'reported'),
            encodePayload(CHANNEL_SCHEMAS.reported, { ...real, updatedAt: forgedAt }, 'reported'),
            { qos: 1 },
          )
          .catch(() => undefined),
        spyClosed,
      ]);
      expect(delivered).toEqual([]);
      await spy.endAsync(true);
      // A marker on the spy's own topic, published afterwards: once the observer has it, it
      // would have had the forged message too.
      const marker = await mqtt.connectAsync(creds.mqttUrl, login);
      const at = new Date().toISOString();
      await marker.publishAsync(
        deviceTopic(spyId, 'status'),
        encodePayload(
          CHANNEL_SCHEMAS.status,
          { schema: 'linesight.status/v1', deviceId: spyId, online: true, at },
          'status',
        ),
        { qos: 1 },
      );
      await marker.endAsync();
      await eventually(() => (observer.status.get(spyId)?.at === at ? true : undefined), {
        what: 'the marker on the spy’s own topic',
      });
      expect(observer.reported.get('line-a')?.updatedAt).not.toBe(forgedAt);
      // Nor did the cloud take it.
      const device = await api.getDevice('line-a');
      expect(device.lastSeen).not.toBe(forgedAt);
    });
  });
}
