// A device's stored history: telemetry charts over a chosen range, the model versions it ran, and its timeline.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { usePoll } from './hooks.js';
import { LineChart } from './line-chart.js';
import { html, Loading, ErrorBox, Empty, Badge, when, ago } from './ui.js';

export const RANGES = [
  [1, 'last hour'],
  [6, 'last 6 hours'],
  [24, 'last 24 hours'],
  [168, 'last 7 days'],
];

/** A range picker (hours). */
export function RangePicker({ hours, onChange, label = 'Range' }) {
  return html`<label
    >${label}
    <select value=${hours} onChange=${(e) => onChange(Number(e.currentTarget.value))}>
      ${RANGES.map(([h, text]) => html`<option value=${h}>${text}</option>`)}
    </select></label
  >`;
}

/** Stored telemetry of a device in time buckets; refreshed while the page is open. */
export function useDeviceSeries(id, hours, points = 240) {
  return usePoll(
    () =>
      api(`/v1/dashboard/devices/${encodeURIComponent(id)}/series?hours=${hours}&points=${points}`),
    15_000,
    () => true,
    [id, hours, points],
  );
}

const versionName = (v) => (v.version === null ? 'no model' : `${v.name} ${v.version}`);
const pct = (v) => (v === null ? null : v * 100);

/** The versions the device ran, as a bar of their spans over the time its windows cover, with frame counts. */
function VersionBar({ versions }) {
  const fromMs = Date.parse(versions[0]?.from ?? 0);
  const spanMs = Math.max(1, Date.parse(versions[versions.length - 1]?.to ?? 0) - fromMs);
  const colours = new Map();
  const palette = ['#2563eb', '#059669', '#9333ea', '#ea580c', '#0891b2', '#be123c'];
  for (const v of versions) {
    const key = versionName(v);
    if (!colours.has(key)) colours.set(key, palette[colours.size % palette.length]);
  }
  return html`<div class="version-bar" data-testid="version-bar">
    <div class="bar" aria-hidden="true">
      ${versions.map((v) => {
        const left = Math.max(0, (Date.parse(v.from) - fromMs) / spanMs);
        const right = Math.min(1, (Date.parse(v.to) - fromMs) / spanMs);
        return html`<span
          style=${`left:${left * 100}%;width:${Math.max(0.4, (right - left) * 100)}%;background:${colours.get(versionName(v))}`}
          title=${`${versionName(v)}: ${when(v.from)} – ${when(v.to)}`}
        ></span>`;
      })}
    </div>
    <ol class="version-list">
      ${versions.map(
        (v) =>
          html`<li data-version=${v.version ?? ''}>
            <span class="swatch" style=${`background:${colours.get(versionName(v))}`}></span>
            <strong>${versionName(v)}</strong>
            <span class="muted small">
              ${` ${when(v.from)} – ${when(v.to)}, ${v.frames.toLocaleString()} frames`}
            </span>
          </li>`,
      )}
    </ol>
  </div>`;
}

