import { EventEmitter } from 'node:events';
import type { MqttClient } from 'mqtt';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DYNSEC_RESPONSE_TOPIC, DYNSEC_TOPIC, DynsecClient } from './dynsec-client.ts';

/** An MQTT client that records what is published; the test answers as the plugin would. */
class FakeClient extends EventEmitter {
  readonly sent: { commands: { command: string; correlationData: string }[] }[] = [];

  async subscribeAsync(): Promise<{ qos: number }[]> {
    return [{ qos: 1 }];
  }

  async publishAsync(topic: string, payload: string): Promise<void> {
    expect(topic).toBe(DYNSEC_TOPIC);
    this.sent.push(JSON.parse(payload) as FakeClient['sent'][number]);
  }

  /** Answers the k-th message sent, every command successful. */
  answer(k: number): void {
    const message = this.sent[k]!;
    const responses = message.commands.map((c) => ({
      command: c.command,
      correlationData: c.correlationData,
    }));
    this.emit('message', DYNSEC_RESPONSE_TOPIC, Buffer.from(JSON.stringify({ responses })));
  }
}

const commands = (n: number) => Array.from({ length: n }, () => ({ command: 'createRole' }));

describe('DynsecClient deadlines', () => {
  let client: FakeClient;
  let dynsec: DynsecClient;

  beforeEach(() => {
    vi.useFakeTimers();
    client = new FakeClient();
    dynsec = new DynsecClient(client as unknown as MqttClient, 15_000);
  });

  afterEach(() => {
    dynsec.close();
    vi.useRealTimers();
  });

  it('gives a message one second more for each command in it: a batch the broker is still doing does not fail', async () => {
    let settled = false;
    const run = dynsec.run(commands(100)).finally(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(114_000);
    expect(settled).toBe(false);
    client.answer(0);
    await expect(run).resolves.toHaveLength(100);
  });

  it('counts the commands sent before and not yet answered: the plugin runs them first', async () => {
    const batch = dynsec.run(commands(100));
    await vi.advanceTimersByTimeAsync(0);
    const single = dynsec.run(commands(1));
    single.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(114_000);
    client.answer(0);
    await expect(batch).resolves.toHaveLength(100);
    let settled = false;
    single.finally(() => (settled = true)).catch(() => undefined);
    await vi.advanceTimersByTimeAsync(1_900);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    await expect(single).rejects.toThrow(/did not answer createRole within 116000 ms/);
  });

  it('forgets answered and expired commands: a later message has the base deadline again', async () => {
    const batch = dynsec.run(commands(100));
    await vi.advanceTimersByTimeAsync(0);
    client.answer(0);
    await batch;
    const expired = dynsec.run(commands(2));
    expired.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(17_000);
    await expect(expired).rejects.toThrow(/within 17000 ms/);
    const later = dynsec.run(commands(1));
    later.catch(() => undefined);
    await vi.advanceTimersByTimeAsync(16_000);
    await expect(later).rejects.toThrow(/within 16000 ms/);
  });
});
