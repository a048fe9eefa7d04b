import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { LinesightError, describeError } from '@linesight/protocol';
import type { BlobStore } from '../blobs/blob-store.ts';
import type { DriftAlert } from '../drift/alert-store.ts';
import type { MetricSample } from '../metrics.ts';
import type { ModelVersion } from '../registry/model-registry.ts';
import type { LabelledSample } from '../review/review-store.ts';
import type { CreateRolloutInput } from '../rollouts/rollout-service.ts';
import { chooseChampion, runRetrainJob, type RetrainJobDeps } from './retrain-job.ts';
import { retrainRolloutGates } from './retrain-rollout-gates.ts';
import type { RetrainRolloutMode, RetrainSettings } from './retrain-settings.ts';
import {
  JOB_STATES,
  RetrainStore,
  type JobOptions,
  type JobResult,
  type JobTrigger,
  type RetrainJob,
} from './retrain-store.ts';
import { RetrainTriggers } from './retrain-triggers.ts';
import { runTrainProcess } from './train-process.ts';

/** What the retraining service needs from the rest of the cloud. */
export interface RetrainServiceOptions {
  settings: RetrainSettings;
  /** The job and dataset database (`<dataDir>/retrain.sqlite`). */
  path: string;
  /** Scratch folder of running jobs. */
  workDir: string;
  blobs: BlobStore;
  /** Every registered model version. */
  models: () => ModelVersion[];
  register: RetrainJobDeps['register'];
  labelled: (modelName: string) => LabelledSample[];
  /** Starts a rollout through the rollout service (its gates apply). */
  createRollout: (input: CreateRolloutInput) => Promise<{ id: string }>;
  /** Devices whose reported live model is name@version. */
  devicesRunning: (name: string, version: string) => string[];
  openAlerts: () => DriftAlert[];
  audit: (actor: string, action: string, subject: string, details: Record<string, unknown>) => void;
  logger: Logger;
  /** The trainer (tests swap it); the child process of train-process.ts by default. */
  train?: RetrainJobDeps['train'];
}

/** What starting a job may say beyond the model. */
export interface StartJobInput {
  model: string;
  parentVersion?: string;
  trigger: JobTrigger;
  triggerDetail?: string;
  actor: string;
  rollout?: RetrainRolloutMode;
  epochs?: number;
  seed?: number;
  devices?: string[];
}

/**
 * The retraining loop: jobs (queued, one per model, run one at a time in a
 * trainer process), their triggers, routes and metrics. start() then close().
 */
export class RetrainService {
  readonly store: RetrainStore;
  readonly #o: RetrainServiceOptions;
  readonly #triggers: RetrainTriggers;
  readonly #queue: string[] = [];
  #running: { id: string; controller: AbortController; done: Promise<void> } | undefined;
  #closing: Promise<void> | undefined;
  #started = false;
  readonly #stats = { started: 0, finished: new Map<string, number>() };

