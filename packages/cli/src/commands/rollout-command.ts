import { Command, InvalidArgumentError } from 'commander';
import type {
  CloudApiClient,
  CreateRolloutInput,
  RolloutGateResult,
  RolloutSummary,
  RolloutWave,
} from '@linesight/api-client';
import { cloudClient, withCloudCall } from '../cloud-options.ts';
import { parsePositive } from '../options.ts';

interface CloudOptions {
  cloud?: string;
  token?: string;
  dataDir: string;
  json?: boolean;
}

/** Parses `1,10,50,100` into cumulative wave percents. */
export function parseWavePercents(value: string): number[] {
  const percents = value.split(',').map((p) => Number(p.trim()));
  if (percents.length === 0 || percents.some((p) => !(p > 0 && p <= 100)))
    throw new InvalidArgumentError(
      'expected comma-separated percents in (0, 100], e.g. 1,10,50,100',
    );
  return percents;
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected seconds, at least 0');
  return n;
}

/** Splits `key=value` at its first `=`; null when there is no key before it. */
function parseDeadlineAction(value: string): 'fail' | 'pause' {
  if (value === 'fail' || value === 'pause') return value;
  throw new InvalidArgumentError('expected fail or pause');
}

function splitPair(text: string): [string, string] | null {
  const eq = text.indexOf('=');
  return eq < 1 ? null : [text.slice(0, eq), text.slice(eq + 1)];
}

function parseLabels(values: string[] | undefined): Record<string, string> | undefined {
  if (values === undefined || values.length === 0) return undefined;
  return Object.fromEntries(
    values.map((l) => {
      const pair = splitPair(l);
      if (pair === null) throw new InvalidArgumentError(`label "${l}" must be key=value`);
      return pair;
    }),
  );
}

type GateLimitsInput = NonNullable<CreateRolloutInput['gates']>;

/** The gate limits `--gate` accepts (docs/rollouts.md describes each). */
export const GATE_KEYS: readonly (keyof GateLimitsInput)[] = [
  'maxErrorRate',
  'maxP99LatencyRatio',
  'maxP50LatencyRatio',
  'minLatencyIncreaseMs',
  'maxDefectRateChange',
  'maxRefusedOrCrashed',
];

/** Parses `--gate maxP99LatencyRatio=1.5 --gate maxRefusedOrCrashed=1` into gate limits. */
export function parseGates(values: string[] | undefined): GateLimitsInput | undefined {
  if (values === undefined || values.length === 0) return undefined;
  const gates: GateLimitsInput = {};
  for (const v of values) {
    const [key, limit] = splitPair(v) ?? ['', ''];
    if (!(GATE_KEYS as readonly string[]).includes(key))
      throw new InvalidArgumentError(
        `gate "${v}" must be KEY=NUMBER, KEY one of ${GATE_KEYS.join(', ')}`,
      );
    const n = Number(limit);
    if (limit.trim() === '' || !Number.isFinite(n) || n < 0)
      throw new InvalidArgumentError(`gate "${v}": the limit must be a number, at least 0`);
    gates[key as keyof GateLimitsInput] = n;
  }
  return gates;
}

async function client(opts: CloudOptions): Promise<CloudApiClient> {
  return (await cloudClient(opts)).api;
}

/** What a gate says to a person: passed, failed, or not evaluated (and why). */
function gateText(g: RolloutGateResult): string {
  if (g.detail.startsWith('not evaluated')) return `${g.gate} ${g.detail}`;
  return `${g.gate} ${g.passed ? 'passed' : 'failed'}${g.value === null ? '' : ` (${g.value}, limit ${g.limit})`}: ${g.detail}`;
}

/** A wave's state as a person should read it: a wave without devices is `empty`, not `passed`. */
function waveState(w: RolloutWave): string {
  return w.size === 0 ? 'empty' : w.state;
}

