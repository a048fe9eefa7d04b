// Drift and alerts: open alerts first, then a device's PSI, KS and defect-rate shift over time against the alert levels.
import { useState } from 'preact/hooks';
import { api } from './api.js';
import { usePoll, useResource } from './hooks.js';
import { LineChart } from './line-chart.js';
import { AlertTable } from './alert-table.js';
import { useDeviceSeries } from './device-history.js';
import { html, Loading, ErrorBox, Empty, Badge, ago } from './ui.js';

const FEATURES = ['brightness', 'contrast', 'sharpness', 'score'];
const RANGES = [
  [1, 'last hour'],
  [6, 'last 6 hours'],
  [24, 'last 24 hours'],
  [168, 'last 7 days'],
];

const LEVEL_ORDER = { alert: 0, warning: 1 };

/** Open alerts first (alert before warning, newest first), then resolved ones, newest first. */
function ordered(alerts) {
  return [...alerts].sort((a, b) => {
    if (a.state !== b.state) return a.state === 'open' ? -1 : 1;
    if (a.state === 'open' && a.level !== b.level)
      return LEVEL_ORDER[a.level] - LEVEL_ORDER[b.level];
    return Date.parse(b.openedAt) - Date.parse(a.openedAt);
  });
}

function LastRun({ session, onRan }) {
  const status = usePoll(
    () => api('/v1/drift/status'),
    15_000,
    () => true,
    [],
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      await api('/v1/drift/runs', { method: 'POST' });
      status.reload();
      onRan();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const last = status.data?.lastRun;
  return html`<p class="totals" data-testid="drift-last-run">
      ${
        last
          ? html`${'Last check '}<strong>${ago(last.startedAt)}</strong>${`: ${last.devices} devices, ${last.windows} windows, ${last.findings} findings`}`
          : status.loading
            ? 'Reading the drift job…'
            : 'The drift job has not run since the cloud started.'
      }
    </p>
    ${
      session.canWrite
        ? html`<button type="button" class="quiet" disabled=${busy} onClick=${run}>
            ${busy ? 'Checking…' : 'Check drift now'}
          </button>`
        : null
    }
    ${error ? html`<${ErrorBox} error=${error} />` : null}`;
}

/** Chart data of one statistic: a series per feature, null where not judged. */
function statisticSeries(points, statistic) {
  return FEATURES.map((feature) => ({
    label: feature,
    values: points.map((p) => p.values[`${feature}/${statistic}`]?.value ?? null),
  })).filter((s) => s.values.some((v) => v !== null));
}

function levelLines(levels) {
  return [
    { label: `warning ${levels.warning}`, value: levels.warning, kind: 'warning' },
    { label: `alert ${levels.alert}`, value: levels.alert, kind: 'alert' },
  ];
}

/** Frozen, dark and clipped shares of a device's frames over time, against the camera alert levels. */
function CameraCharts({ deviceId, hours, levels }) {
  const series = useDeviceSeries(deviceId, hours, 120);
  const s = series.data;
  if (series.loading && !s) return html`<${Loading} what=${`camera health of ${deviceId}`} />`;
  if (!s) return html`<${ErrorBox} error=${series.error} retry=${series.reload} />`;
  const points = s.points.filter((p) => p.camera !== null);
  if (points.length === 0)
    return html`<${Empty}
      >No camera health from ${deviceId} in this range (its telemetry windows carry none).<//
    >`;
  const times = points.map((p) => Date.parse(p.at) / 1000);
  const share = (key) => points.map((p) => Math.round(p.camera[key] * 1e6) / 1e4);
  // Shares as percentages, without float noise in the legend (0.9 * 100 is 90.00000000000001).
  const pc = (v) => Math.round(v * 1e6) / 1e4;
  const lines = (l, prefix = '') =>
    l
      ? [
          { label: `${prefix}warning ${pc(l.warning)}`, value: pc(l.warning), kind: 'warning' },
          { label: `${prefix}alert ${pc(l.alert)}`, value: pc(l.alert), kind: 'alert' },
        ]
      : [];
  const f = levels?.frozenShare;
  const d = levels?.darkShare;
  // One pair of lines when frozen and dark frames alert at the same shares (the default).
  const frameLevels =
    f && d && (f.warning !== d.warning || f.alert !== d.alert)
      ? [...lines(f, 'frozen '), ...lines(d, 'dark ')]
      : lines(f);
  return html`<div class="charts" data-testid="camera-charts">
      <${LineChart}
        key=${`frozen-${deviceId}`}
        testid="chart-camera-frames"
        title="Frozen and dark frames (%)"
        digits=${0}
        times=${times}
        series=${[
          { label: 'frozen', values: share('frozenShare') },
          { label: 'dark', values: share('darkShare') },
        ]}
        levels=${frameLevels}
      />
      <${LineChart}
        key=${`clipped-${deviceId}`}
        testid="chart-camera-clipped"
        title="Clipped pixels (%)"
        digits=${1}
        times=${times}
        series=${[{ label: 'clipped', values: share('clippedShare') }]}
        levels=${lines(levels?.clippedShare)}
      />
      <${LineChart}
        key=${`camera-frames-${deviceId}`}
        testid="chart-camera-count"
        title="Frames seen by the camera"
        digits=${0}
        times=${times}
        series=${[{ label: 'frames', values: points.map((p) => p.camera.frames) }]}
      />
    </div>
    <p class="muted small">
      Frozen: identical to the frame before; dark: mean grey below 8; clipped: pixels at 250 or
      above or at 5 or below. Dashed lines: the levels camera alerts open at.
    </p>`;
}

function DriftCharts({ deviceId, picker }) {
  const [hours, setHours] = useState(24);
  const series = usePoll(
    () => api(`/v1/dashboard/drift/series?deviceId=${encodeURIComponent(deviceId)}&hours=${hours}`),
    20_000,
    () => true,
    [deviceId, hours],
  );
  const s = series.data;
  const range = html`<label
    >Range
    <select value=${hours} onChange=${(e) => setHours(Number(e.currentTarget.value))}>
      ${RANGES.map(([h, label]) => html`<option value=${h}>${label}</option>`)}
    </select></label
  >`;
  if (series.loading && !s)
    return html`<div class="filters">${picker} ${range}</div>
      <${Loading} what=${`drift of ${deviceId}`} />`;
  if (!s)
    return html`<div class="filters">${picker} ${range}</div>
      <${ErrorBox} error=${series.error} retry=${series.reload} />`;
  const judged = s.points.filter((p) => Object.keys(p.values).length > 0);
  const times = judged.map((p) => Date.parse(p.at) / 1000);
  const last = s.points[s.points.length - 1];
  const shift = [
    {
      label: 'defect rate',
      values: judged.map((p) => p.values['defectRate/shift']?.value ?? null),
    },
  ];
  return html`<div class="filters">
      ${picker} ${range}
      <span class="count">
        ${s.windows} windows; each point: the last ${Math.round(s.lookbackSec / 60)} min against the
        model's reference, at least ${s.minFrames} frames, significant at p below ${s.alpha}
      </span>
    </div>
    ${series.error ? html`<${ErrorBox} error=${series.error} retry=${series.reload} />` : null}
    ${
      judged.length === 0
        ? html`<${Empty}
            >${
              s.points.length === 0
                ? `No telemetry windows from ${deviceId} in this range.`
                : `Not judged yet: ${last?.skipped.slice(0, 3).join('; ') || 'no product statistics'}.`
            }<//
          >`
        : html`<div class="charts" data-testid="drift-charts">
            <${LineChart}
              key=${`psi-${deviceId}`}
              testid="chart-psi"
              title="PSI by feature"
              log=${true}
              times=${times}
              series=${statisticSeries(judged, 'psi')}
              levels=${levelLines(s.levels.psi)}
            />
            <${LineChart}
              key=${`ks-${deviceId}`}
              testid="chart-ks"
              title="KS distance by feature"
              times=${times}
              series=${statisticSeries(judged, 'ks')}
              levels=${levelLines(s.levels.ks)}
            />
            ${
              shift[0].values.some((v) => v !== null)
                ? html`<${LineChart}
                    key=${`shift-${deviceId}`}
                    testid="chart-shift"
                    title="Defect-rate shift"
                    times=${times}
                    series=${shift}
                    levels=${levelLines(s.levels.shift)}
                    digits=${3}
                  />`
                : null
            }
          </div>`
    }
    ${
      last && last.skipped.length > 0 && judged.length > 0
        ? html`<p class="muted small">Not judged at the last point: ${last.skipped.join('; ')}.</p>`
        : null
    }
    <h3 class="subhead">Camera health</h3>
    <${CameraCharts} deviceId=${deviceId} hours=${hours} levels=${s.levels.camera} />`;
}

export function DriftPage({ id, session }) {
  const alerts = usePoll(
    () => api('/v1/alerts?limit=500'),
    10_000,
    () => true,
    [],
  );
  const devices = useResource(() => api('/v1/devices'), []);
  const list = alerts.data ? ordered(alerts.data.alerts) : [];
  const open = list.filter((a) => a.state === 'open');
  const resolved = list.filter((a) => a.state !== 'open');
  const ids = [
    ...new Set([...open.map((a) => a.deviceId), ...(devices.data ?? []).map((d) => d.id)]),
  ];
  const selected = id ?? open[0]?.deviceId ?? ids[0] ?? null;

  return html`<section aria-labelledby="drift-title">
    <div class="page-head">
      <h1 id="drift-title">Drift and alerts</h1>
      <${LastRun} session=${session} onRan=${alerts.reload} />
    </div>
    <h2>
      Open alerts
      ${alerts.data ? html` <${Badge} kind=${open.length > 0 ? 'bad' : 'ok'}>${open.length}<//>` : null}
    </h2>
    ${alerts.error ? html`<${ErrorBox} error=${alerts.error} retry=${alerts.reload} />` : null}
    ${
      alerts.loading && !alerts.data
        ? html`<${Loading} what="alerts" />`
        : !alerts.data
          ? null
          : open.length === 0
            ? html`<${Empty}
                >No open alerts. The drift job compares each device's telemetry with its model's
                reference on a schedule; alerts open here when a statistic reaches its warning
                level.<//
              >`
            : html`<${AlertTable} alerts=${open} caption="Open alerts" />`
    }
    ${
      resolved.length > 0
        ? html`<details class="card">
            <summary>Resolved alerts (${resolved.length})</summary>
            <${AlertTable} alerts=${resolved.slice(0, 100)} caption="Resolved alerts" />
          </details>`
        : null
    }
    <h2 id="drift-device">Drift over time</h2>
    ${
      selected === null
        ? devices.loading
          ? html`<${Loading} what="devices" />`
          : html`<${Empty}>No devices yet: provision one and its drift shows here.<//>`
        : html`<${DriftCharts}
            key=${selected}
            deviceId=${selected}
            picker=${html`
              <label
                >Device
                <select
                  value=${selected}
                  onChange=${(e) => {
                    location.hash = `#/drift/${encodeURIComponent(e.currentTarget.value)}`;
                  }}
                >
                  ${(ids.includes(selected) ? ids : [selected, ...ids]).map(
                    (d) => html`<option value=${d}>${d}</option>`,
                  )}
                </select></label
              >
              <a href=${`#/devices/${encodeURIComponent(selected)}`}>Device page →</a>
            `}
          />`
    }
  </section>`;
}
