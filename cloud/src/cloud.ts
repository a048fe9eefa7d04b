import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import pino, { type Logger } from 'pino';
import { LinesightError } from '@linesight/protocol';
import { resolveAdminToken, type AdminTokenSource } from './admin-token.ts';
import { DataDirLock } from './data-dir-lock.ts';
import { EnrolmentTokens } from './registry/enrolment-tokens.ts';
import { openBlobStore } from './blobs/open-blob-store.ts';
import { UploadSlots } from './http/upload-slots.ts';
import { DownloadAdmission } from './http/download-admission.ts';
import { UploadStats } from './blobs/upload-stats.ts';
import type { BlobStore } from './blobs/blob-store.ts';
import {
  EmbeddedBroker,
  type BrokerStats,
  type ClientCertificate,
} from './broker/embedded-broker.ts';
import { ExternalBroker } from './broker/external-broker.ts';
import { MosquittoFiles } from './broker/mosquitto-files.ts';
import { BrokerPasswords } from './registry/broker-passwords.ts';
import { REGISTRY_ACCOUNTS, type BrokerAccounts } from './broker/broker-accounts.ts';
import { LISTEN_BACKLOG } from './listen-backlog.ts';
import type { MqttIdentity } from './broker/acl.ts';
import { loadCloudConfig, type CloudConfig, type CloudConfigInput } from './config.ts';
import { FleetLink } from './fleet/fleet-link.ts';
import { RolloutService } from './rollouts/rollout-service.ts';
import { RolloutEngine } from './rollouts/rollout-engine.ts';
import { ResultSampler } from './rollouts/result-sampler.ts';
import { buildHttpServer } from './http/server.ts';
import { loadCloudTls, serviceMqttTls, type ServiceMqttTls } from './tls/cloud-tls.ts';
import type { RateLimitStats } from './http/rate-limits.ts';
import { ModelServer } from './inference/model-server.ts';
import type { MetricSample } from './metrics.ts';
import { checkReadiness } from './readiness.ts';
import { ModelService } from './models/model-service.ts';
import { openRegistryDatabase, type RegistryDatabase } from './registry/database.ts';
import { DeviceRegistry } from './registry/device-registry.ts';
import { ModelRegistry } from './registry/model-registry.ts';
import { RolloutStore } from './registry/rollout-store.ts';
import { AuditLog } from './registry/audit-log.ts';
import { ApiTokens } from './registry/api-tokens.ts';
import { MqttReaders, READER_PREFIX } from './registry/mqtt-readers.ts';
import { RevokedCertificates } from './registry/revoked-certificates.ts';
import { sameSecret } from './registry/same-secret.ts';
import { KeyRing } from './signing/key-ring.ts';
import { DesiredIssuer } from './signing/desired-issuer.ts';
import { DesiredStateService } from './fleet/desired-state-service.ts';
import { PublishPacer } from './fleet/publish-pacer.ts';
import { KeyRotation } from './fleet/key-rotation.ts';
import cron, { type ScheduledTask } from 'node-cron';
import { EdgeDataStore } from './ingest/edge-data-store.ts';
import { EdgeIngest } from './ingest/edge-ingest.ts';
import { ingestMetrics } from './ingest/ingest-metrics.ts';
import { EdgeRetention } from './ingest/edge-retention.ts';
import { edgeDataRoutes } from './ingest/edge-data-routes.ts';
import { ReviewStore } from './review/review-store.ts';
import { reviewRoutes } from './review/review-routes.ts';
import { reviewMetrics } from './review/review-metrics.ts';
import { DriftService } from './drift/drift-service.ts';
import { driftSeriesRoute } from './dashboard/drift-series-route.ts';
import { deviceHistoryRoutes } from './dashboard/device-history-routes.ts';
import { FleetMetrics } from './fleet-metrics.ts';
import { retrainRoutes } from './retrain/retrain-routes.ts';
import { RetrainService } from './retrain/retrain-service.ts';

