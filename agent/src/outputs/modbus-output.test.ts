import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { FrameResult } from '@linesight/protocol';
import { ModbusPlc, type PlcRequest } from '../../../test/helpers/modbus-plc.ts';
import { MODBUS_SCORE_UNKNOWN, ModbusOutput, modbusWritesFor } from './modbus-output.ts';
import type { ModbusOutputConfig } from './outputs-config.ts';
import { eventually } from '@linesight/testkit/eventually';

const map = {
  defectCoil: 0,
  unknownCoil: 1,
  scoreRegister: 100,
  verdictRegister: 101,
  sequenceRegister: 102,
};

function result(seq: number, verdict: FrameResult['verdict'], score: number | null): FrameResult {
  return {
    schema: 'linesight.result/v1',
    deviceId: 'line-1',
    seq,
    capturedAt: new Date().toISOString(),
    verdict,
    score,
    threshold: 0.5,
    model: null,
    latencyMs: { capture: 0, queue: 0, preprocess: 0, inference: 0, total: 0 },
  };
}

function config(port: number, extra: Partial<ModbusOutputConfig> = {}): ModbusOutputConfig {
  return {
    kind: 'modbus',
    name: 'plc',
    host: '127.0.0.1',
    port,
    unitId: 1,
    map,
    pulseMs: 50,
    unknownAction: 'reject',
    queueMax: 64,
    dropPolicy: 'drop-oldest',
    maxAgeMs: 2000,
    timeoutMs: 300,
    retryBackoff: { initialMs: 10, maxMs: 100 },
    ...extra,
  };
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('modbusWritesFor', () => {
  it('writes a contiguous map in one register run, sequence last; unknown rejects by default', () => {
    expect(
      modbusWritesFor(result(70000, 'good', 0.1234), { map, unknownAction: 'reject' }),
    ).toEqual({
      coilsOn: [],
      registerRuns: [{ address: 100, values: [123, 0, 70000 % 65536] }],
    });
    expect(
      modbusWritesFor(result(2, 'good', -0.782), { map, unknownAction: 'reject' }),
    ).toMatchObject({
      registerRuns: [{ address: 100, values: [65536 - 782, 0, 2] }],
    });
    expect(modbusWritesFor(result(1, 'unknown', null), { map, unknownAction: 'reject' })).toEqual({
      coilsOn: [0, 1],
      registerRuns: [{ address: 100, values: [MODBUS_SCORE_UNKNOWN, 2, 1] }],
    });
    expect(
      modbusWritesFor(result(1, 'unknown', null), { map, unknownAction: 'hold' }).coilsOn,
    ).toEqual([1]);
  });

  it('puts the run holding the sequence register last when the map is scattered', () => {
    const scattered = { defectCoil: 0, unknownCoil: 1, sequenceRegister: 5, scoreRegister: 9 };
    expect(
      modbusWritesFor(result(3, 'defect', 99), { map: scattered, unknownAction: 'reject' }),
    ).toEqual({
      coilsOn: [0],
      registerRuns: [
        { address: 9, values: [32767] },
        { address: 5, values: [3] },
      ],
    });
  });
});

describe('ModbusOutput against a Modbus TCP server', () => {
  it('writes each verdict, pulses the defect coil for pulseMs, and fails fast while the PLC is off', async () => {
    const plc = new ModbusPlc(map);
    const port = await plc.start();
    cleanup.push(() => plc.close());
    const out = new ModbusOutput(config(port), pino({ level: 'silent' }));
    cleanup.push(() => out.close());
    out.start();

    await out.write([{ result: result(1, 'good', 0.2), verdictAtMs: 0 }]);
    await out.write([{ result: result(2, 'defect', 0.9), verdictAtMs: 0 }]);
    expect(plc.commits.map((c) => [c.seq, c.score, c.verdict, c.defectCoil])).toEqual([
      [1, 200, 0, false],
      [2, 900, 1, true],
    ]);
    // The pulse ends by itself.
    await eventually(() => plc.coils.get(0) === false, { what: 'defect coil off', intervalMs: 5 });
    const on = plc.writes.find((w) => w.kind === 'coil' && w.value === 1)!;
    const off = plc.writes.find((w) => w.kind === 'coil' && w.value === 0)!;
    expect(off.atMs).toBeGreaterThan(on.atMs);

    await out.write([{ result: result(3, 'unknown', null), verdictAtMs: 0 }]);
    expect(plc.commits.at(-1)).toMatchObject({
      seq: 3,
      score: MODBUS_SCORE_UNKNOWN,
      verdict: 2,
      defectCoil: true,
      unknownCoil: true,
    });

    await plc.close();
    await expect(
      out.write([{ result: result(4, 'good', 0.1), verdictAtMs: 0 }]),
    ).rejects.toMatchObject({ code: 'ERR_AGENT_OUTPUT' });
    await plc.start(port);
    await out.write([{ result: result(5, 'good', 0.1), verdictAtMs: 0 }]);
    expect(plc.commits.at(-1)).toMatchObject({ seq: 5 });
    expect(out.reconnects).toBe(1);
  });

  it('a hanging PLC times the write out; it reconnects when the PLC answers again', async () => {
    const plc = new ModbusPlc(map);
    const port = await plc.start();
    cleanup.push(() => plc.close());
    const out = new ModbusOutput(config(port, { timeoutMs: 100 }), pino({ level: 'silent' }));
    cleanup.push(() => out.close());
    await out.write([{ result: result(1, 'good', 0.2), verdictAtMs: 0 }]);
    plc.freeze();
    await expect(
      out.write([{ result: result(2, 'good', 0.2), verdictAtMs: 0 }]),
    ).rejects.toMatchObject({ code: 'ERR_AGENT_OUTPUT' });
    plc.thaw();
    await out.write([{ result: result(3, 'good', 0.2), verdictAtMs: 0 }]);
    expect(plc.commits.map((c) => c.seq)).toEqual([1, 3]);
  });

  it('sends one request per good verdict, coils before registers, the pulse end after, and connects at start', async () => {
    const plc = new ModbusPlc(map);
    const port = await plc.start();
    cleanup.push(() => plc.close());
    const out = new ModbusOutput(config(port), pino({ level: 'silent' }));
    cleanup.push(() => out.close());
    out.start();
    // The TCP handshake is not left to the first verdict.
    await eventually(() => plc.connections === 1, {
      what: 'connected before the first write',
      intervalMs: 5,
    });

    await out.write([{ result: result(1, 'good', 0.2), verdictAtMs: 0 }]);
    await out.write([{ result: result(2, 'defect', 0.9), verdictAtMs: 0 }]);
    await eventually(() => plc.requests.length === 4, { what: 'defect pulse end', intervalMs: 5 });
    await out.write([{ result: result(3, 'unknown', null), verdictAtMs: 0 }]);
    // Both coils end their pulse in one request.
    await eventually(() => plc.requests.length === 7, { what: 'unknown pulse end', intervalMs: 5 });
    expect(plc.requests.map(layout)).toEqual([
      'fc16@100 200,0,1',
      'fc5@0 1',
      'fc16@100 900,1,2',
      'fc5@0 0',
      'fc15@0 1,1',
      `fc16@100 ${MODBUS_SCORE_UNKNOWN},2,3`,
      'fc15@0 0,0',
    ]);
    expect(out.reconnects).toBe(0);
  });

  it('a pulse end that could not be written follows the next verdict, never goes ahead of it', async () => {
    const { plc, out } = await pendingOffSetup();
    const from = plc.requests.length;
    await out.write([{ result: result(3, 'good', 0.1), verdictAtMs: 0 }]);
    // The stand-in records a request as its bytes arrive and applies it after: wait for both.
    await eventually(() => plc.requests.length === from + 2 && plc.coils.get(0) === false, {
      what: 'the off after the verdict, applied',
      intervalMs: 5,
    });
    expect(plc.requests.slice(from).map(layout)).toEqual(['fc16@100 100,0,3', 'fc5@0 0']);
  });

  it("a defect while its coil's pulse end is unwritten keeps the coil on and restarts the pulse", async () => {
    const { plc, out } = await pendingOffSetup();
    const from = plc.requests.length;
    await out.write([{ result: result(3, 'defect', 0.8), verdictAtMs: 0 }]);
    expect(plc.requests.slice(from).map(layout)).toEqual(['fc5@0 1', 'fc16@100 800,1,3']);
    await eventually(() => plc.requests.length === from + 3, {
      what: 'the new pulse ends',
      intervalMs: 5,
    });
    expect(layout(plc.requests.at(-1)!)).toBe('fc5@0 0');
  });
});

function layout(r: PlcRequest): string {
  return `fc${r.fc}@${r.address} ${r.values.join(',')}`;
}

/** A defect written, then a PLC that stops answering before its pulse ends: the off is pending. */
async function pendingOffSetup() {
  const plc = new ModbusPlc(map);
  const port = await plc.start();
  cleanup.push(() => plc.close());
  const messages: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      messages.push((JSON.parse(chunk.toString('utf8')) as { msg: string }).msg);
      done();
    },
  });
  const out = new ModbusOutput(
    config(port, { pulseMs: 200, timeoutMs: 100 }),
    pino({ level: 'warn' }, sink),
  );
  cleanup.push(() => out.close());
  await out.write([{ result: result(1, 'good', 0.2), verdictAtMs: 0 }]);
  await out.write([{ result: result(2, 'defect', 0.9), verdictAtMs: 0 }]);
  // In the same tick as the answer: long before the pulse ends.
  plc.freeze();
  await eventually(() => messages.some((m) => m.startsWith('pulse end not written')), {
    what: 'the pulse end failed',
    intervalMs: 5,
  });
  expect(plc.requests.filter((r) => r.fc === 5).map(layout)).toEqual(['fc5@0 1']);
  plc.thaw();
  return { plc, out };
}
