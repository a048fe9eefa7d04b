import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { sha256Hex } from '@linesight/protocol';
import { cloudClient, withCloudCall, type CloudCallOptions } from '../cloud-options.ts';
import { parsePositiveInt } from '../options.ts';
import { progressLine } from '../progress.ts';
import { readDatasetVerbose } from './model-command.ts';
import {
  jobEnded,
  type CloudApiClient,
  type RetrainJobView,
  type RetrainMetrics,
} from '@linesight/api-client';

const STATES = ['queued', 'running', 'registered', 'rejected', 'failed', 'cancelled'];

function parseSeed(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('expected a whole number of at least 0');
  return n;
}

function parseSec(value: string): number {
  const n = Number(value);
  if (!(n > 0)) throw new InvalidArgumentError('expected a number of seconds above 0');
  return n;
}

async function retrainApi(opts: CloudCallOptions): Promise<CloudApiClient> {
  return (await cloudClient(opts)).api;
}

function num(value: number | null | undefined): string {
  return value === null || value === undefined ? '-' : value.toFixed(4);
}

function metricsLine(m: RetrainMetrics): string {
  return `auroc ${num(m.auroc)}  ap ${num(m.ap)}  f1 ${num(m.f1)}  precision ${num(m.precision)}  recall ${num(m.recall)}  (${m.images} images)`;
}

/** One line of a job for `retrain list`. */
export function formatJobLine(j: RetrainJobView): string {
  const outcome =
    j.result?.candidateVersion != null
      ? `-> ${j.model}@${j.result.candidateVersion}`
      : j.state === 'running' && j.progress !== null
        ? `${j.progress.step} ${j.progress.done}/${j.progress.total}${j.progress.epoch !== undefined ? ` epoch ${j.progress.epoch}/${j.progress.epochs ?? '?'}` : ''}`
        : (j.error ?? '');
  return `${j.id}  ${j.model}@${j.parentVersion ?? '?'}  ${j.state}  ${j.trigger}  ${j.createdAt}  ${outcome}`;
}

/** A job in full for `retrain show`. */
export function formatJob(j: RetrainJobView): string {
  const lines = [
    `job ${j.id}: ${j.state}`,
    `model ${j.model}, champion ${j.parentVersion ?? '(chosen when it runs)'}, trigger ${j.trigger}${j.triggerDetail !== null ? ` (${j.triggerDetail})` : ''}, by ${j.actor}`,
    `created ${j.createdAt}${j.startedAt !== null ? `, started ${j.startedAt}` : ''}${j.finishedAt !== null ? `, finished ${j.finishedAt}` : ''}`,
    `options: rollout ${j.options.rollout}, epochs ${j.options.epochs}, seed ${j.options.seed}`,
  ];
  if (j.progress !== null && !jobEnded(j))
    lines.push(
      `progress: ${j.progress.step} ${j.progress.done}/${j.progress.total}${j.progress.epoch !== undefined ? ` epoch ${j.progress.epoch}/${j.progress.epochs ?? '?'}` : ''}`,
    );
  const r = j.result;
  if (r !== null) {
    lines.push(
      `held-out ${r.metric} (needs +${r.minImprovement}): improvement ${num(r.improvement)}`,
      `  champion   ${r.championVersion}: ${metricsLine(r.champion)}`,
      `  challenger ${r.candidateVersion ?? '(not registered)'}: ${metricsLine(r.challenger)}`,
      `data: parent dataset ${r.parentDatasetFingerprint.slice(0, 16)} (${r.counts.parent ?? 0} images) + ${r.labels.train.length} labelled samples -> dataset ${r.datasetFingerprint.slice(0, 16)}; held out ${r.labels.holdout.length} (${r.counts.holdoutGood ?? 0} good, ${r.counts.holdoutDefect ?? 0} defect)`,
      `training ${(r.trainingMs / 1000).toFixed(1)} s`,
    );
    if (r.rolloutId !== null) lines.push(`rollout ${r.rolloutId}`);
    if (r.rolloutError !== null) lines.push(`rollout not started: ${r.rolloutError}`);
  }
  if (j.error !== null)
    lines.push(`${j.state === 'rejected' ? 'not registered' : 'error'}: ${j.error}`);
  return lines.join('\n');
}