/** Addresses of a running cloud. */
export interface CloudUrls {
  http: string;
  mqtt: string;
}

/** The addresses devices and clients must use: the advertised ones, else the bound ones. */
export function advertisedUrls(
  bound: CloudUrls,
  config: Pick<CloudConfig, 'advertisedUrl' | 'advertisedMqttUrl'>,
): CloudUrls {
  return {
    http: config.advertisedUrl?.replace(/\/+$/, '') ?? bound.http,
    mqtt: config.advertisedMqttUrl ?? bound.mqtt,
  };
}

const SERVICE_USER = 'linesight-cloud';
const READINESS_PROBE = new TextEncoder().encode('ok\n');
const ADMIN_USER = 'admin';

/**
 * The control plane in one process: HTTP API, embedded MQTT broker, SQLite
 * registry, local blob store and the fleet link. start() then close().
 */
export class Cloud {
  readonly config: CloudConfig;
  readonly log: Logger;
  #db: RegistryDatabase | undefined;
  #broker: EmbeddedBroker | undefined;
  #externalBroker: ExternalBroker | undefined;
  #mosquittoFiles: MosquittoFiles | undefined;
  #link: FleetLink | undefined;
  #desired: DesiredStateService | undefined;
  #http: FastifyInstance | undefined;
  #modelServer: ModelServer | undefined;
  #urls: CloudUrls | undefined;
  #blobs: BlobStore | undefined;
  #advertised: CloudUrls | undefined;
  #adminToken: AdminTokenSource | undefined;
  #caPem: string | undefined;
  #closing: Promise<void> | undefined;
  #refreshTask: ScheduledTask | undefined;
  #rolloutEngine: RolloutEngine | undefined;
  #resultSampler: ResultSampler | undefined;
  #edgeStore: EdgeDataStore | undefined;
  #dataDirLock: DataDirLock | undefined;
  #ingest: EdgeIngest | undefined;
  /** Devices may log in: only while the ingest reads what they send. */
  #acceptingDevices = false;
  #retention: EdgeRetention | undefined;
  #review: ReviewStore | undefined;
  #drift: DriftService | undefined;
  #retrain: RetrainService | undefined;

  constructor(input: CloudConfigInput, logger?: Logger) {
    this.config = loadCloudConfig(input);
    this.log = logger ?? pino({ level: this.config.logLevel, base: { app: 'cloud' } });
  }

