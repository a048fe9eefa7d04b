import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import Modbus from 'modbus-serial';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEAN_PLC_SCRIPT } from './lean-plc-script.ts';

const SEQUENCE_REGISTER = 102;

describe('the lean Modbus TCP PLC stand-in', () => {
  let child: ChildProcess;
  let client: InstanceType<typeof Modbus.default>;
  const told: number[] = [];
  let onTold: () => void = () => undefined;
  /** Resolves once `count` writes of the sequence register were told. */
  const toldCount = (count: number) =>
    new Promise<void>((resolve) => {
      onTold = () => {
        if (told.length >= count) resolve();
      };
      onTold();
    });

  beforeAll(async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((r) => probe.close(() => r()));
    child = spawn(
      process.execPath,
      ['-e', LEAN_PLC_SCRIPT, String(port), String(SEQUENCE_REGISTER)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'ready') resolve();
        else {
          told.push(Number(line.split(' ')[0]));
          onTold();
        }
      });
      child.once('exit', (code) => reject(new Error(`stand-in exited (${code})`)));
    });
    client = new Modbus.default();
    client.setTimeout(5000);
    client.setID(1);
    await client.connectTCP('127.0.0.1', { port });
  });

  afterAll(async () => {
    await new Promise<void>((r) => client.close(() => r()));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  });

  it('keeps coils written one at a time and in runs', async () => {
    await client.writeCoil(0, true);
    await client.writeCoils(3, [true, false, true, true, false, false, false, false, true]);
    const { data } = await client.readCoils(0, 12);
    expect(data.slice(0, 12)).toEqual([
      true,
      false,
      false,
      true,
      false,
      true,
      true,
      false,
      false,
      false,
      false,
      true,
    ]);
    await client.writeCoil(0, false);
    expect((await client.readCoils(0, 1)).data[0]).toBe(false);
  });

  it('keeps registers and tells each write of the sequence register', async () => {
    await client.writeRegister(50, 4242);
    await client.writeRegisters(100, [777, 2, 9]);
    await client.writeRegister(SEQUENCE_REGISTER, 10);
    expect((await client.readHoldingRegisters(100, 3)).data).toEqual([777, 2, 10]);
    expect((await client.readHoldingRegisters(50, 1)).data).toEqual([4242]);
    // The child tells before it answers, but the pipe may deliver the lines after the answer.
    await toldCount(2);
    expect(told).toEqual([9, 10]);
  });

  it('answers a function it does not serve and an address out of range with exceptions', async () => {
    await expect(client.readInputRegisters(0, 1)).rejects.toMatchObject({ modbusCode: 1 });
    await expect(client.readHoldingRegisters(65_500, 100)).rejects.toMatchObject({
      modbusCode: 2,
    });
    // The connection stays usable after an exception.
    await client.writeRegister(51, 1);
    expect((await client.readHoldingRegisters(51, 1)).data).toEqual([1]);
  });
});
