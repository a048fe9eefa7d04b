import { connect as tcpConnect, type Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_BYTES, deviceTopic } from '@linesight/protocol';
import type { MqttIdentity } from './acl.ts';
import { EmbeddedBroker, type SessionTakeover } from './embedded-broker.ts';
import { TokenBucket } from './guarded-connection.ts';
import { eventually } from '@linesight/testkit/eventually';

let broker: EmbeddedBroker;
let url: string;
const clients: MqttClient[] = [];
const sockets: Socket[] = [];
const takeovers: SessionTakeover[] = [];
const logLines: { msg: string; event?: string; refusedSinceLastLog?: number }[] = [];

async function startBroker(options: {
  deviceMessagesPerSec?: number;
  deviceMessageBurst?: number;
  maxConnections?: number;
}) {
  broker = new EmbeddedBroker({
    host: '127.0.0.1',
    port: 0,
    logger: pino(
      { level: 'warn' },
      { write: (line: string) => void logLines.push(JSON.parse(line) as (typeof logLines)[0]) },
    ),
    authenticate: (clientId, username, password): MqttIdentity | undefined => {
      if (username === 'admin' && password === 'admin-secret') return { kind: 'admin' };
      if (clientId === username && password === `${username}-secret`)
        return { kind: 'device', deviceId: username };
      return undefined;
    },
    onSessionTakenOver: (t) => takeovers.push(t),
    ...options,
  });
  url = `mqtt://127.0.0.1:${await broker.start()}`;
}

