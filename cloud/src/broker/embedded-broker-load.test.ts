import { connect as tcpConnect, type Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import pino from 'pino';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { TOPIC_ROOT } from '@linesight/protocol';
import { EmbeddedBroker } from './embedded-broker.ts';
import { eventually } from '@linesight/testkit/eventually';

const HOT = `${TOPIC_ROOT}/hot`;
const COLD = `${TOPIC_ROOT}/cold`;
const PROBE = `${TOPIC_ROOT}/probe`;

let broker: EmbeddedBroker | undefined;
const clients: MqttClient[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  for (const s of sockets.splice(0)) s.destroy();
  await broker?.close();
  broker = undefined;
});

async function startBroker(): Promise<number> {
  broker = new EmbeddedBroker({
    host: '127.0.0.1',
    port: 0,
    logger: pino({ level: 'silent' }),
    authenticate: (_clientId, username, password) =>
      username === 'admin' && password === 'admin-secret' ? { kind: 'admin' } : undefined,
  });
  return broker.start();
}

async function admin(port: number, id: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: id,
    username: 'admin',
    password: 'admin-secret',
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  clients.push(client);
  return client;
}

function str(s: string): Buffer {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
}

/** A QoS 0 PUBLISH with a short topic and payload (remaining length under 128). */
function publishPacket(topic: string, payload: string): Buffer {
  const body = Buffer.concat([str(topic), Buffer.from(payload)]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

/** A raw admin connection; resolves once the broker accepted the CONNECT. */
async function rawAdmin(port: number, id: string): Promise<Socket> {
  const socket = tcpConnect(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([4, 0xc2, 0, 60]),
    str(id),
    str('admin'),
    str('admin-secret'),
  ]);
  const connack = new Promise<Buffer>((resolve) => socket.once('data', resolve));
  socket.write(Buffer.concat([Buffer.from([0x10, body.length]), body]));
  expect([...(await connack)]).toEqual([0x20, 2, 0, 0]);
  return socket;
}

describe('EmbeddedBroker under a burst', () => {
  // aedes hands each message to mqemitter, which runs at most 100 at once and queues the
  // rest. A queued message that matches no subscription finished synchronously and started
  // the next queued one from inside itself, so a few thousand of them in the queue (a fleet
  // publishing on topics no one reads while deliveries are in flight) overflowed the stack
  // and killed the process: "RangeError: Maximum call stack size exceeded".
  it('delivers everything and stays up when thousands of unread messages queue behind deliveries', async () => {
    const crashes: Error[] = [];
    const onCrash = (err: Error) => crashes.push(err);
    process.on('uncaughtException', onCrash);
    onTestFinished(() => {
      process.off('uncaughtException', onCrash);
    });
    const port = await startBroker();
    const observer = await admin(port, 'observer');
    let hot = 0;
    let probes = 0;
    observer.on('message', (topic) => {
      if (topic === HOT) hot++;
      else probes++;
    });
    await observer.subscribeAsync([HOT, PROBE], { qos: 0 });

    // Each publisher sends one write that the broker parses as one batch: 150 messages with a
    // subscriber (their deliveries take the 100 slots), then 4,000 that no one subscribes to.
    const publishers = 4;
    const hotEach = 150;
    const burst = Buffer.concat([
      ...Array.from({ length: hotEach }, () => publishPacket(HOT, 'h')),
      ...Array.from({ length: 4000 }, () => publishPacket(COLD, 'c')),
    ]);
    const raws = await Promise.all(
      Array.from({ length: publishers }, (_, i) => rawAdmin(port, `burst-${i}`)),
    );
    for (const socket of raws) socket.write(burst);

    await eventually(() => hot === publishers * hotEach, {
      what: 'every subscribed message',
      intervalMs: 1,
    });
    // The broker still routes new traffic after the burst.
    const prober = await admin(port, 'prober');
    await prober.publishAsync(PROBE, 'p', { qos: 1 });
    await eventually(() => probes === 1, { what: 'the probe', intervalMs: 1 });
    expect(crashes.map((e) => e.message)).toEqual([]);
    expect(hot).toBe(publishers * hotEach);
  });
});
