import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { driftAlert } from './drift-fixtures.ts';
import { WebhookNotifier, type AlertNotification } from './webhook-notifier.ts';

const alert = driftAlert();

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('WebhookNotifier', () => {
  let server: Server | undefined;
  let notifier: WebhookNotifier | undefined;

  afterEach(async () => {
    await notifier?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function listen(handler: (req: IncomingMessage, body: string) => number): Promise<string> {
    server = createServer((req, res) => {
      void body(req).then((text) => {
        res.statusCode = handler(req, text);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server?.address() as AddressInfo).port}/hook`;
  }

  it('POSTs notifications in order and retries a failing receiver', async () => {
    const received: AlertNotification[] = [];
    let calls = 0;
    const url = await listen((req, text) => {
      calls++;
      if (calls === 1) return 503; // the first attempt fails
      expect(req.headers['content-type']).toBe('application/json');
      received.push(JSON.parse(text) as AlertNotification);
      return 204;
    });
    notifier = new WebhookNotifier({ url, baseDelayMs: 10, logger: pino({ level: 'silent' }) });
    notifier.notify({ schema: 'linesight.alert/v1', event: 'opened', alert });
    notifier.notify({
      schema: 'linesight.alert/v1',
      event: 'resolved',
      alert: { ...alert, state: 'resolved' },
    });
    await notifier.idle();
    expect(received.map((n) => n.event)).toEqual(['opened', 'resolved']);
    expect(received[0]?.alert).toEqual(alert);
    expect(notifier.stats).toEqual({ sent: 2, failed: 0, dropped: 0, queued: 0 });
  });

  it('gives up after its retries and counts the failure', async () => {
    let calls = 0;
    const url = await listen(() => {
      calls++;
      return 500;
    });
    notifier = new WebhookNotifier({
      url,
      retries: 2,
      baseDelayMs: 5,
      logger: pino({ level: 'silent' }),
    });
    notifier.notify({ schema: 'linesight.alert/v1', event: 'opened', alert });
    await notifier.idle();
    expect(calls).toBe(3);
    expect(notifier.stats.failed).toBe(1);
  });

  it('drops the oldest notification when its queue is full, and close() stops retries', async () => {
    const url = await listen(() => 500);
    notifier = new WebhookNotifier({
      url,
      maxQueue: 2,
      retries: 10,
      baseDelayMs: 60_000,
      logger: pino({ level: 'silent' }),
    });
    for (let i = 0; i < 4; i++)
      notifier.notify({
        schema: 'linesight.alert/v1',
        event: 'opened',
        alert: { ...alert, id: i },
      });
    // The first is being delivered (waiting a minute to retry); two wait; one was dropped.
    expect(notifier.stats.dropped).toBe(1);
    await notifier.close();
    expect(notifier.stats).toMatchObject({ dropped: 3, queued: 0 });
  });
});
