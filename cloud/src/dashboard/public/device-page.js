// Device: what it runs, live numbers and charts since the page opened, its alerts, recent samples and events.
import { useEffect, useRef } from 'preact/hooks';
import { api } from './api.js';
import { useFleet, useResource } from './hooks.js';
import { AlertTable } from './alert-table.js';
import { FrameView } from './frame-view.js';
import { html, Loading, ErrorBox, Empty, Badge, pct, num, ago, when, labelPairs } from './ui.js';

const HISTORY_POINTS = 600;
const RECENT_SAMPLES = 8;

/** The device's alerts, open ones first; a link to its drift charts. */
function DeviceAlerts({ id }) {
  const alerts = useResource(
    () => api(`/v1/alerts?deviceId=${encodeURIComponent(id)}&limit=50`),
    [id],
  );
  const drift = html`<a href=${`#/drift/${encodeURIComponent(id)}`}>Drift charts →</a>`;
  if (alerts.loading && !alerts.data) return html`<${Loading} what="alerts" />`;
  if (!alerts.data) return html`<${ErrorBox} error=${alerts.error} retry=${alerts.reload} />`;
  const open = alerts.data.alerts.filter((a) => a.state === 'open');
  const resolved = alerts.data.alerts.length - open.length;
  return html`${
    open.length === 0
      ? html`<${Empty}>No open drift or camera alert on this device. ${drift}<//>`
      : html`<${AlertTable} alerts=${open} caption=${`Open alerts of ${id}`} />`
  }
  ${
    open.length > 0 || resolved > 0
      ? html`<p class="muted small">
          ${resolved > 0 ? `${resolved} resolved (on the drift page). ` : ''}${drift}
        </p>`
      : null
  }`;
}

/** The device's newest sampled frames with their anomaly maps. */
function RecentSamples({ id }) {
  const samples = useResource(async () => {
    const enc = encodeURIComponent(id);
    const { samples: list } = await api(`/v1/samples?deviceId=${enc}&limit=${RECENT_SAMPLES}`);
    // Each with short-lived URLs for its frame and map.
    return Promise.all(list.map((s) => api(`/v1/samples/${enc}/${encodeURIComponent(s.id)}`)));
  }, [id]);
  if (samples.loading && !samples.data) return html`<${Loading} what="samples" />`;
  if (!samples.data) return html`<${ErrorBox} error=${samples.error} retry=${samples.reload} />`;
  if (samples.data.length === 0)
    return html`<${Empty}
      >No sampled frames from this device yet: it keeps every defect, frames near the threshold and
      a small random share, and uploads them while connected.<//
    >`;
  return html`<ul class="samples" data-testid="recent-samples">
    ${samples.data.map(
      ({ sample: s, downloadUrl, mapUrl }) =>
        html`<li key=${s.id}>
          ${
            downloadUrl
              ? html`<${FrameView}
                  small=${true}
                  imageUrl=${downloadUrl}
                  mapUrl=${mapUrl}
                  alt=${`Frame ${s.id}, ${s.verdict}`}
                />`
              : html`<p class="muted">No image URL (the blob store cannot issue one).</p>`
          }
          <span>
            <${Badge} kind=${s.verdict === 'defect' ? 'bad' : s.verdict === 'good' ? 'ok' : 'muted'}
              >${s.verdict}<//
            >
            ${` ${s.class} sample, score ${s.score === null ? '–' : num(s.score, 3)}`}
          </span>
          <time class="muted small" datetime=${s.at}>${when(s.at)}</time>
        </li>`,
    )}
  </ul>`;
}

/** A small uPlot line chart of one series, loaded only on this page. */
function Chart({ title, unit, points }) {
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    let live = true;
    Promise.all([import('uplot'), ensureCss()]).then(([{ default: UPlot }]) => {
      if (!live || !box.current) return;
      plot.current = new UPlot(
        {
          width: box.current.clientWidth || 360,
          height: 140,
          scales: { x: { time: true } },
          legend: { show: false },
          series: [{}, { label: title, stroke: '#2563eb', width: 2, points: { show: false } }],
          axes: [
            {},
            { size: 64, values: (_u, ticks) => ticks.map((t) => `${+t.toFixed(2)}${unit}`) },
          ],
        },
        [points.map((p) => p[0]), points.map((p) => p[1])],
        box.current,
      );
    });
    return () => {
      live = false;
      plot.current?.destroy();
      plot.current = null;
    };
  }, []);
  useEffect(() => {
    plot.current?.setData([points.map((p) => p[0]), points.map((p) => p[1])]);
  }, [points.length, points[points.length - 1]]);
  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <div ref=${box} role="img" aria-label=${`${title} over time`}></div>
  </figure>`;
}

let cssLoaded = null;
function ensureCss() {
  cssLoaded ??= new Promise((resolve) => {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = '/vendor/uplot.css';
    link.onload = link.onerror = resolve;
    document.head.append(link);
  });
  return cssLoaded;
}

