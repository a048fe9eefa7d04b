// A standalone aedes MQTT broker for tests on machines without mosquitto: listens on
// 127.0.0.1 (port from argv, 0 = free), prints "listening <port>" and runs until SIGTERM.
import { createServer, type AddressInfo } from 'node:net';
import aedesModule, { type AedesOptions } from 'aedes';

type AedesBroker = ReturnType<typeof import('aedes').createBroker>;
const createAedes = aedesModule as unknown as (options?: AedesOptions) => AedesBroker;

const broker = createAedes();
const server = createServer(broker.handle);
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  broker.close(() => process.exit(0));
});
