import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import aedesModule, { type AedesOptions, type AuthenticateError, type Client } from 'aedes';

// aedes is CommonJS: its default export is the constructor, typed here by hand.
type AedesBroker = ReturnType<typeof import('aedes').createBroker>;
const createAedes = aedesModule as unknown as (options: AedesOptions) => AedesBroker;
import type { Logger } from 'pino';
import { canPublish, canSubscribe, type MqttIdentity } from './acl.ts';

/** Decides who a CONNECT is; undefined rejects it. */
export type MqttAuthenticator = (
  clientId: string,
  username: string,
  password: string,
) => MqttIdentity | undefined;

/** Options of the embedded broker. */
export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  authenticate: MqttAuthenticator;
  logger: Logger;
}

/** Counters the broker keeps for /metrics. */
export interface BrokerStats {
  connectedClients: number;
  authFailures: number;
  deniedPublishes: number;
  deniedSubscribes: number;
}

/** An aedes MQTT broker on TCP with per-device authentication and topic ACLs. */
export class EmbeddedBroker {
  readonly #options: EmbeddedBrokerOptions;
  readonly #identities = new WeakMap<Client, MqttIdentity>();
  readonly #aedes: AedesBroker;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly stats: BrokerStats = {
    connectedClients: 0,
    authFailures: 0,
    deniedPublishes: 0,
    deniedSubscribes: 0,
  };
  #closing: Promise<void> | undefined;

  constructor(options: EmbeddedBrokerOptions) {
    this.#options = options;
    const log = options.logger;
    this.#aedes = createAedes({
      authenticate: (client, username, password, done) => {
        const identity = options.authenticate(
          client.id,
          username ?? '',
          password?.toString('utf8') ?? '',
        );
        if (identity === undefined) {
          this.stats.authFailures++;
          log.warn({ clientId: client.id, username }, 'mqtt authentication failed');
          const err = new Error('bad username or password') as AuthenticateError;
          err.returnCode = 4;
          done(err, false);
          return;
        }
        this.#identities.set(client, identity);
        done(null, true);
      },
      authorizePublish: (client, packet, done) => {
        // A null client is the broker itself (retained/will re-publication).
        if (client === null) return done(null);
        const identity = this.#identities.get(client);
        if (identity !== undefined && canPublish(identity, packet.topic)) return done(null);
        this.stats.deniedPublishes++;
        log.warn({ clientId: client.id, topic: packet.topic }, 'mqtt publish denied');
        done(new Error(`publish to ${packet.topic} denied`));
      },
      authorizeSubscribe: (client, sub, done) => {
        const identity = this.#identities.get(client);
        if (identity !== undefined && canSubscribe(identity, sub.topic)) return done(null, sub);
        this.stats.deniedSubscribes++;
        log.warn({ clientId: client.id, topic: sub.topic }, 'mqtt subscribe denied');
        done(null, null);
      },
    });
    this.#aedes.on('clientError', (client, err) =>
      log.debug({ clientId: client.id, err: err.message }, 'mqtt client error'),
    );
    this.#aedes.on('connectionError', (client, err) =>
      log.debug({ clientId: client?.id, err: err.message }, 'mqtt connection error'),
    );
    this.#aedes.on('clientReady', () => {
      this.stats.connectedClients = this.#aedes.connectedClients;
    });
    this.#aedes.on('clientDisconnect', () => {
      this.stats.connectedClients = this.#aedes.connectedClients;
    });
    this.#server = createServer((socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => socket.destroy());
      this.#aedes.handle(socket);
    });
    this.#server.on('error', (err) => log.error({ err }, 'mqtt server error'));
  }

  /** Listens; resolves with the bound port (useful with port 0). */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return this.port;
  }

  /** The bound TCP port. */
  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Stops accepting, disconnects clients, closes aedes; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      await new Promise<void>((resolve) => this.#aedes.close(() => resolve()));
      for (const socket of this.#sockets) socket.destroy();
      await serverClosed;
    })();
    return this.#closing;
  }
}