// Samples of this device's live row, kept while the page is open.
const histories = new Map();
function record(row) {
  let h = histories.get(row.id);
  if (!h) histories.set(row.id, (h = { at: null, fps: [], p99: [], defects: [] }));
  if (row.lastSeen === h.at) return h;
  h.at = row.lastSeen;
  const t = Date.now() / 1000;
  if (row.fps !== null) h.fps.push([t, row.fps]);
  if (row.p99Ms !== null) h.p99.push([t, row.p99Ms]);
  if (row.defectRate !== null) h.defects.push([t, row.defectRate * 100]);
  for (const s of [h.fps, h.p99, h.defects]) if (s.length > HISTORY_POINTS) s.shift();
  return h;
}

export function DevicePage({ id }) {
  const device = useResource(() => api(`/v1/devices/${encodeURIComponent(id)}`), [id]);
  const events = useResource(() => api(`/v1/devices/${encodeURIComponent(id)}/events`), [id]);
  const { rows } = useFleet();
  const row = rows.get(id);
  const history = row ? record(row) : null;

  if (device.loading && !device.data) return html`<${Loading} what=${`device ${id}`} />`;
  if (!device.data) return html`<${ErrorBox} error=${device.error} retry=${device.reload} />`;
  const d = device.data;
  const live = row ?? null;
  return html`<section aria-labelledby="device-title">
    <p><a href="#/fleet">← Fleet</a></p>
    <div class="page-head">
      <h1 id="device-title">${d.id}</h1>
      ${(live?.online ?? d.online) ? html`<${Badge} kind="ok">online<//>` : html`<${Badge} kind="off">offline<//>`}
    </div>
    <dl class="facts">
      <div>
        <dt>Running</dt>
        <dd data-testid="running">
          ${d.model ? `${d.model.name} ${d.model.version}` : 'no model'}
        </dd>
      </div>
      <div>
        <dt>Desired</dt>
        <dd>${d.desiredModel ? `${d.desiredModel.name} ${d.desiredModel.version}` : '–'}</dd>
      </div>
      <div>
        <dt>Phase</dt>
        <dd>${live?.phase ?? d.phase ?? '–'}</dd>
      </div>
      <div>
        <dt>Frames scored</dt>
        <dd data-testid="device-frames">${live?.framesScored ?? d.framesProcessed}</dd>
      </div>
      <div>
        <dt>Frames/s</dt>
        <dd>${num(live?.fps ?? d.fps)}</dd>
      </div>
      <div>
        <dt>p99 latency</dt>
        <dd>${live ? `${num(live.p99Ms)} ms` : '–'}</dd>
      </div>
      <div>
        <dt>Defect rate</dt>
        <dd>${pct(live?.defectRate)}</dd>
      </div>
      <div>
        <dt>Unknown rate</dt>
        <dd>${pct(live?.unknownRate)}</dd>
      </div>
      <div>
        <dt>Last seen</dt>
        <dd>${ago(live?.lastSeen ?? d.lastSeen)}</dd>
      </div>
      <div>
        <dt>Labels</dt>
        <dd>${labelPairs(d.labels).join(', ') || '–'}</dd>
      </div>
    </dl>
    ${
      d.lastError
        ? html`<div class="state error" role="alert">
            <strong>${d.lastError.code}</strong>: ${d.lastError.message}
          </div>`
        : null
    }
    <h2>Since this page opened</h2>
    ${
      history && history.fps.length > 1
        ? html`<div class="charts">
            <${Chart} title="Frames/s" unit="" points=${history.fps} />
            <${Chart} title="p99 latency" unit=" ms" points=${history.p99} />
            <${Chart} title="Defect rate" unit="%" points=${history.defects} />
          </div>`
        : html`<${Empty}
            >Charts fill in as telemetry arrives (every few seconds while the device runs).<//
          >`
    }
    <h2>Alerts</h2>
    <${DeviceAlerts} id=${d.id} />
    <h2>Recent samples</h2>
    <${RecentSamples} id=${d.id} />
    <h2>Recent events</h2>
    ${events.error ? html`<${ErrorBox} error=${events.error} retry=${events.reload} />` : null}
    ${
      events.loading && !events.data
        ? html`<${Loading} what="events" />`
        : (events.data ?? []).length === 0
          ? html`<${Empty}>No events from this device since the cloud started.<//>`
          : html`<table class="events">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Level</th>
                  <th scope="col">Type</th>
                  <th scope="col">Message</th>
                </tr>
              </thead>
              <tbody>
                ${[...events.data].reverse().map(
                  (e) =>
                    html`<tr>
                      <td><time datetime=${e.at}>${when(e.at)}</time></td>
                      <td>
                        <${Badge}
                          kind=${e.level === 'error' ? 'bad' : e.level === 'warn' ? 'warn' : 'muted'}
                          >${e.level}<//
                        >
                      </td>
                      <td>${e.type}</td>
                      <td>${e.message}</td>
                    </tr>`,
                )}
              </tbody>
            </table>`
    }
  </section>`;
}
