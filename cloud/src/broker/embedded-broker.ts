import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import aedesModule, { type AedesOptions, type AuthenticateError, type Client } from 'aedes';

// aedes is CommonJS: its default export is the constructor, typed here by hand.
type AedesBroker = ReturnType<typeof import('aedes').createBroker>;
const createAedes = aedesModule as unknown as (options: AedesOptions) => AedesBroker;
import type { Logger } from 'pino';
import { MAX_PAYLOAD_BYTES } from '@linesight/protocol';
import { canPublish, canSubscribe, mayRetain, type MqttIdentity } from './acl.ts';
import { GuardedConnection, TokenBucket } from './guarded-connection.ts';
import { clientCertificateOf, type ClientCertificate } from '../tls/client-certificate.ts';

export type { ClientCertificate } from '../tls/client-certificate.ts';
import { indexRetained, type RetainedPersistence } from './retained-index.ts';
import { LISTEN_BACKLOG } from '../listen-backlog.ts';

/** Room in a packet beyond its payload: fixed header, topic, packet id, MQTT 5 properties. */
const PACKET_OVERHEAD_BYTES = 2048;

/** Decides who a CONNECT is; undefined rejects it. */
export type MqttAuthenticator = (
  clientId: string,
  username: string,
  password: string,
  /** Absent when the client presented no certificate (or the broker asks for none). */
  certificate?: ClientCertificate,
) => MqttIdentity | undefined;

/** The broker's TLS: served certificate and key, and the CA of device client certificates. */
export interface BrokerTls {
  certPem: string;
  keyPem: string;
  /** When given, clients are asked for a certificate (optional: others log in with passwords). */
  clientCaPem?: string;
}

/** A login that replaced a live session with the same client id (MQTT requires the takeover). */
export interface SessionTakeover {
  clientId: string;
  identity: MqttIdentity;
  /** Remote address of the session that was closed, and of the one that replaced it. */
  previousAddress: string | undefined;
  address: string | undefined;
  /** Takeovers of this client id since the last report (reports come at most once a minute per id). */
  count: number;
}

/** Device connections one broker holds by default (measured limits: docs/scaling.md). */
export const DEFAULT_MAX_CONNECTIONS = 10_000;

/** TCP connections allowed beyond the device limit, for the cloud's own and admin sessions. */
const NON_DEVICE_RESERVE = 32;

/** Refused connections are logged at most this often (with the count since the last line). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** Takeovers of one client id are reported at most this often (two clones fighting reconnect every second). */
const TAKEOVER_REPORT_INTERVAL_MS = 60_000;

/** Options of the embedded broker. */
export interface EmbeddedBrokerOptions {
  host: string;
  port: number;
  authenticate: MqttAuthenticator;
  logger: Logger;
  /** Largest payload accepted (default MAX_PAYLOAD_BYTES, 256 KiB); a larger packet closes the connection unread. */
  maxPayloadBytes?: number;
  /** Sustained PUBLISH rate allowed per device (default 200/s); beyond it reading pauses. */
  deviceMessagesPerSec?: number;
  /** Publishes a device may send at once above the rate (default 1000). */
  deviceMessageBurst?: number;
  /**
   * Device sessions held at most (default DEFAULT_MAX_CONNECTIONS). Beyond it a device's
   * CONNECT is answered "server unavailable" and TCP connections beyond it plus a small
   * reserve for the cloud's own sessions are closed on accept; both are logged and counted.
   */
  maxConnections?: number;
  /** Serve mqtts instead of plain MQTT. */
  tls?: BrokerTls;
  /** Told when a login takes over a live session (a cloned credential, or a device restarting before its old session timed out). */
  onSessionTakenOver?: (takeover: SessionTakeover) => void;
}

/** Counters the broker keeps for /metrics. */
export interface BrokerStats {
  connectedClients: number;
  authFailures: number;
  deniedPublishes: number;
  deniedSubscribes: number;
  /** Connections closed for a packet over the size limit. */
  oversizeRejected: number;
  /** Device publishes whose retain flag was dropped (retained only on reported and status). */
  retainDropped: number;
  /** Device publishes that came over the rate limit (delayed by backpressure, not dropped). */
  throttledPublishes: number;
  /** Logins that took over a live session with the same client id. */
  sessionTakeovers: number;
  /** Connections refused because the broker held maxConnections (device CONNECTs and TCP accepts). */
  refusedConnections: number;
  /**
   * Connections closed on a client's error: a malformed packet or protocol violation (a
   * wildcard in a PUBLISH topic, garbage instead of CONNECT), a denied publish, a reset socket.
   */
  clientErrors: number;
  /** TLS handshakes that failed (a client that does not trust the certificate, plain MQTT on the TLS port). */
  tlsHandshakeFailures: number;
}

