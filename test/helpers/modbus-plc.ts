import { createServer, type Server, type Socket } from 'node:net';
import Modbus from 'modbus-serial';

/** One write the PLC received. */
export interface PlcWrite {
  atMs: number;
  kind: 'coil' | 'register';
  address: number;
  value: number;
}

/**
 * One Modbus request as it arrived on the wire: function code, start
 * address and the values written (FC5: one coil, 1 on / 0 off; FC15: coils;
 * FC6/FC16: registers).
 */
export interface PlcRequest {
  atMs: number;
  fc: number;
  address: number;
  values: number[];
}

/** A verdict as the PLC saw it when its sequence register was written. */
export interface PlcCommit {
  atMs: number;
  seq: number;
  score: number;
  verdict: number | undefined;
  defectCoil: boolean;
  unknownCoil: boolean;
}

/** The address map the PLC reads (as in the agent's modbus output config). */
export interface PlcMap {
  defectCoil: number;
  unknownCoil: number;
  sequenceRegister: number;
  scoreRegister: number;
  verdictRegister?: number;
}

/**
 * A PLC simulated by modbus-serial's own Modbus TCP server on 127.0.0.1:
 * coils and holding registers in memory, every write recorded, and one
 * commit per write of the sequence register. `freeze()` makes it stop
 * answering (connections stay open, requests go unread, like a PLC that
 * hangs or a cable pulled mid-stream); `thaw()` drops those connections and
 * answers again.
 */
export class ModbusPlc {
  readonly coils = new Map<number, boolean>();
  readonly registers = new Map<number, number>();
  readonly writes: PlcWrite[] = [];
  readonly commits: PlcCommit[] = [];
  /** Every request received, in arrival order (reads included). */
  readonly requests: PlcRequest[] = [];
  /** Connections accepted since construction. */
  connections = 0;
  port = 0;
  #server: InstanceType<typeof Modbus.ServerTCP> | undefined;
  #frozen = false;
  readonly #held = new Set<Socket>();
  readonly #map: PlcMap;

  constructor(map: PlcMap) {
    this.#map = map;
  }

  /** Listens on a free port (or `port`, e.g. the previous one after a restart). */
  async start(port?: number): Promise<number> {
    this.port = port ?? (await freePort());
    const server = new Modbus.ServerTCP(
      {
        getCoil: (addr: number) => this.coils.get(addr) ?? false,
        getHoldingRegister: (addr: number) => this.registers.get(addr) ?? 0,
        setCoil: (addr: number, value: boolean) => {
          this.coils.set(addr, value);
          this.writes.push({
            atMs: performance.now(),
            kind: 'coil',
            address: addr,
            value: value ? 1 : 0,
          });
        },
        setRegister: (addr: number, value: number) => {
          this.registers.set(addr, value);
          this.writes.push({ atMs: performance.now(), kind: 'register', address: addr, value });
          if (addr === this.#map.sequenceRegister) this.#commit();
        },
      },
      { host: '127.0.0.1', port: this.port, unitID: 1 },
    );
    this.#server = server;
    server.on('socketError', () => undefined);
    server.on('error', () => undefined);
    const net = (server as unknown as { _server: Server })._server;
    net.on('connection', (sock: Socket) => {
      this.connections++;
      this.#record(sock);
      if (this.#frozen) this.#hold(sock);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('initialized', () => resolve());
      server.once('serverError', reject);
    });
    return this.port;
  }

  /** Stops answering: requests on open and new connections are left unread. */
  freeze(): void {
    this.#frozen = true;
    for (const sock of this.#server?.socks.keys() ?? []) this.#hold(sock);
  }

  /** Answers again; the connections held while frozen are dropped (clients reconnect). */
  thaw(): void {
    this.#frozen = false;
    for (const sock of this.#held) sock.destroy();
    this.#held.clear();
  }

  /** Closes the server and every connection. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.thaw();
    if (server === undefined) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Parses the requests off a connection (MBAP frames), beside the server's own parser. */
  #record(sock: Socket): void {
    let pending = Buffer.alloc(0);
    sock.prependListener('data', (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      while (pending.length >= 8 && pending.length >= 6 + pending.readUInt16BE(4)) {
        const frame = pending.subarray(0, 6 + pending.readUInt16BE(4));
        pending = pending.subarray(frame.length);
        this.requests.push({ atMs: performance.now(), ...parseRequest(frame) });
      }
    });
  }

  #hold(sock: Socket): void {
    sock.pause();
    // The server's data listener would resume the stream: take it away while frozen.
    sock.removeAllListeners('data');
    this.#held.add(sock);
  }

  #commit(): void {
    const m = this.#map;
    this.commits.push({
      atMs: performance.now(),
      seq: this.registers.get(m.sequenceRegister) ?? 0,
      score: this.registers.get(m.scoreRegister) ?? 0,
      verdict: m.verdictRegister === undefined ? undefined : this.registers.get(m.verdictRegister),
      defectCoil: this.coils.get(m.defectCoil) ?? false,
      unknownCoil: this.coils.get(m.unknownCoil) ?? false,
    });
  }
}

function parseRequest(frame: Buffer): Omit<PlcRequest, 'atMs'> {
  const fc = frame.readUInt8(7);
  const address = frame.readUInt16BE(8);
  const values: number[] = [];
  if (fc === 5) values.push(frame.readUInt16BE(10) === 0xff00 ? 1 : 0);
  else if (fc === 6) values.push(frame.readUInt16BE(10));
  else if (fc === 15)
    for (let i = 0; i < frame.readUInt16BE(10); i++)
      values.push((frame.readUInt8(13 + (i >> 3)) >> (i & 7)) & 1);
  else if (fc === 16)
    for (let i = 0; i < frame.readUInt16BE(10); i++) values.push(frame.readUInt16BE(13 + 2 * i));
  return { fc, address, values };
}

/** A TCP port that was free a moment ago (modbus-serial's server cannot listen on port 0). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