async function login(id: string, password = `${id}-secret`): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, {
    clientId: id,
    username: id,
    password,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

async function admin(id = 'observer'): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, {
    clientId: id,
    username: 'admin',
    password: 'admin-secret',
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  clients.push(client);
  return client;
}

beforeEach(() => {
  takeovers.length = 0;
  logLines.length = 0;
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  for (const s of sockets.splice(0)) s.destroy();
  await broker.close();
});

/** MQTT 3.1.1 remaining-length encoding. */
function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function str(s: string): number[] {
  const b = Buffer.from(s);
  return [b.length >> 8, b.length & 0xff, ...b];
}

/** A CONNECT packet with client id = username. */
function connectPacket(id: string, password: string): Buffer {
  const body = [...str('MQTT'), 4, 0xc2, 0, 60, ...str(id), ...str(id), ...str(password)];
  return Buffer.from([0x10, ...varint(body.length), ...body]);
}

/** Resolves when `socket` closes; the test timeout bounds the wait. */
const closed = (socket: Socket) =>
  new Promise<void>((resolve) => {
    if (socket.destroyed) resolve();
    socket.once('close', () => resolve());
  });

describe('EmbeddedBroker limits', () => {
  it('closes a connection whose PUBLISH declares 50 MB as soon as the header arrives, before any body', async () => {
    await startBroker({});
    const socket = tcpConnect(Number(new URL(url).port), '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    const connack = new Promise<Buffer>((resolve) => socket.once('data', resolve));
    socket.write(connectPacket('d1', 'd1-secret'));
    expect([...(await connack)]).toEqual([0x20, 2, 0, 0]);
    const topic = str(deviceTopic('d1', 'results'));
    // Only the fixed header and topic are sent: a broker that waited for the body would never close.
    socket.write(Buffer.from([0x30, ...varint(50 * 1024 * 1024), ...topic]));
    await closed(socket);
    expect(broker.stats.oversizeRejected).toBe(1);
  });

  it('refuses a payload just over 256 KiB and disconnects; it is neither forwarded nor retained', async () => {
    await startBroker({});
    const observer = await admin();
    const seen: number[] = [];
    observer.on('message', (_t, payload) => seen.push(payload.length));
    await observer.subscribeAsync(deviceTopic('d1', 'reported'), { qos: 1 });
    const device = await login('d1');
    const gone = new Promise<void>((resolve) => device.once('close', () => resolve()));
    device.publish(deviceTopic('d1', 'reported'), Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 1), {
      qos: 1,
      retain: true,
    });
    await gone;
    expect(broker.stats.oversizeRejected).toBe(1);
    // A payload at the limit still passes (the observer receives it: the refused one came first).
    const again = await login('d1');
    await again.publishAsync(deviceTopic('d1', 'reported'), Buffer.alloc(MAX_PAYLOAD_BYTES, 2), {
      qos: 1,
    });
    await eventually(() => seen.length === 1, { intervalMs: 10 });
    expect(seen).toEqual([MAX_PAYLOAD_BYTES]);
  });

  it('counts connections closed for a protocol violation or garbage instead of CONNECT', async () => {
    await startBroker({});
    // A wildcard in a PUBLISH topic is a protocol violation, refused before the ACL.
    const device = await login('d1');
    const gone = new Promise<void>((resolve) => device.once('close', () => resolve()));
    device.publish('linesight/v1/devices/+/reported', Buffer.from('{}'), { qos: 1 });
    await gone;
    expect(broker.stats.deniedPublishes).toBe(0);
    expect(broker.stats.clientErrors).toBe(1);
    // Bytes that are no MQTT at all: a reserved packet type.
    const socket = tcpConnect(Number(new URL(url).port), '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.write(Buffer.from([0xf0, 0x00]));
    await closed(socket);
    await eventually(() => broker.stats.clientErrors === 2, { intervalMs: 10 });
  });

  it('keeps device messages retained only on reported and status', async () => {
    await startBroker({});
    const device = await login('d1');
    for (const channel of ['reported', 'status', 'results', 'telemetry', 'events'] as const)
      await device.publishAsync(deviceTopic('d1', channel), Buffer.from(channel), {
        qos: 1,
        retain: true,
      });
    expect(broker.stats.retainDropped).toBe(3);
    const late = await admin('late');
    const retained: string[] = [];
    late.on('message', (topic, _p, packet) => {
      if (packet.retain) retained.push(topic.split('/').at(-1) as string);
    });
    await late.subscribeAsync('linesight/v1/devices/d1/+', { qos: 1 });
    // A marker published after the subscription arrives after any retained message.
    const marker = await login('d2');
    let markerSeen = false;
    late.on('message', (topic) => (markerSeen ||= topic.includes('/d2/')));
    await late.subscribeAsync(deviceTopic('d2', 'events'), { qos: 1 });
    await marker.publishAsync(deviceTopic('d2', 'events'), Buffer.from('x'), { qos: 1 });
    await eventually(() => markerSeen, { intervalMs: 10 });
    expect(retained.sort()).toEqual(['reported', 'status']);
  });

  it('hands a device the retained desired state it subscribes to, and nothing once it is cleared', async () => {
    await startBroker({});
    const cloud = await admin('cloud');
    await cloud.publishAsync(deviceTopic('d1', 'desired'), Buffer.from('rev-1'), {
      qos: 1,
      retain: true,
    });
    await cloud.publishAsync(deviceTopic('d2', 'desired'), Buffer.from('other'), {
      qos: 1,
      retain: true,
    });
    const received = async (): Promise<string[]> => {
      const device = await login('d1');
      const seen: string[] = [];
      device.on('message', (_t, payload) => seen.push(String(payload)));
      await device.subscribeAsync(deviceTopic('d1', 'desired'), { qos: 1 });
      // A live message published after the SUBACK arrives after any retained one.
      await cloud.publishAsync(deviceTopic('d1', 'desired'), Buffer.from('marker'), { qos: 1 });
      await eventually(() => seen.includes('marker'), { intervalMs: 10 });
      await device.endAsync();
      return seen;
    };
    expect(await received()).toEqual(['rev-1', 'marker']);
    await cloud.publishAsync(deviceTopic('d1', 'desired'), Buffer.alloc(0), {
      qos: 1,
      retain: true,
    });
    expect(await received()).toEqual(['marker']);
  });

  it('throttles a device over its message rate without dropping anything', async () => {
    await startBroker({ deviceMessagesPerSec: 100, deviceMessageBurst: 20 });
    const observer = await admin();
    let received = 0;
    observer.on('message', () => received++);
    await observer.subscribeAsync(deviceTopic('d1', 'results'), { qos: 0 });
    const device = await login('d1');
    for (let i = 0; i < 150; i++) device.publish(deviceTopic('d1', 'results'), Buffer.from(`${i}`));
    await eventually(() => received === 150, { intervalMs: 10 });
    expect(broker.stats.throttledPublishes).toBeGreaterThan(0);
  });

  it('reports a second login with a live client id as a session takeover', async () => {
    await startBroker({});
    const first = await login('d1');
    const kicked = new Promise<void>((resolve) => first.once('close', () => resolve()));
    await login('d1');
    await kicked;
    expect(broker.stats.sessionTakeovers).toBe(1);
    expect(takeovers).toHaveLength(1);
    expect(takeovers[0]).toMatchObject({
      clientId: 'd1',
      identity: { kind: 'device', deviceId: 'd1' },
      count: 1,
    });
    expect(takeovers[0]?.previousAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    // A wrong password takes nothing over.
    await expect(login('d1', 'wrong')).rejects.toThrow();
    expect(broker.stats.sessionTakeovers).toBe(1);
  });
});

describe('EmbeddedBroker connection limit', () => {
  it('answers a device CONNECT beyond maxConnections with "server unavailable", logs and counts it', async () => {
    await startBroker({ maxConnections: 2 });
    const first = await login('d1');
    await login('d2');
    const refused = await login('d3').then(
      () => 'connected',
      (err: { code?: number }) => err.code,
    );
    expect(refused).toBe(3);
    await expect(login('d4')).rejects.toThrow();
    expect(broker.stats.refusedConnections).toBe(2);
    // One line for both: later refusals within the interval are counted into the next line.
    const lines = logLines.filter((l) => l.event === 'mqtt.connection_refused');
    expect(lines).toHaveLength(1);
    expect(lines[0]?.msg).toMatch(/limit of 2 device connections/);
    // The cloud's own and admin sessions are not devices: they still get in.
    await admin();
    // A device taking over its own live session replaces a connection and is let in.
    await login('d2');
    // A slot freed by a device that leaves is taken by the next.
    await first.endAsync();
    const deadline = Date.now() + 10_000;
    while ((await login('d3').catch(() => undefined)) === undefined)
      if (Date.now() > deadline) throw new Error('d3 never got the freed slot');
  });

  it('closes TCP connections beyond maxConnections plus the reserve on accept', async () => {
    await startBroker({ maxConnections: 1 });
    // 1 device connection + 32 reserved for the cloud's own sessions: all held.
    for (let i = 0; i < 33; i++) await admin(`a${i}`);
    const extra = tcpConnect(Number(new URL(url).port), '127.0.0.1');
    sockets.push(extra);
    extra.on('error', () => undefined);
    await closed(extra);
    expect(broker.stats.refusedConnections).toBe(1);
  });
});

describe('TokenBucket', () => {
  it('allows the burst, then the rate, and says how long to wait', () => {
    const bucket = new TokenBucket(10, 5, 0);
    expect(bucket.take(5, 0)).toEqual({ over: 0, waitMs: 0 });
    expect(bucket.take(2, 0)).toEqual({ over: 2, waitMs: 200 });
    expect(bucket.take(1, 300)).toEqual({ over: 0, waitMs: 0 });
    expect(bucket.take(100, 100_000)).toEqual({ over: 95, waitMs: 9500 });
  });
});
