import { describe, expect, it } from 'vitest';
import { formatJob, formatJobLine, retrainCommand } from './retrain-command.ts';
import type { RetrainJobView } from '@linesight/api-client';

const metrics = (auroc: number) => ({
  auroc,
  ap: auroc,
  f1: 0.5,
  precision: 0.5,
  recall: 0.5,
  threshold: 1,
  images: 15,
});

const job: RetrainJobView = {
  id: 'j1',
  model: 'tile',
  parentVersion: '1.0.0',
  state: 'registered',
  trigger: 'alert',
  triggerDetail: 'alert 3: line-1 brightness psi 0.400',
  actor: 'retrain:alert',
  options: { rollout: 'shadow', epochs: 30, seed: 1, members: 1 },
  createdAt: '2026-01-01T00:00:00.000Z',
  startedAt: '2026-01-01T00:00:01.000Z',
  finishedAt: '2026-01-01T00:04:00.000Z',
  progress: { step: 'register', done: 1, total: 1 },
  result: {
    championVersion: '1.0.0',
    candidateVersion: '1.1.0',
    metric: 'auroc',
    minImprovement: 0.02,
    champion: metrics(0.3),
    challenger: metrics(0.86),
    improvement: 0.56,
    parentDatasetFingerprint: 'a'.repeat(64),
    datasetFingerprint: 'b'.repeat(64),
    labels: { train: [1, 2, 3], holdout: [4, 5] },
    counts: { parent: 100, labelledTrain: 3, holdoutGood: 1, holdoutDefect: 1, duplicates: 0 },
    trainingMs: 228_000,
    rolloutId: 'r1',
    rolloutError: null,
  },
  error: null,
};

describe('linesight retrain', () => {
  it('has start, list, show, cancel and dataset push/list, each with help', () => {
    const cmd = retrainCommand();
    expect(cmd.commands.map((c) => c.name())).toEqual([
      'start',
      'list',
      'show',
      'cancel',
      'dataset',
    ]);
    const start = cmd.commands.find((c) => c.name() === 'start');
    const help = start?.helpInformation() ?? '';
    for (const flag of ['--parent', '--rollout', '--wait', '--json', '--cloud', '--token'])
      expect(help).toContain(flag);
    const dataset = cmd.commands.find((c) => c.name() === 'dataset');
    expect(dataset?.commands.map((c) => c.name())).toEqual(['push', 'list']);
  });

  it('shows a job with both models’ metrics and the lineage', () => {
    const text = formatJob(job);
    expect(text).toContain('job j1: registered');
    expect(text).toContain('trigger alert (alert 3: line-1 brightness psi 0.400)');
    expect(text).toMatch(/champion\s+1\.0\.0: auroc 0\.3000/);
    expect(text).toMatch(/challenger 1\.1\.0: auroc 0\.8600/);
    expect(text).toContain('+ 3 labelled samples');
    expect(text).toContain('rollout r1');
    expect(formatJobLine(job)).toBe(
      'j1  tile@1.0.0  registered  alert  2026-01-01T00:00:00.000Z  -> tile@1.1.0',
    );
    expect(
      formatJobLine({
        ...job,
        state: 'running',
        result: null,
        progress: { step: 'fit', done: 2, total: 9, epoch: 2, epochs: 9 },
      }),
    ).toContain('fit 2/9 epoch 2/9');
  });
});
