// Fleet: every device, live from the stream; filter and sort; only the visible rows are rendered.
import { useMemo, useState, useEffect } from 'preact/hooks';
import { useFleet } from './hooks.js';
import { html, Loading, ErrorBox, Empty, Badge, pct, num, ago, labelPairs } from './ui.js';

const ROW_HEIGHT_PX = 36;
const OVERSCAN_ROWS = 8;

// A device's worst open camera-health or product-drift alert, from the drift monitor.
const LEVEL_RANK = { ok: 0, warning: 1, alert: 2 };
const LEVEL_BADGE = { ok: 'ok', warning: 'warn', alert: 'bad' };

function levelOf(level) {
  return html`<${Badge} kind=${LEVEL_BADGE[level] ?? 'off'}>${level ?? '–'}<//>`;
}

const COLUMNS = [
  ['id', 'Device', (r) => r.id],
  ['online', 'State', (r) => (r.online ? 1 : 0)],
  ['version', 'Version', (r) => r.version ?? ''],
  ['fps', 'Frames/s', (r) => r.fps ?? -1],
  ['p99Ms', 'p99 ms', (r) => r.p99Ms ?? -1],
  ['defectRate', 'Defects', (r) => r.defectRate ?? -1],
  ['unknownRate', 'Unknown', (r) => r.unknownRate ?? -1],
  ['camera', 'Camera', (r) => LEVEL_RANK[r.camera] ?? 0],
  ['drift', 'Drift', (r) => LEVEL_RANK[r.drift] ?? 0],
  ['framesScored', 'Frames', (r) => r.framesScored],
  ['lastSeen', 'Last seen', (r) => r.lastSeen ?? ''],
];

const STATES = {
  all: () => true,
  online: (r) => r.online,
  offline: (r) => !r.online,
  moving: (r) => r.desiredVersion !== null && r.desiredVersion !== r.version,
  errors: (r) => r.lastError !== null,
  'camera alert': (r) => r.camera !== 'ok',
  'drift alert': (r) => r.drift !== 'ok',
};

function matches(row, text) {
  if (text === '') return true;
  return (
    row.id.toLowerCase().includes(text) ||
    (row.version ?? '').includes(text) ||
    labelPairs(row.labels).some((l) => l.toLowerCase().includes(text))
  );
}

function stateOf(row) {
  if (!row.online) return html`<${Badge} kind="off">offline<//>`;
  if (row.lastError) return html`<${Badge} kind="bad" title=${row.lastError.message}>error<//>`;
  if (row.desiredVersion !== null && row.desiredVersion !== row.version)
    return html`<${Badge} kind="warn">${row.phase ?? 'moving'}<//>`;
  return html`<${Badge} kind="ok">online<//>`;
}

