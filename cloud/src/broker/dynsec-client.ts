import { randomUUID } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { LinesightError } from '@linesight/protocol';

/** Topic mosquitto's dynamic-security plugin takes commands on (mosquitto 2.0). */
export const DYNSEC_TOPIC = '$CONTROL/dynamic-security/v1';
/** Topic it answers on. */
export const DYNSEC_RESPONSE_TOPIC = `${DYNSEC_TOPIC}/response`;

/** One dynamic-security command, e.g. `{ command: 'createClient', username, password }`. */
export type DynsecCommand = { command: string } & Record<string, unknown>;

/** One answer: `error` is set when the command failed. */
export interface DynsecResponse {
  command: string;
  error?: string;
  data?: unknown;
  correlationData?: string;
}

/** Commands sent in one message at most (dynsec answers a message with one response message). */
const MAX_COMMANDS_PER_MESSAGE = 100;

/** Requests awaiting their answer at most; more wait for a slot (a provisioning burst). */
const MAX_PENDING = 64;

/**
 * Time each command may add to a message's deadline, for the commands in it and those
 * sent before it and not yet answered: the plugin runs commands one at a time and
 * Mosquitto 2.0 rewrites its whole configuration file after each change (229 ms a
 * command with 2,000 devices on a busy machine, growing with the fleet), so a fixed
 * deadline failed a batch, or requests queued behind one, that the broker was still doing.
 */
const DEADLINE_PER_COMMAND_MS = 1000;

/**
 * Sends dynamic-security commands over an MQTT session that may publish to
 * `$CONTROL/dynamic-security/#` and matches each answer to its request by
 * correlation data. Every request has a deadline.
 */
export class DynsecClient {
  readonly #client: MqttClient;
  readonly #timeoutMs: number;
  readonly #pending = new Map<
    string,
    {
      resolve: (r: DynsecResponse[]) => void;
      reject: (e: Error) => void;
      timer: NodeJS.Timeout;
      commands: number;
    }
  >();
  /** Commands of the requests in #pending. */
  #pendingCommands = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(client: MqttClient, timeoutMs = 15_000) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
    client.on('message', (topic, payload) => {
      if (topic === DYNSEC_RESPONSE_TOPIC) this.#onResponse(payload);
    });
  }

  /** Subscribes to the answers; call once after connecting. */
  async start(): Promise<void> {
    const granted = await this.#client.subscribeAsync(DYNSEC_RESPONSE_TOPIC, { qos: 1 });
    if (granted.some((g) => g.qos === 128))
      throw new LinesightError(
        'ERR_CLOUD_BROKER',
        `the broker refused a subscription to ${DYNSEC_RESPONSE_TOPIC}: the cloud's MQTT user needs the dynamic-security admin role (manifests/mosquitto/README.md)`,
      );
  }

  /**
   * Runs commands (in order, in as few messages as fit) and returns their answers in the
   * same order. Rejects when the broker does not answer in time; a failed command is an
   * answer with `error`, not a rejection.
   */
  async run(commands: readonly DynsecCommand[]): Promise<DynsecResponse[]> {
    const answers: DynsecResponse[] = [];
    for (let i = 0; i < commands.length; i += MAX_COMMANDS_PER_MESSAGE)
      answers.push(...(await this.#send(commands.slice(i, i + MAX_COMMANDS_PER_MESSAGE))));
    return answers;
  }

  /** Runs commands and throws ERR_CLOUD_BROKER on the first that failed, unless `tolerate` accepts its error. */
  async runAll(
    commands: readonly DynsecCommand[],
    tolerate: (response: DynsecResponse) => boolean = () => false,
  ): Promise<DynsecResponse[]> {
    const answers = await this.run(commands);
    const failed = answers.find((a) => a.error !== undefined && !tolerate(a));
    if (failed !== undefined)
      throw new LinesightError(
        'ERR_CLOUD_BROKER',
        `the broker refused ${failed.command}: ${failed.error ?? ''}`,
        { details: { command: failed.command } },
      );
    return answers;
  }

  /** Fails every request still waiting; idempotent. */
  close(): void {
    for (const [id, p] of this.#pending) {
      clearTimeout(p.timer);
      p.reject(new LinesightError('ERR_CLOUD_NOT_STARTED', 'the broker session closed'));
      this.#settle(id);
    }
    for (const next of this.#waiting.splice(0)) next();
  }

  async #send(commands: readonly DynsecCommand[]): Promise<DynsecResponse[]> {
    while (this.#pending.size >= MAX_PENDING)
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    // The answer to a message carries the correlation data of its commands; the first one names it.
    const id = randomUUID();
    const tagged = commands.map((c, i) => ({ ...c, correlationData: `${id}:${i}` }));
    const deadlineMs =
      this.#timeoutMs + (this.#pendingCommands + commands.length) * DEADLINE_PER_COMMAND_MS;
    const answer = new Promise<DynsecResponse[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#settle(id);
        reject(
          new LinesightError(
            'ERR_CLOUD_BROKER',
            `the broker did not answer ${commands[0]?.command ?? 'a command'} within ${deadlineMs} ms (is the dynamic-security plugin loaded?)`,
          ),
        );
      }, deadlineMs);
      this.#pending.set(id, { resolve, reject, timer, commands: commands.length });
      this.#pendingCommands += commands.length;
    });
    // Settled before it is awaited when the session closes while the publish is under way.
    answer.catch(() => {});
    try {
      await this.#client.publishAsync(DYNSEC_TOPIC, JSON.stringify({ commands: tagged }), {
        qos: 1,
      });
    } catch (cause) {
      const pending = this.#pending.get(id);
      if (pending !== undefined) {
        clearTimeout(pending.timer);
        this.#settle(id);
      }
      throw new LinesightError('ERR_CLOUD_BROKER', 'a dynamic-security command could not be sent', {
        cause,
      });
    }
    return answer;
  }

  #onResponse(payload: Buffer): void {
    let responses: DynsecResponse[];
    try {
      const parsed = JSON.parse(payload.toString('utf8')) as { responses?: DynsecResponse[] };
      responses = Array.isArray(parsed.responses) ? parsed.responses : [];
    } catch {
      return;
    }
    const first = responses[0]?.correlationData;
    const id = typeof first === 'string' ? first.slice(0, first.lastIndexOf(':')) : undefined;
    if (id === undefined) return;
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#settle(id);
    clearTimeout(pending.timer);
    pending.resolve(responses);
  }

  /** Forgets a request that was answered, failed or timed out, and lets a waiting one go. */
  #settle(id: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    this.#pendingCommands -= pending.commands;
    this.#waiting.shift()?.();
  }
}