/** An aedes MQTT broker on TCP or TLS with per-device authentication (password or client certificate) and topic ACLs. */
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
    oversizeRejected: 0,
    retainDropped: 0,
    throttledPublishes: 0,
    sessionTakeovers: 0,
    refusedConnections: 0,
    clientErrors: 0,
    tlsHandshakeFailures: 0,
  };
  readonly #maxConnections: number;
  /** Connections that logged in as a device and are still open. */
  readonly #deviceConnections = new Set<GuardedConnection>();
  readonly #refusals = { loggedAt: 0, unlogged: 0 };
  /** One bucket per device, shared by its connections so reconnecting does not refill it; bounded by the fleet. */
  readonly #buckets = new Map<string, TokenBucket>();
  /** Per client id: when a takeover was last reported, and takeovers since. */
  readonly #takeovers = new Map<string, { reportedAt: number; unreported: number }>();
  #closing: Promise<void> | undefined;
  /** Consumers that take device publishes before they are acknowledged (holdPublishes). */
  readonly #holds: PublishHold[] = [];

  constructor(options: EmbeddedBrokerOptions) {
    this.#options = options;
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    const log = options.logger;
    const maxPayloadBytes = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    this.#aedes = createAedes({
      authenticate: (client, username, password, done) => {
        const conn = client.conn as unknown;
        const certificate =
          conn instanceof GuardedConnection ? clientCertificateOf(conn.socket) : undefined;
        const identity = options.authenticate(
          client.id,
          username ?? '',
          password?.toString('utf8') ?? '',
          certificate,
        );
        if (identity === undefined) {
          this.stats.authFailures++;
          log.warn(
            {
              clientId: client.id,
              username,
              ...(certificate === undefined
                ? {}
                : certificate.verified
                  ? { certificateNames: certificate.names }
                  : { certificateRefused: certificate.reason }),
            },
            'mqtt authentication failed',
          );
          const err = new Error('bad username or password') as AuthenticateError;
          err.returnCode = 4;
          done(err, false);
          return;
        }
        const live = (this.#aedes as unknown as { clients: Record<string, Client> }).clients[
          client.id
        ];
        // A device taking over its own live session replaces a connection; it is never refused.
        if (
          identity.kind === 'device' &&
          live === undefined &&
          this.#deviceConnections.size >= this.#maxConnections
        ) {
          this.#refused({ clientId: client.id }, 'device login');
          const err = new Error(
            'server unavailable: connection limit reached',
          ) as AuthenticateError;
          err.returnCode = 3;
          done(err, false);
          return;
        }
        this.#identities.set(client, identity);
        if (identity.kind === 'device' && conn instanceof GuardedConnection) {
          conn.limit(this.#bucketOf(identity.deviceId));
          this.#deviceConnections.add(conn);
        }
        if (live !== undefined) this.#takenOver(client, live, identity);
        done(null, true);
      },
      authorizePublish: (client, packet, done) => {
        // A null client is the broker itself (retained/will re-publication).
        if (client === null) return done(null);
        const identity = this.#identities.get(client);
        if (identity === undefined || !canPublish(identity, packet.topic)) {
          this.stats.deniedPublishes++;
          log.warn({ clientId: client.id, topic: packet.topic }, 'mqtt publish denied');
          return done(new Error(`publish to ${packet.topic} denied`));
        }
        // The connection guard already refused packets far over the limit before reading them.
        if (packet.payload.length > maxPayloadBytes) {
          this.stats.oversizeRejected++;
          log.warn(
            { clientId: client.id, topic: packet.topic, bytes: packet.payload.length },
            `mqtt payload over ${maxPayloadBytes} bytes refused; connection closed`,
          );
          return done(new Error(`payload of ${packet.payload.length} bytes is over the limit`));
        }
        if (packet.retain && !mayRetain(identity, packet.topic)) {
          this.stats.retainDropped++;
          log.debug({ clientId: client.id, topic: packet.topic }, 'mqtt retain flag dropped');
          packet.retain = false;
        }
        const hold = this.#holds.find((h) => h.accepts(packet.topic));
        if (hold === undefined) return done(null);
        if (!hold.open) return done(new Error(`${packet.topic} is not accepted while closing`));
        const payload =
          typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
        hold.handler(packet.topic, payload, () => done(null));
      },
      authorizeSubscribe: (client, sub, done) => {
        const identity = this.#identities.get(client);
        if (identity !== undefined && canSubscribe(identity, sub.topic)) return done(null, sub);
        this.stats.deniedSubscribes++;
        log.warn({ clientId: client.id, topic: sub.topic }, 'mqtt subscribe denied');
        done(null, null);
      },
    });
    // Every message gets one listener that finishes on a later turn of the event loop. aedes'
    // emitter (mqemitter) runs at most `concurrency` messages at once and queues the rest; a
    // queued message that matches no subscription finished synchronously and started the next
    // queued one from inside itself, so a few thousand of them (a fleet publishing while
    // deliveries are in flight) overflowed the stack and killed the process
    // ("Maximum call stack size exceeded", moscajs/aedes#193; docs/scaling.md).
    this.#aedes.subscribe('#', yieldThenDone, noop);
    indexRetained((this.#aedes as unknown as { persistence: RetainedPersistence }).persistence);
    this.#aedes.on('clientError', (client, err) => {
      this.stats.clientErrors++;
      log.debug({ clientId: client.id, err: err.message }, 'mqtt client error');
    });
    this.#aedes.on('connectionError', (client, err) => {
      this.stats.clientErrors++;
      log.debug({ clientId: client?.id, err: err.message }, 'mqtt connection error');
    });
    this.#aedes.on('clientReady', () => {
      this.stats.connectedClients = this.#aedes.connectedClients;
    });
    this.#aedes.on('clientDisconnect', () => {
      this.stats.connectedClients = this.#aedes.connectedClients;
    });
    const accept = (socket: Socket) => {
      socket.on('error', () => socket.destroy());
      if (this.#sockets.size >= this.#maxConnections + NON_DEVICE_RESERVE) {
        this.#refused({ address: socket.remoteAddress }, 'tcp connection');
        socket.destroy();
        return;
      }
      this.#sockets.add(socket);
      const conn = new GuardedConnection(socket, maxPayloadBytes + PACKET_OVERHEAD_BYTES, {
        oversize: (declaredBytes) => {
          this.stats.oversizeRejected++;
          log.warn(
            { address: socket.remoteAddress, declaredBytes },
            `mqtt packet over ${maxPayloadBytes} bytes refused unread; connection closed`,
          );
        },
        throttled: (over, waitMs) => {
          this.stats.throttledPublishes += over;
          log.debug({ address: socket.remoteAddress, over, waitMs }, 'mqtt publishes throttled');
        },
      });
      conn.on('error', () => conn.destroy());
      socket.on('close', () => {
        this.#sockets.delete(socket);
        this.#deviceConnections.delete(conn);
      });
      this.#aedes.handle(conn as unknown as Socket);
    };
    const tls = options.tls;
    if (tls === undefined) this.#server = createServer(accept);
    else {
      const server = createTlsServer(
        {
          cert: tls.certPem,
          key: tls.keyPem,
          // Asked, not required: devices with passwords and the cloud's own sessions send none;
          // authenticate decides on what the certificate proved.
          ...(tls.clientCaPem !== undefined
            ? { ca: tls.clientCaPem, requestCert: true, rejectUnauthorized: false }
            : {}),
        },
        accept,
      );
      server.on('tlsClientError', (err, socket) => {
        this.stats.tlsHandshakeFailures++;
        log.debug({ address: socket.remoteAddress, err: err.message }, 'mqtt tls handshake failed');
        socket.destroy();
      });
      this.#server = server;
    }
    this.#server.on('error', (err) => log.error({ err }, 'mqtt server error'));
  }

  /** Counts a refused connection; logs the first at once, then at most every REFUSAL_LOG_INTERVAL_MS. */
  #refused(context: Record<string, unknown>, what: string): void {
    this.stats.refusedConnections++;
    this.#refusals.unlogged++;
    const now = Date.now();
    if (now - this.#refusals.loggedAt < REFUSAL_LOG_INTERVAL_MS) return;
    this.#options.logger.warn(
      {
        event: 'mqtt.connection_refused',
        ...context,
        maxConnections: this.#maxConnections,
        deviceConnections: this.#deviceConnections.size,
        refusedSinceLastLog: this.#refusals.unlogged,
      },
      `mqtt ${what} refused: the embedded broker holds its limit of ${this.#maxConnections} device connections (raise --mqtt-max-connections if memory and file descriptors allow, or move to an external broker: docs/scaling.md)`,
    );
    this.#refusals.loggedAt = now;
    this.#refusals.unlogged = 0;
  }

  #bucketOf(deviceId: string): TokenBucket {
    let bucket = this.#buckets.get(deviceId);
    if (bucket === undefined) {
      bucket = new TokenBucket(
        this.#options.deviceMessagesPerSec ?? 200,
        this.#options.deviceMessageBurst ?? 1000,
      );
      this.#buckets.set(deviceId, bucket);
    }
    return bucket;
  }

  #takenOver(client: Client, live: Client, identity: MqttIdentity): void {
    this.stats.sessionTakeovers++;
    const now = Date.now();
    const seen = this.#takeovers.get(client.id) ?? { reportedAt: 0, unreported: 0 };
    seen.unreported++;
    this.#takeovers.set(client.id, seen);
    if (now - seen.reportedAt < TAKEOVER_REPORT_INTERVAL_MS) return;
    const takeover: SessionTakeover = {
      clientId: client.id,
      identity,
      previousAddress: addressOf(live),
      address: addressOf(client),
      count: seen.unreported,
    };
    seen.reportedAt = now;
    seen.unreported = 0;
    this.#options.logger.warn(
      { event: 'device.session_taken_over', ...takeover },
      'a second login with this client id took over the live session (a cloned credential?)',
    );
    try {
      this.#options.onSessionTakenOver?.(takeover);
    } catch (err) {
      this.#options.logger.error({ err }, 'session takeover hook failed');
    }
  }

  /**
   * Hands every device publish whose topic `accepts` to `handler` in this process and sends
   * the device its PUBACK only once `handler` calls `done`. aedes (0.51) writes a QoS 1
   * PUBACK *before* it emits the message to subscribers (lib/handlers/publish.js:
   * enqueuePublish), so no subscriber, in-process or over MQTT, can delay it; what it does
   * wait for is authorizePublish, so the message is taken there, after the ACL and size
   * checks, and authorizePublish answers when the handler is done. The message then goes on
   * to MQTT subscribers as before. Holding it takes none of aedes' shared emit slots: aedes
   * reads a connection's next packets only once those it is handling are finished, so a held
   * publish pauses that device's connection alone (and bounds what one device can have
   * pending to one read of its socket). Call the returned function to stop: from then on
   * such publishes are refused (the connection closes, the device sends them again after it
   * reconnects) rather than acknowledged with no one to store them.
   */
  holdPublishes(
    accepts: (topic: string) => boolean,
    handler: (topic: string, payload: Buffer, done: () => void) => void,
  ): () => void {
    const hold: PublishHold = { accepts, handler, open: true };
    this.#holds.push(hold);
    return () => {
      hold.open = false;
    };
  }

  /** Listens; resolves with the bound port (useful with port 0). */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      const { port, host } = this.#options;
      this.#server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
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

  /**
   * Closes every device connection at once. On shutdown this comes before the
   * cloud's own subscribers stop reading, so nothing a device publishes is
   * acknowledged with no one left to store it: what was in flight is not
   * acknowledged and the device sends it again (the cloud's authenticate
   * refuses devices from then on).
   */
  disconnectDevices(): void {
    for (const conn of this.#deviceConnections) conn.destroy();
  }

  /**
   * Closes at once every device connection that presented the client certificate with this
   * SHA-256 fingerprint (a revoked one: the cloud's authenticate refuses it from then on);
   * returns how many were closed. Connections of the same device with a password stay.
   */
  disconnectCertificate(fingerprintSha256: string): number {
    let closed = 0;
    for (const conn of this.#deviceConnections) {
      const certificate = clientCertificateOf(conn.socket);
      if (certificate?.verified !== true || certificate.fingerprintSha256 !== fingerprintSha256)
        continue;
      this.#deviceConnections.delete(conn);
      conn.destroy();
      closed++;
    }
    if (closed > 0)
      this.#options.logger.warn(
        { event: 'mqtt.certificate_sessions_closed', fingerprintSha256, closed },
        'closed live sessions that logged in with a revoked client certificate',
      );
    return closed;
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

interface PublishHold {
  accepts: (topic: string) => boolean;
  handler: (topic: string, payload: Buffer, done: () => void) => void;
  open: boolean;
}

function addressOf(client: Client): string | undefined {
  const conn = client.conn as unknown;
  if (conn instanceof GuardedConnection)
    return `${conn.socket.remoteAddress ?? '?'}:${conn.socket.remotePort ?? '?'}`;
  return undefined;
}

function yieldThenDone(_packet: unknown, done: () => void): void {
  setImmediate(done);
}

function noop(): void {}
