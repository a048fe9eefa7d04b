import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import type {
  ReviewFilter,
  ReviewLabel,
  ReviewQualityCounts,
  ReviewQueuePage,
  ReviewVersionQuality,
} from '@linesight/api-client';
import { cloudClient, withCloudCall, type CloudCallOptions } from '../cloud-options.ts';
import { parsePositiveInt } from '../options.ts';

interface FilterOptions extends CloudCallOptions {
  device?: string;
  model?: string;
  version?: string;
  from?: string;
  to?: string;
  json?: boolean;
}

/** An ISO 8601 time or a date (YYYY-MM-DD, taken as midnight UTC). */
export function parseTime(value: string): string {
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  if (!Number.isFinite(ms))
    throw new InvalidArgumentError('expected an ISO time, e.g. 2026-03-01 or 2026-03-01T08:00:00Z');
  return new Date(ms).toISOString();
}

function parseOffset(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InvalidArgumentError('expected an integer, at least 0');
  return n;
}

const REASONS = ['uncertain', 'defect', 'random', 'unknown'] as const;

function parseReason(value: string): (typeof REASONS)[number] {
  const reason = REASONS.find((r) => r === value);
  if (reason !== undefined) return reason;
  throw new InvalidArgumentError('expected uncertain, defect, random or unknown');
}

function parseLabel(value: string): 'good' | 'defect' {
  if (value === 'good' || value === 'defect') return value;
  throw new InvalidArgumentError('expected good or defect');
}

function withFilters(cmd: Command): Command {
  return withCloudCall(cmd)
    .option('--device <id>', 'only this device')
    .option('--model <name>', 'only this model')
    .option('--version <v>', 'only this model version')
    .option('--from <time>', 'captured at or after (ISO time or YYYY-MM-DD, UTC)', parseTime)
    .option('--to <time>', 'captured before (ISO time or YYYY-MM-DD, UTC)', parseTime)
    .option('--json', 'print JSON');
}

function filterOf(opts: FilterOptions): ReviewFilter {
  return {
    ...(opts.device !== undefined ? { deviceId: opts.device } : {}),
    ...(opts.model !== undefined ? { model: opts.model } : {}),
    ...(opts.version !== undefined ? { version: opts.version } : {}),
    ...(opts.from !== undefined ? { from: opts.from } : {}),
    ...(opts.to !== undefined ? { to: opts.to } : {}),
  };
}

function num(value: number | null, digits = 3): string {
  return value === null ? '-' : value.toFixed(digits);
}

/** A queue page as one line per sample. */
export function formatQueue(page: ReviewQueuePage): string {
  if (page.items.length === 0) return `no samples (${page.total} match)`;
  const lines = [
    `${page.offset + 1}-${page.offset + page.items.length} of ${page.total}`,
    'device  sample  class  model  score  threshold  distance  verdict  captured  label',
  ];
  for (const i of page.items) {
    const s = i.sample;
    lines.push(
      [
        s.deviceId,
        s.id,
        s.class,
        s.modelName === null ? '-' : `${s.modelName}@${s.modelVersion ?? '?'}`,
        num(s.score),
        num(i.threshold),
        num(i.distance),
        s.verdict,
        s.at,
        i.label === null ? '-' : labelText(i.label),
      ].join('  '),
    );
  }
  return lines.join('\n');
}

function labelText(l: ReviewLabel): string {
  return `${l.label}${l.defectClass === null ? '' : `/${l.defectClass}`} by ${l.reviewer} at ${l.at}`;
}

function countsText(c: ReviewQualityCounts): string {
  return `precision ${num(c.precision)}  recall ${num(c.recall)}  (${c.labelled} labelled: tp ${c.tp} fp ${c.fp} fn ${c.fn} tn ${c.tn}${c.unscored > 0 ? ` unscored ${c.unscored}` : ''})`;
}

/** Quality per model version: overall, per device, per day. */
export function formatQuality(versions: readonly ReviewVersionQuality[]): string {
  if (versions.length === 0) return 'no labelled samples';
  const lines: string[] = [];
  for (const v of versions) {
    lines.push(
      `${v.modelName === null ? '(no model)' : `${v.modelName}@${v.modelVersion ?? '?'}`}: ${countsText(v.total)}`,
    );
    for (const d of v.daily) lines.push(`  ${d.day.slice(0, 10)}  ${countsText(d)}`);
    for (const d of v.devices) lines.push(`  device ${d.deviceId}: ${countsText(d.total)}`);
  }
  return lines.join('\n');
}

