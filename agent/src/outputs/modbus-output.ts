import Modbus from 'modbus-serial';
import type { Logger } from 'pino';
import { LinesightError, describeError, type FrameResult } from '@linesight/protocol';
import type { LineOutput, OutputVerdict, WriteOutcome } from './output.ts';
import type { ModbusOutputConfig } from './outputs-config.ts';

// The package's CommonJS export is the client class; its `default` points back at it.
const ModbusClient = Modbus.default;
type ModbusClient = InstanceType<typeof Modbus.default>;

/**
 * Score register value of an unknown verdict: 0x8000, which a PLC reading the
 * register as a signed INT sees as -32768 (a real score x1000 is clamped to
 * -32767..32767, as scores can be negative).
 */
export const MODBUS_SCORE_UNKNOWN = 0x8000;

/** A score as the signed 16-bit register value (two's complement) of score x1000. */
export function modbusScoreValue(score: number | null): number {
  if (score === null || !Number.isFinite(score)) return MODBUS_SCORE_UNKNOWN;
  const scaled = Math.min(32767, Math.max(-32767, Math.round(score * 1000)));
  return scaled < 0 ? scaled + 65536 : scaled;
}
/** Verdict register values. */
export const MODBUS_VERDICT_CODES = { good: 0, defect: 1, unknown: 2 } as const;

/** What one verdict writes to the PLC, in write order (see docs/line-outputs.md). */
export interface ModbusVerdictWrites {
  /** Coils turned on first (the reject must be fastest), each pulsed off later. */
  coilsOn: number[];
  /**
   * Holding registers in runs of consecutive addresses, one write (FC16)
   * per run; the run holding the sequence register comes last, so it commits
   * the verdict. With a contiguous map (score, verdict, sequence) it is one write.
   */
  registerRuns: { address: number; values: number[] }[];
}

/** The coil and register writes of one verdict under an address map. */
export function modbusWritesFor(
  result: FrameResult,
  config: Pick<ModbusOutputConfig, 'map' | 'unknownAction'>,
): ModbusVerdictWrites {
  const { map } = config;
  const score =
    result.verdict === 'unknown' ? MODBUS_SCORE_UNKNOWN : modbusScoreValue(result.score);
  const registers = new Map<number, number>([[map.scoreRegister, score]]);
  if (map.verdictRegister !== undefined)
    registers.set(map.verdictRegister, MODBUS_VERDICT_CODES[result.verdict]);
  registers.set(map.sequenceRegister, result.seq % 65536);
  const runs: { address: number; values: number[] }[] = [];
  for (const address of [...registers.keys()].sort((a, b) => a - b)) {
    const last = runs.at(-1);
    const value = registers.get(address) as number;
    if (last !== undefined && last.address + last.values.length === address)
      last.values.push(value);
    else runs.push({ address, values: [value] });
  }
  const commit = runs.findIndex(
    (r) => map.sequenceRegister >= r.address && map.sequenceRegister < r.address + r.values.length,
  );
  runs.push(...runs.splice(commit, 1));
  const coilsOn: number[] = [];
  if (result.verdict === 'defect') coilsOn.push(map.defectCoil);
  if (result.verdict === 'unknown') {
    // Fail safe: a part nobody could judge is rejected unless the plant chose to hold instead.
    if (config.unknownAction === 'reject') coilsOn.push(map.defectCoil);
    coilsOn.push(map.unknownCoil);
  }
  return { coilsOn, registerRuns: runs };
}