/** A rollout as a few lines for a person, with one row per device. */
export function formatRollout(r: RolloutSummary): string {
  const lines = [
    `rollout ${r.id}: ${r.modelName}@${r.modelVersion} ${r.state}${r.reason ? ` (${r.reason})` : ''}`,
    `devices: ${Object.entries(r.counts)
      .filter(([, n]) => n > 0)
      .map(([s, n]) => `${n} ${s}`)
      .join(', ')}`,
  ];
  if (r.publish.published < r.publish.toPublish)
    lines.push(
      `desired state published to ${r.publish.published} of ${r.publish.toPublish} devices so far`,
    );
  if (r.spec !== null && !r.spec.direct)
    lines.push(
      `gates: ${Object.entries(r.spec.gates)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  if (r.spec !== null)
    lines.push(
      `deadline: ${r.spec.waveTimeoutSec} s per phase, then ${r.spec.onDeadline ?? 'fail'}`,
    );
  if (r.shadow) {
    lines.push(`shadow: ${r.shadow.state}`);
    for (const g of r.shadow.gates) lines.push(`  ${gateText(g)}`);
  }
  for (const w of r.waves) {
    const failed = w.gates.filter((g) => !g.passed).map((g) => `${g.gate}: ${g.detail}`);
    lines.push(
      `wave ${w.index + 1} (${w.percent}%, ${w.size} devices, soak ${w.soakSec}s): ${waveState(w)}${failed.length ? ` - ${failed.join('; ')}` : ''}`,
    );
    for (const g of w.gates) lines.push(`  ${gateText(g)}`);
    if (w.late !== undefined && w.late.length > 0)
      lines.push(
        `  late at the deadline: ${w.late.length} device${w.late.length === 1 ? '' : 's'}`,
      );
  }
  const devices = r.devices ?? [];
  if (devices.length > 0) {
    lines.push('device  wave  state  running  online  note');
    for (const d of devices)
      lines.push(
        [
          d.id,
          d.wave,
          d.state,
          d.running ?? '-',
          d.online ? 'online' : 'offline',
          d.error ?? (d.late !== undefined ? `late: ${d.late}` : ''),
        ]
          .join('  ')
          .trimEnd(),
      );
  }
  return lines.join('\n');
}

function print(r: RolloutSummary, json: boolean | undefined): void {
  console.log(json ? JSON.stringify(r) : formatRollout(r));
}

function withCloudOptions(cmd: Command): Command {
  return withCloudCall(cmd).option('--json', 'print the rollout as JSON');
}

/** `linesight rollout`: create, follow and steer staged rollouts. */
export function rolloutCommand(): Command {
  const rollout = new Command('rollout').description('roll model versions out to devices in waves');
  withCloudOptions(
    rollout
      .command('create')
      .description(
        'start a rollout; with --waves, --soak, --gate or --shadow it is staged and gated',
      )
      .requiredOption('--model <name>', 'model name')
      .requiredOption('--version <v>', 'model version')
      .option('--devices <ids>', 'comma-separated device ids (default all)', (v) =>
        v
          .split(',')
          .map((x) => x.trim())
          .filter((x) => x !== ''),
      )
      .option('--label <key=value...>', 'only devices with these labels')
      .option(
        '--gate <key=value...>',
        `a gate limit, e.g. maxP99LatencyRatio=1.5 (${GATE_KEYS.join(', ')}; see docs/rollouts.md)`,
      )
      .option('--waves <percents>', 'cumulative wave percents, e.g. 1,10,50,100', parseWavePercents)
      .option('--soak <sec>', 'soak time of each wave before its gates', parseSeconds)
      .option('--shadow <sec>', 'run the version in the shadow slot this long first', parsePositive)
      .option(
        '--deadline <sec>',
        'deadline of each phase that waits on devices (default 600)',
        parsePositive,
      )
      .option(
        '--on-deadline <action>',
        'what a missed deadline does: fail (the wave; default) or pause (the rollout)',
        parseDeadlineAction,
      ),
  ).action(
    async (
      opts: CloudOptions & {
        model: string;
        version: string;
        devices?: string[];
        label?: string[];
        gate?: string[];
        waves?: number[];
        soak?: number;
        shadow?: number;
        deadline?: number;
        onDeadline?: 'fail' | 'pause';
      },
    ) => {
      const labels = parseLabels(opts.label);
      const gates = parseGates(opts.gate);
      const staged = opts.waves !== undefined || opts.soak !== undefined || gates !== undefined;
      const input: CreateRolloutInput = {
        model: opts.model,
        version: opts.version,
        ...(opts.devices !== undefined || labels !== undefined
          ? {
              selector: {
                ...(opts.devices ? { ids: opts.devices } : {}),
                ...(labels ? { labels } : {}),
              },
            }
          : {}),
        ...(staged
          ? {
              waves: (opts.waves ?? [100]).map((percent) => ({ percent, soakSec: opts.soak ?? 0 })),
            }
          : {}),
        ...(gates !== undefined ? { gates } : {}),
        ...(opts.shadow !== undefined ? { shadow: { durationSec: opts.shadow } } : {}),
        ...(opts.deadline !== undefined ? { waveTimeoutSec: opts.deadline } : {}),
        ...(opts.onDeadline !== undefined ? { onDeadline: opts.onDeadline } : {}),
      };
      print(await (await client(opts)).createRollout(input), opts.json);
    },
  );
  withCloudOptions(
    rollout
      .command('list')
      .description(
        "list rollouts, newest first, with counts (each device's progress: `rollout status <id>`)",
      ),
  ).action(async (opts: CloudOptions) => {
    const list = await (await client(opts)).listRollouts({ devices: false });
    if (opts.json) console.log(JSON.stringify(list));
    else if (list.length === 0) console.log('no rollouts');
    else
      for (const r of list)
        console.log(
          `${r.id}  ${r.modelName}@${r.modelVersion}  ${r.state}  ${r.deviceIds.length} devices  ${r.createdAt} by ${r.createdBy}`,
        );
  });
  withCloudOptions(
    rollout
      .command('status')
      .description("show a rollout's waves and devices")
      .argument('<id>', 'rollout id'),
  ).action(async (id: string, opts: CloudOptions) => {
    print(await (await client(opts)).getRollout(id), opts.json);
  });
  for (const [name, description] of [
    ['pause', 'hold a rollout: no new wave starts'],
    ['resume', 'continue a paused rollout'],
    ['abort', 'stop a rollout and send moved devices back to their previous version'],
  ] as const) {
    withCloudOptions(
      rollout.command(name).description(description).argument('<id>', 'rollout id'),
    ).action(async (id: string, opts: CloudOptions) => {
      const api = await client(opts);
      const r =
        name === 'pause'
          ? await api.pauseRollout(id)
          : name === 'resume'
            ? await api.resumeRollout(id)
            : await api.abortRollout(id);
      print(r, opts.json);
    });
  }
  return rollout;
}