  constructor(options: RetrainServiceOptions) {
    this.#o = options;
    this.store = new RetrainStore(options.path);
    this.#triggers = new RetrainTriggers({
      settings: options.settings,
      models: () => new Set(options.models().map((m) => m.name)),
      start: (model, trigger, detail) => this.#startFromTrigger(model, trigger, detail),
      active: (model) => this.store.active(model) !== undefined,
      lastJobMs: (model) => {
        const last = this.store.lastJob(model);
        return last === undefined ? undefined : Date.parse(last.createdAt);
      },
      openAlerts: options.openAlerts,
      labelTimes: (model) => options.labelled(model).map((l) => Date.parse(l.labelledAt)),
      logger: options.logger,
    });
  }

  /** Fails jobs a previous process left unfinished, then starts the triggers. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    const failed = this.store.failInterrupted(
      'interrupted: the cloud restarted while the job was queued or running; nothing was registered',
    );
    if (failed.length > 0)
      this.#o.logger.warn(
        { jobs: failed },
        'retraining jobs interrupted by a restart marked failed',
      );
    this.#triggers.start();
  }

  /** Queues a job; ERR_CLOUD_CONFLICT when the model has one, ERR_CLOUD_BUSY when the queue is full. */
  startJob(input: StartJobInput): RetrainJob {
    if (this.#closing !== undefined)
      throw new LinesightError('ERR_CLOUD_NOT_STARTED', 'the cloud is shutting down');
    const versions = this.#o.models().filter((m) => m.name === input.model);
    if (versions.length === 0)
      throw new LinesightError('ERR_CLOUD_NOT_FOUND', `model ${input.model} is not registered`);
    // Checked now so a bad request is a 4xx; the champion is chosen again when the job runs.
    chooseChampion(versions, input.parentVersion);
    if (this.#queue.length >= this.#o.settings.maxQueued)
      throw new LinesightError(
        'ERR_CLOUD_BUSY',
        `${this.#queue.length} retraining jobs are waiting (maxQueued); try again later`,
      );
    const t = this.#o.settings.training;
    const options: JobOptions = {
      rollout: input.rollout ?? this.#o.settings.rollout.mode,
      epochs: input.epochs ?? t.epochs,
      seed: input.seed ?? t.seed,
      members: t.members,
      ...(t.size !== undefined ? { size: t.size } : {}),
      ...(input.devices !== undefined ? { devices: input.devices } : {}),
    };
    const job = this.store.add({
      id: randomUUID(),
      model: input.model,
      parentVersion: input.parentVersion ?? null,
      trigger: input.trigger,
      triggerDetail: input.triggerDetail ?? null,
      actor: input.actor,
      options,
    });
    this.#stats.started++;
    this.#o.audit(input.actor, 'retrain.start', job.id, {
      model: job.model,
      parentVersion: job.parentVersion,
      trigger: job.trigger,
      triggerDetail: job.triggerDetail,
    });
    this.#queue.push(job.id);
    this.#pump();
    return job;
  }

  /**
   * Cancels a queued or running job (a running one's trainer process is
   * stopped); the registry stays as it was. A job already past training and
   * registering its challenger finishes. ERR_CLOUD_CONFLICT for a finished job.
   */
  cancel(id: string, actor: string): RetrainJob {
    const job = this.store.get(id);
    if (job.state !== 'queued' && job.state !== 'running')
      throw new LinesightError('ERR_CLOUD_CONFLICT', `job ${id} has already ended (${job.state})`);
    this.#o.audit(actor, 'retrain.cancel', id, { model: job.model, state: job.state });
    const queued = this.#queue.indexOf(id);
    if (queued >= 0) {
      this.#queue.splice(queued, 1);
      this.store.finish(id, { state: 'cancelled', error: `cancelled by ${actor}` });
      this.#count('cancelled');
    } else if (this.#running?.id === id) {
      this.#running.controller.abort(new Error(`cancelled by ${actor}`));
    }
    return this.store.get(id);
  }

  /** The job that registered name@version, with its lineage; ERR_CLOUD_NOT_FOUND when none did. */
  lineage(name: string, version: string): RetrainJob {
    const job = this.store.jobOfCandidate(name, version);
    if (job === undefined)
      throw new LinesightError(
        'ERR_CLOUD_NOT_FOUND',
        `no retraining job registered ${name}@${version}`,
      );
    return job;
  }

  /** Prometheus samples: jobs by final state, running and queued. */
  metrics(): MetricSample[] {
    return [
      {
        name: 'linesight_retrain_jobs_total',
        help: 'Retraining jobs that ended since the cloud started, by final state',
        type: 'counter',
        values: JOB_STATES.filter((s) => s !== 'queued' && s !== 'running').map((state) => ({
          labels: { state },
          value: this.#stats.finished.get(state) ?? 0,
        })),
      },
      {
        name: 'linesight_retrain_jobs_active',
        help: 'Retraining jobs training (running) or waiting for the trainer (queued)',
        type: 'gauge',
        values: [
          { labels: { state: 'running' }, value: this.#running === undefined ? 0 : 1 },
          { labels: { state: 'queued' }, value: this.#queue.length },
        ],
      },
    ];
  }

  /** Stops the triggers, stops a running job (marked failed: the cloud shut down), closes the store. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#triggers.close();
      for (const id of this.#queue.splice(0))
        this.store.finish(id, { state: 'failed', error: 'interrupted: the cloud shut down' });
      const running = this.#running;
      running?.controller.abort(new Error('the cloud shut down'));
      await running?.done;
      this.store.close();
    })();
    return this.#closing;
  }

  #startFromTrigger(model: string, trigger: JobTrigger, detail: string): void {
    try {
      const job = this.startJob({
        model,
        trigger,
        triggerDetail: detail,
        actor: `retrain:${trigger}`,
      });
      this.#o.logger.info({ job: job.id, model, trigger, detail }, 'retraining job started');
    } catch (err) {
      this.#o.logger.warn({ err, model, trigger }, 'retraining trigger could not start a job');
    }
  }

  #count(state: string): void {
    this.#stats.finished.set(state, (this.#stats.finished.get(state) ?? 0) + 1);
  }

  #pump(): void {
    if (this.#running !== undefined || this.#closing !== undefined) return;
    const id = this.#queue.shift();
    if (id === undefined) return;
    const controller = new AbortController();
    const done = this.#run(id, controller).finally(() => {
      this.#running = undefined;
      this.#pump();
    });
    this.#running = { id, controller, done };
  }

  async #run(id: string, controller: AbortController): Promise<void> {
    const log = this.#o.logger.child({ job: id });
    const job = this.store.get(id);
    try {
      const versions = this.#o.models().filter((m) => m.name === job.model);
      const champion = chooseChampion(versions, job.parentVersion);
      this.store.markRunning(id, champion.version);
      log.info({ model: job.model, champion: champion.version }, 'retraining job running');
      const end = await runRetrainJob(
        {
          settings: this.#o.settings,
          store: this.store,
          blobs: this.#o.blobs,
          versions: (name) => this.#o.models().filter((m) => m.name === name),
          labelled: this.#o.labelled,
          register: this.#o.register,
          train:
            this.#o.train ??
            ((specPath, o) =>
              runTrainProcess(specPath, {
                ...o,
                timeoutMs: this.#o.settings.timeoutSec * 1000,
                nice: this.#o.settings.training.nice,
              })),
          workDir: this.#o.workDir,
        },
        this.store.get(id),
        champion,
        controller.signal,
        (p) => this.store.setProgress(id, p),
      );
      if (end.state === 'rejected') {
        this.store.finish(id, { state: 'rejected', result: end.result, error: end.reason });
        this.#count('rejected');
        log.info({ reason: end.reason }, 'retraining job: the challenger did not win');
        return;
      }
      // The rollout is started before the job reads as registered, so whoever waits for the job
      // sees its rollout (or why there is none) with it, never a registered job without either.
      const rollout = await this.#rollout(job, end.model, end.result, log);
      const r = { ...end.result, ...rollout };
      if (this.store.finish(id, { state: 'registered', result: r })) this.#count('registered');
      this.#o.audit(job.actor, 'model.retrain', `${job.model}@${end.model.version}`, {
        job: id,
        parentVersion: r.championVersion,
        datasetFingerprint: r.datasetFingerprint,
        parentDatasetFingerprint: r.parentDatasetFingerprint,
        labels: r.labels,
        metric: r.metric,
        champion: r.champion,
        challenger: r.challenger,
        agreement: r.agreement ?? null,
        rolloutId: r.rolloutId,
        rolloutGates: r.rolloutGates ?? null,
      });
      log.info(
        { candidate: end.model.version, improvement: r.improvement },
        'retraining job registered a candidate',
      );
    } catch (err) {
      const stopped = controller.signal.aborted;
      const why = stopped ? describeError(controller.signal.reason) : describeError(err);
      const byShutdown = this.#closing !== undefined;
      const state = stopped && !byShutdown ? 'cancelled' : 'failed';
      const error = stopped && byShutdown ? `interrupted: ${why}; nothing was registered` : why;
      if (this.store.finish(id, { state, error })) this.#count(state);
      log.warn({ state, error }, 'retraining job ended without a candidate');
    }
  }

  /**
   * Starts the candidate's rollout as the job asks, with gate limits from the
   * held-out agreement (retrain-rollout-gates.ts); returns its id and limits,
   * or why it did not start.
   */
  async #rollout(
    job: RetrainJob,
    model: ModelVersion,
    result: JobResult,
    log: Logger,
  ): Promise<Pick<JobResult, 'rolloutId' | 'rolloutError' | 'rolloutGates'>> {
    const mode = job.options.rollout;
    if (mode === 'none') return { rolloutId: null, rolloutError: null };
    const r = this.#o.settings.rollout;
    const championVersion = result.championVersion;
    const devices = job.options.devices ?? this.#o.devicesRunning(model.name, championVersion);
    const gates = retrainRolloutGates(result.agreement, result.challenger.images);
    try {
      if (devices.length === 0)
        throw new LinesightError(
          'ERR_CLOUD_BAD_REQUEST',
          `no device runs ${model.name}@${championVersion}, so there is no one to roll out to`,
        );
      const status = await this.#o.createRollout({
        model: model.name,
        version: model.version,
        selector: { ids: devices },
        // Latency, error and refusal gates keep their defaults.
        gates: { maxDefectRateChange: gates.maxDefectRateChange },
        ...(mode === 'shadow'
          ? {
              shadow: { durationSec: r.shadowSec, minAgreement: gates.minAgreement },
              waves: [{ percent: 100, soakSec: r.soakSec }],
            }
          : {
              waves: [
                { percent: r.canaryPercent, soakSec: r.soakSec },
                { percent: 100, soakSec: r.soakSec },
              ],
            }),
        actor: job.actor,
      });
      log.info(
        { rollout: status.id, mode, devices: devices.length, agreement: result.agreement, gates },
        'rollout of the candidate started',
      );
      return { rolloutId: status.id, rolloutError: null, rolloutGates: gates };
    } catch (err) {
      log.warn({ err }, 'the candidate is registered but its rollout did not start');
      return { rolloutId: null, rolloutError: describeError(err) };
    }
  }
}