/**
 * Writes each verdict to a PLC over Modbus TCP: the defect/unknown coils on
 * first, then the score, verdict and sequence holding registers, the
 * sequence last, so a PLC that watches the counter reads a complete verdict
 * (see modbusWritesFor). A good verdict is one request (FC16), a defect or
 * unknown two (FC5 or FC15, then FC16), each answered before the next is
 * sent: one request in flight per connection, so a PLC that processes
 * requests concurrently cannot reorder them, a refused coil write never lets
 * the sequence through, and Nagle on a PLC that lacks TCP_NODELAY never
 * holds back an answer.
 *
 * Each coil turned on is turned off `pulseMs` later (a new verdict that turns
 * it on during the pulse, or before its off reached the PLC, extends it).
 * Pulse ends give way to verdicts: they are written when the connection is
 * idle, and only go ahead of a verdict once they have already waited through
 * one. Offs due together go in one request; an off that could not be written
 * is retried with the next verdicts, so a coil is never left on. The
 * connection is opened at start (in the background) and, after a failure or
 * timeout, again on the next write.
 */
export class ModbusOutput implements LineOutput {
  readonly kind = 'modbus';
  readonly #config: ModbusOutputConfig;
  readonly #log: Logger;
  #client: ModbusClient | undefined;
  #connecting: Promise<ModbusClient> | undefined;
  #connects = 0;
  /** True while a transaction (a verdict's writes, pulse ends, the connect) talks to the PLC. */
  #busy = false;
  /** Transactions waiting for their turn, in arrival order. */
  readonly #waiting: (() => void)[] = [];
  /** Coils on, with when they are due off (performance.now()). */
  readonly #pulses = new Map<number, { offAt: number; timer: NodeJS.Timeout }>();
  /** Coils whose pulse ended and whose off is not written yet. */
  readonly #pendingOff = new Set<number>();
  /** The pending offs have given way to one verdict already: they go before the next. */
  #offsYielded = false;
  #offsScheduled = false;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(config: ModbusOutputConfig, logger: Logger) {
    this.#config = config;
    this.#log = logger;
  }

  get reconnects(): number {
    return Math.max(0, this.#connects - 1);
  }

  /**
   * Connects in the background, so the first verdict does not wait for the
   * TCP handshake; a PLC that is off at start holds up nothing (the first
   * write connects again).
   */
  start(): void {
    this.#transaction(async () => {
      await this.#connected();
    }).catch((err: unknown) =>
      this.#log.warn(
        { err: describeError(err) },
        'modbus not connected at start; retried on the first write',
      ),
    );
  }

  write(batch: readonly OutputVerdict[]): Promise<WriteOutcome> {
    return this.#transaction(async () => {
      const client = await this.#connected();
      for (const { result } of batch) {
        const w = modbusWritesFor(result, this.#config);
        // A coil this verdict turns on stays on: its off is not written, its pulse restarts.
        for (const coil of w.coilsOn) this.#pendingOff.delete(coil);
        if (this.#pendingOff.size > 0) {
          if (this.#offsYielded) await this.#flushOffs(client);
          else this.#offsYielded = true;
        }
        // Adjacent coils (defect and unknown side by side) go in one write (FC15).
        for (const run of runsOf(w.coilsOn)) {
          if (run.count === 1) await client.writeCoil(run.address, true);
          else await client.writeCoils(run.address, Array<boolean>(run.count).fill(true));
          for (let i = 0; i < run.count; i++) this.#schedulePulseOff(run.address + i);
        }
        for (const run of w.registerRuns) await client.writeRegisters(run.address, run.values);
      }
      return 'written' as const;
    });
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      for (const [coil, pulse] of this.#pulses) {
        clearTimeout(pulse.timer);
        this.#pendingOff.add(coil);
      }
      this.#pulses.clear();
      // After the transactions in progress, one last bounded attempt to turn the pulsed coils off.
      await this.#transaction(async () => {
        if (this.#pendingOff.size > 0) await this.#flushOffs(await this.#connected());
      }).catch((err: unknown) =>
        this.#log.warn(
          { err: describeError(err), coils: [...this.#pendingOff] },
          'could not turn the pulsed coils off while closing',
        ),
      );
      this.#drop();
    })();
    return this.#closing;
  }

  /**
   * Runs `run` when no other transaction talks to the PLC (first come, first
   * served). A failure drops the connection; when the PLC is left idle after
   * a success, pulse ends that are due follow.
   */
  async #transaction<T>(run: () => Promise<T>): Promise<T> {
    if (this.#busy) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#busy = true;
    let failed = false;
    try {
      return await run();
    } catch (err) {
      failed = true;
      // A failed transaction may have left the connection in any state: start afresh.
      this.#drop();
      throw new LinesightError(
        'ERR_AGENT_OUTPUT',
        `modbus ${this.#config.host}:${this.#config.port}: ${describeError(err)}`,
        { cause: err },
      );
    } finally {
      const next = this.#waiting.shift();
      if (next !== undefined) next();
      else {
        this.#busy = false;
        // After a failure the offs wait for the next verdict (its retry included), not spin here.
        if (!failed) this.#scheduleOffs();
      }
    }
  }

  /**
   * Writes the pending offs once the PLC is idle. Deferred to the check
   * phase: offs due in the same tick go together, and a verdict the runner
   * hands over right after the previous one's answer goes first.
   */
  #scheduleOffs(): void {
    if (this.#offsScheduled || this.#pendingOff.size === 0 || this.#closed) return;
    this.#offsScheduled = true;
    setImmediate(() => {
      this.#offsScheduled = false;
      // Busy: the transaction in progress schedules them again when it ends.
      if (this.#busy || this.#pendingOff.size === 0 || this.#closed) return;
      this.#transaction(async () => this.#flushOffs(await this.#connected())).catch(
        (err: unknown) =>
          this.#log.warn(
            { coils: [...this.#pendingOff], err: describeError(err) },
            'pulse end not written; retried with the next verdict',
          ),
      );
    });
  }

  async #connected(): Promise<ModbusClient> {
    if (this.#client?.isOpen === true) return this.#client;
    this.#drop();
    this.#connecting ??= (async () => {
      const client = new ModbusClient();
      client.setTimeout(this.#config.timeoutMs);
      client.setID(this.#config.unitId);
      try {
        await client.connectTCP(this.#config.host, { port: this.#config.port });
      } catch (err) {
        client.destroy(() => undefined);
        throw err;
      }
      this.#connects++;
      this.#log.info({ host: this.#config.host, port: this.#config.port }, 'modbus connected');
      this.#client = client;
      return client;
    })().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  #drop(): void {
    const client = this.#client;
    this.#client = undefined;
    if (client !== undefined) client.destroy(() => undefined);
  }

  #schedulePulseOff(coil: number): void {
    const previous = this.#pulses.get(coil);
    if (previous !== undefined) clearTimeout(previous.timer);
    this.#pendingOff.delete(coil);
    const timer = setTimeout(() => {
      this.#pulses.delete(coil);
      this.#pendingOff.add(coil);
      this.#scheduleOffs();
    }, this.#config.pulseMs);
    this.#pulses.set(coil, { offAt: performance.now() + this.#config.pulseMs, timer });
  }

  async #flushOffs(client: ModbusClient): Promise<void> {
    // A coil pulsed again since is still on by intent.
    for (const coil of this.#pendingOff) if (this.#pulses.has(coil)) this.#pendingOff.delete(coil);
    for (const run of runsOf([...this.#pendingOff])) {
      if (run.count === 1) await client.writeCoil(run.address, false);
      else await client.writeCoils(run.address, Array<boolean>(run.count).fill(false));
      for (let i = 0; i < run.count; i++) this.#pendingOff.delete(run.address + i);
    }
    if (this.#pendingOff.size === 0) this.#offsYielded = false;
  }
}

/** Addresses grouped into runs of consecutive ones, ascending. */
function runsOf(addresses: readonly number[]): { address: number; count: number }[] {
  const runs: { address: number; count: number }[] = [];
  for (const address of [...new Set(addresses)].sort((a, b) => a - b)) {
    const last = runs.at(-1);
    if (last !== undefined && last.address + last.count === address) last.count++;
    else runs.push({ address, count: 1 });
  }
  return runs;
}
