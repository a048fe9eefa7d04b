/**
 * A lean Modbus TCP server, run with `node -e` in a child process as the
 * outputs benchmark's PLC stand-in: coils and holding registers in memory,
 * each request answered in the same turn it is parsed. modbus-serial's own
 * server defers every request with setTimeout(0), which adds at least 1 ms per
 * request (2 ms for a defect's two writes) that a PLC answering within its
 * scan does not; this one measures the agent's output and the socket, not
 * that timer.
 *
 * Function codes: 1 (read coils), 3 (read holding registers), 5 (write coil),
 * 6 (write register), 15 (write coils), 16 (write registers); any other gets
 * exception 1 (illegal function), an address out of range exception 2.
 * Arguments: the port, then the sequence register's address; each write of
 * that register is told on stdout as `<value> <wall-clock ms>`, and `ready`
 * once listening.
 */
export const LEAN_PLC_SCRIPT = `
const net = require('node:net');
const port = Number(process.argv[1]);
const sequenceRegister = Number(process.argv[2]);
const coils = new Uint8Array(65536);
const registers = new Uint16Array(65536);
const told = (value) =>
  process.stdout.write(value + ' ' + (performance.timeOrigin + performance.now()) + '\\n');

function answer(fc, body) {
  const pdu = Buffer.alloc(1 + body.length);
  pdu[0] = fc;
  body.copy(pdu, 1);
  return pdu;
}
function exception(fc, code) {
  return Buffer.from([fc | 0x80, code]);
}
function handle(pdu) {
  const fc = pdu[0];
  if (pdu.length < 5) return exception(fc, 3);
  const address = pdu.readUInt16BE(1);
  const second = pdu.readUInt16BE(3);
  switch (fc) {
    case 1: {
      if (second < 1 || second > 2000 || address + second > 65536) return exception(fc, 2);
      const bytes = Buffer.alloc(1 + Math.ceil(second / 8));
      bytes[0] = bytes.length - 1;
      for (let i = 0; i < second; i++) if (coils[address + i]) bytes[1 + (i >> 3)] |= 1 << (i & 7);
      return answer(fc, bytes);
    }
    case 3: {
      if (second < 1 || second > 125 || address + second > 65536) return exception(fc, 2);
      const bytes = Buffer.alloc(1 + 2 * second);
      bytes[0] = 2 * second;
      for (let i = 0; i < second; i++) bytes.writeUInt16BE(registers[address + i], 1 + 2 * i);
      return answer(fc, bytes);
    }
    case 5:
      if (second !== 0xff00 && second !== 0) return exception(fc, 3);
      coils[address] = second === 0xff00 ? 1 : 0;
      return Buffer.from(pdu.subarray(0, 5));
    case 6:
      registers[address] = second;
      if (address === sequenceRegister) told(second);
      return Buffer.from(pdu.subarray(0, 5));
    case 15: {
      if (second < 1 || address + second > 65536 || pdu.length < 6 + Math.ceil(second / 8))
        return exception(fc, 2);
      for (let i = 0; i < second; i++) coils[address + i] = (pdu[6 + (i >> 3)] >> (i & 7)) & 1;
      return Buffer.from(pdu.subarray(0, 5));
    }
    case 16: {
      if (second < 1 || second > 123 || address + second > 65536 || pdu.length < 6 + 2 * second)
        return exception(fc, 2);
      for (let i = 0; i < second; i++) registers[address + i] = pdu.readUInt16BE(6 + 2 * i);
      if (sequenceRegister >= address && sequenceRegister < address + second)
        told(registers[sequenceRegister]);
      return Buffer.from(pdu.subarray(0, 5));
    }
    default:
      return exception(fc, 1);
  }
}

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let pending = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 7) {
      const length = pending.readUInt16BE(4);
      if (length < 2 || length > 254) return socket.destroy();
      if (pending.length < 6 + length) break;
      const pdu = pending.subarray(7, 6 + length);
      const reply = handle(pdu);
      const frame = Buffer.alloc(7 + reply.length);
      pending.copy(frame, 0, 0, 4);
      frame.writeUInt16BE(1 + reply.length, 4);
      frame[6] = pending[6];
      reply.copy(frame, 7);
      socket.write(frame);
      pending = pending.subarray(6 + length);
    }
  });
  socket.on('error', () => undefined);
});
server.listen(port, '127.0.0.1', () => process.stdout.write('ready\\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;