/** Renders the rows in view of a scrolling box, plus spacers for the rest. */
function useWindow(count) {
  // A callback ref: the box comes and goes (loading, no match), and each new one needs listeners.
  const [el, box] = useState(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  useEffect(() => {
    if (!el) return undefined;
    const update = () => setView({ top: el.scrollTop, height: el.clientHeight });
    update();
    el.addEventListener('scroll', update, { passive: true });
    const resize = new ResizeObserver(update);
    resize.observe(el);
    return () => {
      el.removeEventListener('scroll', update);
      resize.disconnect();
    };
  }, [el]);
  // A filter can shrink the table under a scrolled box before the browser reports the new scrollTop.
  const top = Math.min(view.top, Math.max(0, count * ROW_HEIGHT_PX - view.height));
  const first = Math.max(0, Math.floor(top / ROW_HEIGHT_PX) - OVERSCAN_ROWS);
  const last = Math.min(count, Math.ceil((top + view.height) / ROW_HEIGHT_PX) + OVERSCAN_ROWS);
  return { box, first, last };
}

export function FleetPage() {
  const { rows, totals, status } = useFleet();
  const [text, setText] = useState('');
  const [state, setState] = useState('all');
  const [version, setVersion] = useState('');
  const [label, setLabel] = useState('');
  const [sort, setSort] = useState({ key: 'id', dir: 1 });
  const all = [...rows.values()];
  const versions = useMemo(
    () => [...new Set(all.map((r) => r.version).filter(Boolean))].sort(),
    [all.length, totals],
  );
  const labels = useMemo(
    () => [...new Set(all.flatMap((r) => labelPairs(r.labels)))].sort(),
    [all.length, totals],
  );
  const needle = text.trim().toLowerCase();
  const column = COLUMNS.find((c) => c[0] === sort.key) ?? COLUMNS[0];
  const shown = all
    .filter(
      (r) =>
        STATES[state](r) &&
        (version === '' || r.version === version) &&
        (label === '' || labelPairs(r.labels).includes(label)) &&
        matches(r, needle),
    )
    .sort((a, b) => {
      const x = column[2](a);
      const y = column[2](b);
      return (x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1) * sort.dir;
    });
  const { box, first, last } = useWindow(shown.length);
  const now = Date.now();

  if (status.state === 'failed') return html`<${ErrorBox} error=${status.error} />`;
  if (totals === null)
    return html`${status.error ? html`<${ErrorBox} error=${status.error} />` : null}
      <${Loading} what="the fleet" />`;

  const sortBy = (key) =>
    setSort((s) => (s.key === key ? { key, dir: -s.dir } : { key, dir: key === 'id' ? 1 : -1 }));
  return html`<section aria-labelledby="fleet-title">
    <div class="page-head">
      <h1 id="fleet-title">Fleet</h1>
      <p class="totals" data-testid="fleet-totals">
        ${[
          [totals.devices, 'devices'],
          [totals.online, 'online'],
          [totals.moving, 'moving'],
          [totals.withErrors, 'with errors'],
        ].map(([n, what], k) => html`${k > 0 ? ' · ' : ''}<strong>${n}</strong> ${what}`)}
      </p>
      <p class=${`live live-${status.state}`} role="status" data-testid="live-state">
        ${status.state === 'live' ? 'Live' : status.state === 'reconnecting' ? 'Reconnecting…' : 'Connecting…'}
      </p>
    </div>
    <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
      <label
        >Search
        <input
          type="search"
          value=${text}
          placeholder="id, label or version"
          onInput=${(e) => setText(e.currentTarget.value)}
      /></label>
      <label
        >State
        <select value=${state} onChange=${(e) => setState(e.currentTarget.value)}>
          ${Object.keys(STATES).map((s) => html`<option value=${s}>${s}</option>`)}
        </select></label
      >
      <label
        >Version
        <select value=${version} onChange=${(e) => setVersion(e.currentTarget.value)}>
          <option value="">any</option>
          ${versions.map((v) => html`<option value=${v}>${v}</option>`)}
        </select></label
      >
      <label
        >Label
        <select value=${label} onChange=${(e) => setLabel(e.currentTarget.value)}>
          <option value="">any</option>
          ${labels.map((l) => html`<option value=${l}>${l}</option>`)}
        </select></label
      >
      <span class="count" aria-live="polite">${shown.length} shown</span>
    </form>
    ${
      all.length === 0
        ? html`<${Empty}
            >No devices yet. Provision one with <code>linesight device provision</code> or
            <code>POST /v1/devices</code>.<//
          >`
        : shown.length === 0
          ? html`<${Empty}>No device matches these filters.<//>`
          : html`<div class="table-box" ref=${box} tabindex="0" aria-label="Devices">
              <table class="fleet" aria-rowcount=${shown.length + 1}>
                <thead>
                  <tr>
                    ${COLUMNS.map(
                      ([key, title]) =>
                        html`<th
                          scope="col"
                          aria-sort=${sort.key === key ? (sort.dir > 0 ? 'ascending' : 'descending') : 'none'}
                        >
                          <button type="button" class="sort" onClick=${() => sortBy(key)}>
                            ${title}${sort.key === key ? (sort.dir > 0 ? ' ▲' : ' ▼') : ''}
                          </button>
                        </th>`,
                    )}
                    <th scope="col" class="labels">Labels</th>
                  </tr>
                </thead>
                <tbody>
                  ${first > 0 ? html`<tr class="spacer" style=${`height:${first * ROW_HEIGHT_PX}px`} aria-hidden="true"></tr>` : null}
                  ${shown.slice(first, last).map(
                    (r, i) =>
                      html`<tr key=${r.id} data-device=${r.id} aria-rowindex=${first + i + 2}>
                        <th scope="row">
                          <a href=${`#/devices/${encodeURIComponent(r.id)}`}>${r.id}</a>
                        </th>
                        <td>${stateOf(r)}</td>
                        <td>
                          ${r.version ?? '–'}${r.desiredVersion && r.desiredVersion !== r.version ? html` <span class="muted">→ ${r.desiredVersion}</span>` : null}
                        </td>
                        <td class="n">${num(r.fps)}</td>
                        <td class="n">${num(r.p99Ms)}</td>
                        <td class="n">${pct(r.defectRate)}</td>
                        <td class="n">${pct(r.unknownRate)}</td>
                        <td data-testid="camera">${levelOf(r.camera)}</td>
                        <td data-testid="drift">${levelOf(r.drift)}</td>
                        <td class="n" data-testid="frames">${r.framesScored}</td>
                        <td><time datetime=${r.lastSeen}>${ago(r.lastSeen, now)}</time></td>
                        <td class="labels">${labelPairs(r.labels).join(' ')}</td>
                      </tr>`,
                  )}
                  ${last < shown.length ? html`<tr class="spacer" style=${`height:${(shown.length - last) * ROW_HEIGHT_PX}px`} aria-hidden="true"></tr>` : null}
                </tbody>
              </table>
            </div>`
    }
  </section>`;
}