/** Polls a job until it ends (or the deadline), printing its progress on stderr. */
async function waitFor(
  api: CloudApiClient,
  id: string,
  timeoutSec: number,
): Promise<RetrainJobView> {
  const deadline = Date.now() + timeoutSec * 1000;
  for (;;) {
    const job = await api.getRetrainJob(id);
    if (jobEnded(job)) {
      progressLine('');
      return job;
    }
    if (job.progress !== null)
      progressLine(
        `${job.state} ${job.progress.step} ${job.progress.done}/${job.progress.total}${job.progress.epoch !== undefined ? ` epoch ${job.progress.epoch}/${job.progress.epochs ?? '?'}` : ''}`,
      );
    if (Date.now() > deadline) {
      progressLine('');
      throw new InvalidArgumentError(
        `job ${id} is still ${job.state} after ${timeoutSec} s (it keeps running; see \`linesight retrain show ${id}\`)`,
      );
    }
    await sleep(1000);
  }
}

/** `linesight retrain`: retraining jobs and the training datasets they start from. */
export function retrainCommand(): Command {
  const retrain = new Command('retrain').description(
    'retrain a model on its training data plus labelled samples; the challenger is registered as candidate only if it beats the champion',
  );

  withCloudCall(
    retrain
      .command('start')
      .description('start a retraining job for a model (one job per model at a time)')
      .argument('<model>', 'model name')
      .option('--parent <version>', 'champion to start from (default: production, else newest)')
      .addOption(
        new Option('--rollout <mode>', 'what a registered candidate starts').choices([
          'none',
          'shadow',
          'canary',
        ]),
      )
      .option('--epochs <n>', 'training epochs of the classifier', parsePositiveInt)
      .option('--seed <n>', 'training seed', parseSeed)
      .option(
        '--device <id...>',
        'devices the rollout targets (default: those running the champion)',
      )
      .option('--wait', 'wait until the job ends, printing progress; exit 1 unless it registered')
      .option('--timeout <sec>', 'with --wait: give up waiting after this long', parseSec, 3600)
      .option('--json', 'print JSON'),
  ).action(
    async (
      model: string,
      opts: CloudCallOptions & {
        parent?: string;
        /** One of the --rollout choices. */
        rollout?: 'none' | 'shadow' | 'canary';
        epochs?: number;
        seed?: number;
        device?: string[];
        wait?: boolean;
        timeout: number;
        json?: boolean;
      },
    ) => {
      const api = await retrainApi(opts);
      let job = await api.startRetrain({
        model,
        ...(opts.parent !== undefined ? { parentVersion: opts.parent } : {}),
        ...(opts.rollout !== undefined ? { rollout: opts.rollout } : {}),
        ...(opts.epochs !== undefined ? { epochs: opts.epochs } : {}),
        ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
        ...(opts.device !== undefined ? { devices: opts.device } : {}),
      });
      if (!opts.json) console.error(`started job ${job.id} for ${model}`);
      if (opts.wait) job = await waitFor(api, job.id, opts.timeout);
      console.log(opts.json ? JSON.stringify(job) : formatJob(job));
      if (opts.wait && job.state !== 'registered') process.exitCode = 1;
    },
  );

  withCloudCall(
    retrain
      .command('list')
      .description('list retraining jobs, newest first')
      .option('--model <name>', 'only this model')
      .addOption(new Option('--state <state>', 'only jobs in this state').choices(STATES))
      .option('--limit <n>', 'at most this many', parsePositiveInt, 50)
      .option('--json', 'print JSON'),
  ).action(
    async (
      opts: CloudCallOptions & { model?: string; state?: string; limit: number; json?: boolean },
    ) => {
      const jobs = await (
        await retrainApi(opts)
      ).listRetrainJobs({
        model: opts.model,
        state: opts.state,
        limit: opts.limit,
      });
      if (opts.json) console.log(JSON.stringify({ jobs }));
      else if (jobs.length === 0) console.log('no retraining jobs');
      else for (const j of jobs) console.log(formatJobLine(j));
    },
  );

  withCloudCall(
    retrain
      .command('show')
      .description('show a job: state, progress, metrics of champion and challenger, lineage')
      .argument('<id>', 'job id')
      .option('--wait', 'wait until the job ends, printing progress')
      .option('--timeout <sec>', 'with --wait: give up waiting after this long', parseSec, 3600)
      .option('--json', 'print JSON'),
  ).action(
    async (
      id: string,
      opts: CloudCallOptions & { wait?: boolean; timeout: number; json?: boolean },
    ) => {
      const api = await retrainApi(opts);
      const job = opts.wait ? await waitFor(api, id, opts.timeout) : await api.getRetrainJob(id);
      console.log(opts.json ? JSON.stringify(job) : formatJob(job));
    },
  );

  withCloudCall(
    retrain
      .command('cancel')
      .description('cancel a queued or running job (nothing is registered)')
      .argument('<id>', 'job id')
      .option('--json', 'print JSON'),
  ).action(async (id: string, opts: CloudCallOptions & { json?: boolean }) => {
    const job = await (await retrainApi(opts)).cancelRetrainJob(id);
    console.log(opts.json ? JSON.stringify(job) : `job ${job.id}: ${job.state}`);
  });

  const dataset = retrain
    .command('dataset')
    .description(
      'training datasets: the data a model was trained on, which retraining starts from',
    );
  withCloudCall(
    dataset
      .command('push')
      .description(
        'upload a labelled image folder (as for `linesight model train`) and register it; its fingerprint equals the one models trained on it record',
      )
      .requiredOption('--data <dir>', 'dataset folder: <class>/*.jpg')
      .option('--good <class>', 'name of the defect-free class', 'good')
      .option('--name <name>', 'a name to show (default: the folder)')
      .option('--json', 'print JSON'),
  ).action(
    async (
      opts: CloudCallOptions & { data: string; good: string; name?: string; json?: boolean },
    ) => {
      const api = await retrainApi(opts);
      const folder = await readDatasetVerbose(opts.data, opts.good);
      const items: { sha256: string; label: 'good' | 'defect'; className: string }[] = [];
      const seen = new Set<string>();
      let uploaded = 0;
      for (const [i, s] of folder.samples.entries()) {
        const sha256 = sha256Hex(s.image);
        // The trainer counts a repeated image twice, the dataset once; a folder rarely repeats.
        if (seen.has(sha256)) continue;
        seen.add(sha256);
        if (await api.putTrainingImage(sha256, s.image)) uploaded++;
        items.push({ sha256, label: s.label, className: s.className });
        progressLine(`uploading ${i + 1}/${folder.samples.length}`);
      }
      progressLine('');
      const registered = await api.registerTrainingDataset({ name: opts.name ?? opts.data, items });
      if (opts.json) console.log(JSON.stringify({ ...registered, uploaded }));
      else
        console.log(
          `dataset ${registered.fingerprint} (${registered.count} images: ${registered.good} good, ${registered.defect} defect; ${uploaded} uploaded now)`,
        );
    },
  );
  withCloudCall(
    dataset
      .command('list')
      .description('list registered training datasets')
      .option('--json', 'print JSON'),
  ).action(async (opts: CloudCallOptions & { json?: boolean }) => {
    const list = await (await retrainApi(opts)).listTrainingDatasets();
    if (opts.json) console.log(JSON.stringify({ datasets: list }));
    else if (list.length === 0) console.log('no datasets');
    else
      for (const d of list)
        console.log(
          `${d.fingerprint}  ${d.name}  ${d.count} images (${d.good} good, ${d.defect} defect)  ${d.source}  ${d.createdAt}`,
        );
  });

  return retrain;
}