/** `linesight review`: the queue of sampled images, labels and the quality they give. */
export function reviewCommand(): Command {
  const review = new Command('review').description(
    'review sampled images: the queue, labels (good or defect) and model quality from labels',
  );
  withFilters(
    review
      .command('queue')
      .description(
        'samples waiting for a label: most uncertain first (score closest to the threshold), then defects, then random',
      )
      .option('--reason <class>', 'only uncertain, defect, random or unknown samples', parseReason)
      .option('--labelled', 'list labelled samples instead, newest label first')
      .option('--limit <n>', 'samples per page (at most 500)', parsePositiveInt, 50)
      .option('--offset <n>', 'skip this many', parseOffset, 0),
  ).action(
    async (
      opts: FilterOptions & {
        reason?: (typeof REASONS)[number];
        labelled?: boolean;
        limit: number;
        offset: number;
      },
    ) => {
      const { api } = await cloudClient(opts);
      const page = await api.reviewQueue({
        ...filterOf(opts),
        ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
        ...(opts.labelled === true ? { labelled: true } : {}),
        limit: opts.limit,
        offset: opts.offset,
      });
      console.log(opts.json ? JSON.stringify(page) : formatQueue(page));
    },
  );
  withCloudCall(
    review
      .command('label')
      .description('label a sample; labelling it again corrects the label and keeps the history')
      .argument('<device>', 'device id')
      .argument('<sample>', 'sample id <boot>-<seq>')
      .argument('<label>', 'good or defect', parseLabel)
      .option('--class <name>', 'defect class, e.g. scratch (label defect only)')
      .option('--note <text>', 'free-text note')
      .option('--reviewer <name>', 'who reviewed (default: the actor of the token)')
      .option('--json', 'print JSON'),
  ).action(
    async (
      device: string,
      sample: string,
      label: 'good' | 'defect',
      opts: CloudCallOptions & { class?: string; note?: string; reviewer?: string; json?: boolean },
    ) => {
      const { api } = await cloudClient(opts);
      const entry = await api.labelSample(device, sample, {
        label,
        ...(opts.class !== undefined ? { defectClass: opts.class } : {}),
        ...(opts.note !== undefined ? { note: opts.note } : {}),
        ...(opts.reviewer !== undefined ? { reviewer: opts.reviewer } : {}),
      });
      console.log(opts.json ? JSON.stringify(entry) : `${device} ${sample}: ${labelText(entry)}`);
    },
  );
  withCloudCall(
    review
      .command('history')
      .description("a sample's labels, oldest first; the last is current")
      .argument('<device>', 'device id')
      .argument('<sample>', 'sample id <boot>-<seq>')
      .option('--json', 'print JSON'),
  ).action(async (device: string, sample: string, opts: CloudCallOptions & { json?: boolean }) => {
    const { api } = await cloudClient(opts);
    const h = await api.sampleLabels(device, sample);
    if (opts.json) console.log(JSON.stringify(h));
    else if (h.history.length === 0) console.log(`${device} ${sample}: no labels`);
    else
      for (const [i, l] of h.history.entries())
        console.log(
          `${labelText(l)}${l.note === null ? '' : `  "${l.note}"`}${i === h.history.length - 1 ? '  (current)' : ''}`,
        );
  });
  withFilters(
    review
      .command('quality')
      .description(
        'precision and recall of each model version on labelled samples, per day and device',
      ),
  ).action(async (opts: FilterOptions) => {
    const { api } = await cloudClient(opts);
    const q = await api.reviewQuality(filterOf(opts));
    console.log(opts.json ? JSON.stringify(q) : formatQuality(q.versions));
  });
  withFilters(
    review
      .command('export')
      .description(
        'the labelled samples as a dataset manifest (image keys, sha256, labels) with its fingerprint',
      )
      .option('--as-of <time>', 'only labels given before this time', parseTime)
      .option('--urls', 'add a short-lived download URL to each image')
      .option('--out <file>', 'write the manifest to this file instead of stdout'),
  ).action(async (opts: FilterOptions & { asOf?: string; urls?: boolean; out?: string }) => {
    const { api } = await cloudClient(opts);
    const manifest = await api.reviewExport({
      ...filterOf(opts),
      ...(opts.asOf !== undefined ? { asOf: opts.asOf } : {}),
      ...(opts.urls === true ? { urls: true } : {}),
    });
    const summary = `${manifest.count} labelled samples (${manifest.counts.good} good, ${manifest.counts.defect} defect), fingerprint ${manifest.fingerprint}`;
    if (opts.out !== undefined) {
      await writeFile(opts.out, `${JSON.stringify(manifest, null, 2)}\n`);
      console.log(
        opts.json
          ? JSON.stringify({ out: opts.out, ...manifest, items: undefined })
          : `${summary} -> ${opts.out}`,
      );
    } else console.log(opts.json ? JSON.stringify(manifest) : JSON.stringify(manifest, null, 2));
  });
  return review;
}