/** Frames/s, latency and defect-rate charts over the stored windows, with the versions run. */
export function DeviceHistory({ id }) {
  const [hours, setHours] = useState(24);
  const series = useDeviceSeries(id, hours);
  const s = series.data;
  const picker = html`<div class="filters">
    <${RangePicker} hours=${hours} onChange=${setHours} />
    ${
      s
        ? html`<span class="count"
            >${`${s.windows} telemetry windows${s.truncated ? ' (the newest part of the range)' : ''}, ${
              s.bucketSec >= 60 ? `${s.bucketSec / 60} min` : `${s.bucketSec} s`
            } a point`}</span
          >`
        : null
    }
  </div>`;
  if (series.loading && !s) return html`${picker}<${Loading} what="telemetry history" />`;
  if (!s) return html`${picker}<${ErrorBox} error=${series.error} retry=${series.reload} />`;
  if (s.points.length === 0)
    return html`${picker}<${Empty}
        >No telemetry windows from ${id} in this range. The device sends one per window (a minute by
        default) while it runs, and the cloud keeps them for the retention period.<//
      >`;
  const times = s.points.map((p) => Date.parse(p.at) / 1000);
  return html`${picker}
    ${series.error ? html`<${ErrorBox} error=${series.error} retry=${series.reload} />` : null}
    <${VersionBar} versions=${s.versions} />
    <div class="charts" data-testid="device-charts">
      <${LineChart}
        key=${`fps-${id}`}
        testid="chart-fps"
        title="Frames/s"
        times=${times}
        series=${[{ label: 'frames/s', values: s.points.map((p) => p.fps) }]}
      />
      <${LineChart}
        key=${`latency-${id}`}
        testid="chart-latency"
        title="Inference latency (ms)"
        digits=${0}
        times=${times}
        series=${[
          { label: 'p50', values: s.points.map((p) => p.p50Ms) },
          { label: 'p99', values: s.points.map((p) => p.p99Ms) },
        ]}
      />
      <${LineChart}
        key=${`defects-${id}`}
        testid="chart-defects"
        title="Defect and unknown rate (%)"
        digits=${1}
        times=${times}
        series=${[
          { label: 'defect %', values: s.points.map((p) => pct(p.defectRate)) },
          { label: 'unknown %', values: s.points.map((p) => pct(p.unknownRate)) },
        ]}
      />
    </div>`;
}

const KIND_BADGE = { model: 'ok', event: 'muted', alert: 'warn', rollout: 'muted', audit: 'off' };
const LEVEL_BADGE = { error: 'bad', warn: 'warn' };

function TimelineEntry({ e, id }) {
  const link = e.ref?.rollout
    ? html` <a href=${`#/rollouts/${encodeURIComponent(e.ref.rollout)}`}>rollout →</a>`
    : e.ref?.alert !== undefined
      ? html` <a href=${`#/drift/${encodeURIComponent(id)}`}>drift charts →</a>`
      : null;
  return html`<li data-kind=${e.kind} data-level=${e.level}>
    <time datetime=${e.at} title=${when(e.at)}>${ago(e.at)}</time>
    <span><${Badge} kind=${LEVEL_BADGE[e.level] ?? KIND_BADGE[e.kind]}>${e.kind}<//></span>
    <span>
      <strong>${e.title}</strong>
      ${e.detail ? html`<span class="muted small">${` ${e.detail}`}</span>` : null}${link}
    </span>
  </li>`;
}

/** Model versions, events, alerts, rollouts and changes, newest first. */
export function DeviceTimeline({ id }) {
  const [hours, setHours] = useState(168);
  const timeline = usePoll(
    () => api(`/v1/dashboard/devices/${encodeURIComponent(id)}/timeline?hours=${hours}&limit=200`),
    30_000,
    () => true,
    [id, hours],
  );
  const t = timeline.data;
  const picker = html`<div class="filters">
    <${RangePicker} hours=${hours} onChange=${setHours} label="Timeline range" />
  </div>`;
  if (timeline.loading && !t) return html`${picker}<${Loading} what="the timeline" />`;
  if (!t) return html`${picker}<${ErrorBox} error=${timeline.error} retry=${timeline.reload} />`;
  return html`${picker}
  ${timeline.error ? html`<${ErrorBox} error=${timeline.error} retry=${timeline.reload} />` : null}
  ${
    t.entries.length === 0
      ? html`<${Empty}>Nothing happened to ${id} in this range.<//>`
      : html`<ol
          class="timeline"
          data-testid="device-timeline"
          tabindex="0"
          aria-label=${`Timeline of ${id}, newest first`}
        >
          ${t.entries.map((e, i) => html`<${TimelineEntry} key=${`${e.at}-${i}`} e=${e} id=${id} />`)}
        </ol>`
  }
  ${t.omitted > 0 ? html`<p class="muted small">${t.omitted} older entries not shown.</p>` : null}`;
}