  /** Starts every component; on failure closes what started and rethrows. */
  async start(): Promise<CloudUrls> {
    try {
      return await this.#start();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async #start(): Promise<CloudUrls> {
    // First: a bad certificate file stops the start before anything listens or is written.
    const tls = await loadCloudTls(this.config);
    this.#caPem = tls?.caPem;
    const dataDir = resolve(this.config.dataDir);
    // First: a second cloud on the same folder would corrupt its registry and blobs.
    this.#dataDirLock = DataDirLock.acquire(dataDir);
    this.#adminToken = await resolveAdminToken(dataDir, this.config.adminToken);
    const keys = await KeyRing.open(dataDir);
    const db = openRegistryDatabase(join(dataDir, 'registry.sqlite'));
    this.#db = db;
    const models = new ModelRegistry(db);
    const devices = new DeviceRegistry(db);
    const audit = new AuditLog(db, { logger: this.log.child({ component: 'audit' }) });
    const tokens = new ApiTokens(db);
    const readers = new MqttReaders(db);
    const revokedCertificates = new RevokedCertificates(db);
    devices.markAllOffline();
    const {
      blobs,
      local: localBlobs,
      tempFile,
    } = await openBlobStore(this.config, dataDir, () => this.advertised.http);
    this.#blobs = blobs;
    const servicePassword = randomBytes(24).toString('base64url');
    const adminToken = this.#adminToken.token;
    const edgeStore = new EdgeDataStore(join(dataDir, 'edge-data.sqlite'));
    this.#edgeStore = edgeStore;
    const review = new ReviewStore(
      join(dataDir, 'review.sqlite'),
      join(dataDir, 'edge-data.sqlite'),
      () =>
        models
          .list()
          .map((m) => ({ name: m.name, version: m.version, threshold: m.contract.threshold })),
    );
    this.#review = review;
    // Devices are refused until the ingest listens (and again from the start of close()), so
    // no batch is acknowledged with no one to store it.
    const authenticate = (
      clientId: string,
      username: string,
      password: string,
      certificate?: ClientCertificate,
    ): MqttIdentity | undefined => {
      // A certificate that was presented but not accepted (another CA, expired) refuses the
      // login outright, even with a good password: it is a broken or forged credential.
      if (certificate !== undefined && !certificate.verified) return undefined;
      // So is a revoked one (stolen, leaked): the device logs in with its new certificate or password.
      if (
        certificate?.verified === true &&
        revokedCertificates.refuses(certificate.fingerprintSha256, 'mqtt')
      ) {
        this.log.warn(
          {
            event: 'device.revoked_certificate_refused',
            protocol: 'mqtt',
            clientId,
            certificateNames: certificate.names,
            fingerprintSha256: certificate.fingerprintSha256,
          },
          'mqtt login refused: its client certificate is revoked',
        );
        return undefined;
      }
      if (username === SERVICE_USER)
        return sameSecret(password, servicePassword) ? { kind: 'service' } : undefined;
      if (username === ADMIN_USER)
        return sameSecret(password, adminToken) ? { kind: 'admin' } : undefined;
      // A reader too: its username holds a colon, which no device id may, so it cannot take over a device.
      if (username.startsWith(READER_PREFIX)) {
        const reader = clientId === username ? readers.check(username, password) : undefined;
        return reader === undefined ? undefined : { kind: 'reader', ...reader };
      }
      // A device must use its id as both username and client id, so no one can take over its session.
      // It proves it with its secret, or with a client certificate (from tlsClientCa) naming its id.
      if (
        this.#acceptingDevices &&
        clientId === username &&
        (certificate?.names.includes(username) === true
          ? devices.has(username)
          : devices.checkSecret(username, password))
      )
        return { kind: 'device', deviceId: username };
      return undefined;
    };
    let mqttUrl: string;
    let service: { username: string; password: string; tls?: ServiceMqttTls };
    let accounts: BrokerAccounts;
    if (this.config.mqttUrl !== undefined) {
      // An external broker holds the fleet's sessions; the cloud keeps its logins in step.
      service = { username: this.config.mqttUsername, password: this.config.mqttPassword ?? '' };
      let missing: string[];
      if (this.config.mqttAccounts === 'files') {
        const files = new MosquittoFiles({
          url: this.config.mqttUrl,
          ...service,
          adminToken,
          configDir: resolve(this.config.mosquittoConfigDir ?? '.'),
          ...(this.config.mosquittoPidFile !== undefined
            ? { pidFile: resolve(this.config.mosquittoPidFile) }
            : {}),
          store: new BrokerPasswords(db),
          logger: this.log.child({ component: 'broker' }),
        });
        this.#mosquittoFiles = files;
        await files.start();
        missing = files.missingDevices();
        accounts = files;
      } else {
        const external = new ExternalBroker({
          url: this.config.mqttUrl,
          ...service,
          adminToken,
          logger: this.log.child({ component: 'broker' }),
        });
        this.#externalBroker = external;
        await external.start();
        missing = await external.missingDevices(devices.list().map((d) => d.id));
        accounts = external;
      }
      if (missing.length > 0)
        this.log.warn(
          { event: 'broker.logins_missing', devices: missing.length, first: missing.slice(0, 10) },
          'devices without a login on the external broker cannot connect (provisioned before the switch?): rotate their credentials (linesight device rotate-credentials <id>)',
        );
      mqttUrl = this.config.mqttUrl;
    } else {
      this.#broker = new EmbeddedBroker({
        host: this.config.host,
        port: this.config.mqttPort,
        maxConnections: this.config.mqttMaxConnections,
        deviceMessagesPerSec: this.config.mqttDeviceMessagesPerSec,
        deviceMessageBurst: this.config.mqttDeviceMessageBurst,
        authenticate,
        ...(tls !== undefined
          ? {
              tls: {
                certPem: tls.certPem,
                keyPem: tls.keyPem,
                ...(tls.clientCaPem !== undefined ? { clientCaPem: tls.clientCaPem } : {}),
              },
            }
          : {}),
        logger: this.log.child({ component: 'broker' }),
        onSessionTakenOver: ({ clientId, identity, previousAddress, address, count }) => {
          if (identity.kind === 'device')
            audit.record('broker', 'device.session_taken_over', clientId, {
              previousAddress: previousAddress ?? null,
              address: address ?? null,
              count,
            });
        },
      });
      const mqttPort = await this.#broker.start();
      mqttUrl = `${tls !== undefined ? 'mqtts' : 'mqtt'}://${this.config.host}:${mqttPort}`;
      service = {
        username: SERVICE_USER,
        password: servicePassword,
        ...(tls !== undefined ? { tls: serviceMqttTls(tls) } : {}),
      };
      accounts = REGISTRY_ACCOUNTS;
    }
    const ingest = new EdgeIngest({
      mqttUrl,
      ...service,
      // With an external broker, batches wait there while the cloud is away (docs/scaling.md).
      ...(this.config.mqttUrl !== undefined ? { durableClientId: 'linesight-ingest' } : {}),
      // With the embedded broker, from aedes in this process: a device's PUBACK waits for the commit.
      ...(this.#broker !== undefined ? { inProcess: this.#broker } : {}),
      store: edgeStore,
      knownDevice: (id) => devices.has(id),
      blobs,
      logger: this.log.child({ component: 'ingest' }),
    });
    this.#ingest = ingest;
    await ingest.start();
    this.#acceptingDevices = true;
    const retention = new EdgeRetention({
      store: edgeStore,
      days: this.config.edgeRetentionDays,
      schedule: this.config.edgeRetentionCron,
      blobs,
      keptObjects: (keys) => review.labelledObjects(keys),
      orphanGraceHours: this.config.edgeOrphanGraceHours,
      orphanSchedule: this.config.edgeOrphanSweepCron,
      knownDevice: (id) => devices.has(id),
      logger: this.log.child({ component: 'retention' }),
    });
    this.#retention = retention;
    retention.start();
    const modelReference = (name: string, version: string) => {
      if (!models.has(name, version)) return undefined;
      const { contract } = models.get(name, version);
      return { threshold: contract.threshold, referenceProfile: contract.referenceProfile };
    };
    const drift = new DriftService({
      settings: this.config.drift,
      path: join(dataDir, 'drift.sqlite'),
      windows: (fromMs, toMs) =>
        edgeStore.windows({ fromMs, toMs, limit: Number.MAX_SAFE_INTEGER }),
      model: modelReference,
      logger: this.log.child({ component: 'drift' }),
    });
    this.#drift = drift;

    const link = new FleetLink({
      mqttUrl,
      ...service,
      devices,
      logger: this.log.child({ component: 'fleet-link' }),
    });
    this.#link = link;
    await link.start();
    const desired = new DesiredStateService({
      devices,
      issuer: new DesiredIssuer(keys, this.config.desiredTtlSec),
      link,
      pacer: new PublishPacer({ ratePerSec: this.config.desiredPublishRatePerSec }),
      logger: this.log.child({ component: 'desired' }),
    });
    this.#desired = desired;
    const rolloutStore = new RolloutStore(db);
    const resultSampler = new ResultSampler({
      mqttUrl,
      ...service,
      logger: this.log.child({ component: 'result-sampler' }),
    });
    this.#resultSampler = resultSampler;
    await resultSampler.start();
    const rolloutEngine = new RolloutEngine({
      sampler: resultSampler,
      store: rolloutStore,
      devices,
      desired,
      models,
      audit,
      logger: this.log.child({ component: 'rollouts' }),
    });
    this.#rolloutEngine = rolloutEngine;
    const rollouts = new RolloutService({
      models,
      devices,
      rollouts: rolloutStore,
      engine: rolloutEngine,
      audit,
      desired,
    });
    // In the background, paced: a fleet of 10,000 takes 20 s at 500/s, and HTTP need not wait.
    desired.republishAll();
    await desired.refresh();
    // Re-issue desired state before it expires, so devices never hold a stale document.
    this.#refreshTask = cron.schedule('*/10 * * * *', async () => {
      try {
        const count = await desired.refresh();
        if (count > 0) this.log.info({ count }, 're-issued desired state before expiry');
      } catch (err) {
        this.log.error({ err }, 'desired state refresh failed');
      }
    });
    const modelService = new ModelService({ registry: models, blobs, keys, audit });
    const keyRotation = new KeyRotation({ keys, models, modelService, desired });
    const retrain = new RetrainService({
      settings: this.config.retrain,
      path: join(dataDir, 'retrain.sqlite'),
      workDir: join(dataDir, 'retrain-work'),
      blobs,
      models: () => models.list(),
      register: (input) => modelService.register(input),
      labelled: (modelName) => review.labelledSamples({ modelName }),
      createRollout: (input) => rollouts.create(input),
      devicesRunning: (name, version) =>
        devices
          .listReported()
          .filter((d) => d.reported?.model?.name === name && d.reported.model.version === version)
          .map((d) => d.id),
      openAlerts: () => drift.alerts.list({ state: 'open', limit: 10_000 }),
      audit: (actor, action, subject, details) => audit.record(actor, action, subject, details),
      logger: this.log.child({ component: 'retrain' }),
    });
    this.#retrain = retrain;

    const broker = this.#broker;
    const modelServer = new ModelServer({
      models,
      blobs,
      logger: this.log.child({ component: 'inference' }),
    });
    this.#modelServer = modelServer;
    const uploadStats = new UploadStats();
    const modelUploadSlots = new UploadSlots(this.config.maxConcurrentModelUploads);
    const artifactDownloads = new DownloadAdmission({
      max: this.config.artifactDownloadConcurrency,
      logger: this.log.child({ component: 'http' }),
    });
    const rateLimitStats: RateLimitStats = { refused: { control: 0, predict: 0 } };
    const fleetMetrics = new FleetMetrics({
      windows: (fromMs, toMs, limit) => edgeStore.windows({ fromMs, toMs, limit }),
      devices: () => devices.list(),
      lookbackSec: 300,
      maxWindows: 20_000,
      cacheMs: 10_000,
    });
    this.#http = await buildHttpServer({
      adminToken,
      ...(tls !== undefined
        ? {
            https: {
              cert: tls.certPem,
              key: tls.keyPem,
              ...(tls.clientCaPem !== undefined ? { clientCa: tls.clientCaPem } : {}),
            },
          }
        : {}),
      logger: this.log,
      rateLimits: this.config.rateLimits,
      rateLimitStats,
      services: {
        models,
        modelService,
        devices,
        revokedCertificates,
        // Only the embedded broker knows which certificate a session presented.
        disconnectCertificate: (fingerprint) => broker?.disconnectCertificate(fingerprint) ?? 0,
        audit,
        tokens,
        enrolmentTokens: await EnrolmentTokens.open(join(dataDir, 'enrolment.key')),
        readers,
        rollouts,
        blobs,
        localBlobs,
        uploadUrlTtlSec: this.config.uploadUrlTtlSec,
        maxUploadObjectBytes: this.config.maxUploadObjectBytes,
        uploadStats,
        link,
        desired,
        brokerAccounts: accounts,
        keys,
        keyRotation,
        maxModelBytes: this.config.maxModelBytes,
        modelUploadSlots,
        artifactDownloads,
        tempFile,
        modelServer,
        maxPredictBytes: this.config.maxPredictBytes,
        mqttUrl: () => this.advertised.mqtt,
        httpUrl: () => this.advertised.http,
        metricsAuth: this.config.metricsAuth,
        tlsCaPem: tls?.caPem,
        alertLevels: () => drift.alerts.openLevelsByDevice(),
        metrics: () => [
          ...collectMetrics(devices, models, link, broker?.stats),
          ...fleetMetrics.samples(),
          ...uploadStats.metrics(modelUploadSlots),
          ...artifactDownloads.metrics(),
          ...revokedCertificates.metrics(),
          ...ingestMetrics(ingest.stats, ingest.pendingRecords),
          ...retention.metrics(),
          {
            name: 'linesight_http_rate_limited_total',
            help: 'REST requests refused with 429 for going over their caller’s budget, by budget',
            type: 'counter',
            values: [
              { labels: { budget: 'control' }, value: rateLimitStats.refused.control },
              { labels: { budget: 'predict' }, value: rateLimitStats.refused.predict },
            ],
          },
          ...reviewMetrics(review, this.config.reviewQualityWindowDays),
          ...drift.metrics(),
          ...retrain.metrics(),
        ],
        readiness: () =>
          checkReadiness([
            {
              name: 'broker',
              check: () => {
                // The cloud's own MQTT session is up: the broker accepts and authenticates.
                if (!link.connected)
                  throw new Error('the fleet link is not connected to the broker');
              },
            },
            { name: 'database', check: () => void db.prepare('SELECT 1').get() },
            // A real write: the store can take artifacts (disk full, read-only mount, lost bucket).
            { name: 'blobStore', check: () => blobs.put('readiness/probe', READINESS_PROBE) },
          ]),
      },
    });
    await this.#http.register(async (scope) =>
      edgeDataRoutes(scope, {
        store: edgeStore,
        ingest,
        createDownloadUrl: (key, ttlSec) => blobs.createDownloadUrl(key, ttlSec),
      }),
    );
    await this.#http.register(async (scope) =>
      reviewRoutes(scope, {
        store: review,
        createDownloadUrl: (key, ttlSec) => blobs.createDownloadUrl(key, ttlSec),
      }),
    );
    await this.#http.register(async (scope) => drift.routes(scope));
    await this.#http.register(async (scope) =>
      driftSeriesRoute(scope, {
        settings: this.config.drift,
        windows: (deviceId, fromMs, toMs, limit) =>
          edgeStore.windows({ deviceId, fromMs, toMs, limit }),
        model: modelReference,
      }),
    );
    await this.#http.register(async (scope) =>
      deviceHistoryRoutes(scope, {
        assertDevice: (id) => void devices.get(id),
        windows: (deviceId, fromMs, toMs, limit) =>
          edgeStore.windows({ deviceId, fromMs, toMs, limit }),
        events: (deviceId, fromMs, toMs, limit) =>
          edgeStore.events({ deviceId, fromMs, toMs, limit, newestFirst: true }),
        alerts: (deviceId) => drift.alerts.list({ deviceId, limit: 500 }),
        rollouts: (deviceId) => rolloutStore.list().filter((r) => r.deviceIds.includes(deviceId)),
        audit: (deviceId) => audit.list({ subject: deviceId, limit: 200 }),
      }),
    );
    await this.#http.register(async (scope) => retrainRoutes(scope, { service: retrain, blobs }));
    await this.#http.listen({
      host: this.config.host,
      port: this.config.httpPort,
      backlog: LISTEN_BACKLOG,
    });
    // Rollouts that were under way before a restart continue from their persisted state.
    rolloutEngine.start();
    drift.start();
    retrain.start();
    const httpPort = (this.#http.server.address() as AddressInfo).port;
    this.#urls = {
      http: `${tls !== undefined ? 'https' : 'http'}://${this.config.host}:${httpPort}`,
      mqtt: mqttUrl,
    };
    this.#advertised = advertisedUrls(this.#urls, this.config);
    return this.#urls;
  }

  /** The edge-data ingest (counters, commit hook for benchmarks); undefined before start(). */
  get edgeIngest(): EdgeIngest | undefined {
    return this.#ingest;
  }

  /** The edge-data retention job and orphan sweep; undefined before start(). */
  get edgeRetention(): EdgeRetention | undefined {
    return this.#retention;
  }

  /** Drift monitoring (alerts, the job); undefined before start(). */
  get drift(): DriftService | undefined {
    return this.#drift;
  }

  /** The retraining loop (jobs, datasets, triggers); undefined before start(). */
  get retrain(): RetrainService | undefined {
    return this.#retrain;
  }

  /** Where the cloud listens; throws before start(). */
  get urls(): CloudUrls {
    return started(this.#urls);
  }

  /** The object store of artifacts and uploads; throws before start(). */
  get blobs(): BlobStore {
    return started(this.#blobs);
  }

  /** The addresses devices and clients must use (advertised, else bound); throws before start(). */
  get advertised(): CloudUrls {
    return started(this.#advertised);
  }

  /**
   * The CA that vouches for the cloud's certificate (the one provisioning hands
   * devices to pin), once started with TLS; undefined without TLS.
   */
  get caPem(): string | undefined {
    return this.#caPem;
  }

  /** The admin token and where it came from; throws before start(). */
  get adminToken(): AdminTokenSource {
    return started(this.#adminToken);
  }

  /**
   * Shuts down in order: stop HTTP (no new requests), the refresh task and
   * the rollout engine (timers stopped, step in progress finished), the model server (after
   * in-flight predictions), device connections (refused from then on), the
   * fleet link, the ingest (after reading all the broker sent it), the broker,
   * then the database. Idempotent; collects errors.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const errors: unknown[] = [];
      const step = async (fn: () => Promise<void> | void) => {
        try {
          await fn();
        } catch (err) {
          errors.push(err);
        }
      };
      await step(async () => this.#http?.close());
      await step(async () => this.#refreshTask?.destroy());
      await step(async () => this.#retrain?.close());
      await step(async () => this.#rolloutEngine?.close());
      await step(async () => this.#resultSampler?.close());
      await step(async () => this.#modelServer?.close());
      await step(async () => this.#retention?.close());
      await step(async () => this.#drift?.close());
      // After the engine (no more documents queued), before the link the publishes go through.
      await step(async () => this.#desired?.close());
      // Devices go first, so no batch is acknowledged once the ingest stops reading.
      await step(() => {
        this.#acceptingDevices = false;
        this.#broker?.disconnectDevices();
      });
      await step(async () => this.#link?.close());
      await step(async () => this.#ingest?.close());
      await step(async () => this.#broker?.close());
      await step(async () => this.#externalBroker?.close());
      await step(async () => this.#mosquittoFiles?.close());
      await step(() => {
        this.#db?.close();
      });
      await step(async () => this.#blobs?.close());
      await step(() => {
        this.#review?.close();
      });
      await step(() => {
        this.#edgeStore?.close();
      });
      // Last: the folder is free only once every store in it is closed.
      await step(() => {
        this.#dataDirLock?.release();
      });
      if (errors.length > 0) throw new AggregateError(errors, 'cloud close failed');
    })();
    return this.#closing;
  }
}

/** A part the cloud makes in start(); ERR_CLOUD_NOT_STARTED before then. */
function started<T>(part: T | undefined): T {
  if (part === undefined) throw new LinesightError('ERR_CLOUD_NOT_STARTED', 'cloud is not started');
  return part;
}

function collectMetrics(
  devices: DeviceRegistry,
  models: ModelRegistry,
  link: FleetLink,
  /** The embedded broker's counters; an external broker keeps its own (its $SYS topics). */
  brokerStats: BrokerStats | undefined,
): MetricSample[] {
  const all = devices.list();
  const channelValues = (counts: Record<string, number>) =>
    Object.entries(counts).map(([channel, value]) => ({ labels: { channel }, value }));
  return [
    {
      name: 'linesight_devices',
      help: 'Provisioned devices',
      type: 'gauge',
      values: [{ value: all.length }],
    },
    {
      name: 'linesight_devices_online',
      help: 'Devices whose status is online',
      type: 'gauge',
      values: [{ value: all.filter((d) => d.online).length }],
    },
    {
      name: 'linesight_model_versions',
      help: 'Registered model versions',
      type: 'gauge',
      values: [{ value: models.list().length }],
    },
    {
      name: 'linesight_device_frames_scored',
      help: 'Frames scored, summed over devices (as last reported)',
      type: 'gauge',
      values: [
        {
          value: all.reduce(
            (n, d) => n + (d.telemetry?.frames.scored ?? d.reported?.frames.scored ?? 0),
            0,
          ),
        },
      ],
    },
    {
      name: 'linesight_mqtt_messages_received_total',
      help: 'Device messages received by channel',
      type: 'counter',
      values: channelValues(link.stats.received),
    },
    {
      name: 'linesight_mqtt_messages_invalid_total',
      help: 'Device messages dropped as invalid, by channel',
      type: 'counter',
      values: channelValues(link.stats.invalid),
    },
    ...(brokerStats === undefined ? [] : brokerMetrics(brokerStats)),
  ];
}

/** The embedded broker's counters. */
function brokerMetrics(broker: BrokerStats): MetricSample[] {
  return [
    {
      name: 'linesight_mqtt_connected_clients',
      help: 'Clients connected to the embedded broker',
      type: 'gauge',
      values: [{ value: broker.connectedClients }],
    },
    {
      name: 'linesight_mqtt_auth_failures_total',
      help: 'Rejected MQTT logins',
      type: 'counter',
      values: [{ value: broker.authFailures }],
    },
    {
      name: 'linesight_mqtt_denied_total',
      help: 'Publishes and subscribes denied by the ACL',
      type: 'counter',
      values: [
        { labels: { action: 'publish' }, value: broker.deniedPublishes },
        { labels: { action: 'subscribe' }, value: broker.deniedSubscribes },
      ],
    },
    {
      name: 'linesight_mqtt_rejected_total',
      help: 'MQTT packets refused by the broker: oversize (connection closed) or retain (flag dropped)',
      type: 'counter',
      values: [
        { labels: { reason: 'oversize' }, value: broker.oversizeRejected },
        { labels: { reason: 'retain' }, value: broker.retainDropped },
      ],
    },
    {
      name: 'linesight_mqtt_throttled_publishes_total',
      help: 'Device publishes over the per-device rate limit (delayed by backpressure)',
      type: 'counter',
      values: [{ value: broker.throttledPublishes }],
    },
    {
      name: 'linesight_mqtt_refused_connections_total',
      help: 'Connections the embedded broker refused because it held its connection limit (mqttMaxConnections)',
      type: 'counter',
      values: [{ value: broker.refusedConnections }],
    },
    {
      name: 'linesight_mqtt_client_errors_total',
      help: 'MQTT connections closed on a client error: malformed packet, protocol violation, denied publish, reset socket',
      type: 'counter',
      values: [{ value: broker.clientErrors }],
    },
    {
      name: 'linesight_mqtt_session_takeovers_total',
      help: 'Logins that took over a live session with the same client id (device.session_taken_over)',
      type: 'counter',
      values: [{ value: broker.sessionTakeovers }],
    },
    {
      name: 'linesight_mqtt_tls_handshake_failures_total',
      help: 'TLS handshakes on the mqtts port that failed (a client that does not trust the certificate, plain MQTT on the TLS port)',
      type: 'counter',
      values: [{ value: broker.tlsHandshakeFailures }],
    },
  ];
}
