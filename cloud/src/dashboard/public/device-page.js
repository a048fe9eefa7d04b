// Device: what it runs, live numbers, charts and a timeline from what the cloud stored, its alerts and samples.
import { api } from './api.js';
import { useFleet, useResource } from './hooks.js';
import { AlertTable } from './alert-table.js';
import { FrameView } from './frame-view.js';
import { DeviceHistory, DeviceTimeline } from './device-history.js';
import { html, Loading, ErrorBox, Empty, Badge, pct, num, ago, when, labelPairs } from './ui.js';

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

export function DevicePage({ id }) {
  const device = useResource(() => api(`/v1/devices/${encodeURIComponent(id)}`), [id]);
  const { rows } = useFleet();
  const row = rows.get(id);

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
    <h2>Throughput, latency and defects</h2>
    <${DeviceHistory} id=${d.id} />
    <h2>Alerts</h2>
    <${DeviceAlerts} id=${d.id} />
    <h2>Recent samples</h2>
    <${RecentSamples} id=${d.id} />
    <h2>Timeline</h2>
    <${DeviceTimeline} id=${d.id} />
  </section>`;
}
