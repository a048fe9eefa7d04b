// Review: the sample queue, most uncertain first; label with a click or a key (g good, d defect), the next image at once.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { useResource } from './hooks.js';
import { FrameView } from './frame-view.js';
import { html, Loading, ErrorBox, Empty, Badge, num, when } from './ui.js';

const REASONS = ['uncertain', 'defect', 'random', 'unknown'];
const PAGE = 50;
// Fetch more when fewer than this many unlabelled items are left on the page.
const REFILL_AT = 5;
const PREFETCH = 3;
const RECENT = 8;

const keyOf = (item) => `${item.sample.deviceId}/${item.sample.id}`;

function queuePath(filters) {
  const q = new URLSearchParams({ limit: String(PAGE) });
  if (filters.deviceId) q.set('deviceId', filters.deviceId);
  if (filters.model) q.set('model', filters.model);
  if (filters.reason) q.set('reason', filters.reason);
  return `/v1/review/queue?${q}`;
}

function Filters({ filters, onChange }) {
  const devices = useResource(() => api('/v1/devices'), []);
  const models = useResource(() => api('/v1/models'), []);
  const names = [...new Set((models.data ?? []).map((m) => m.name))];
  const set = (key) => (e) => onChange({ ...filters, [key]: e.currentTarget.value });
  return html`<div class="filters" role="group" aria-label="Queue filters">
    <label
      >Device
      <select value=${filters.deviceId} onChange=${set('deviceId')}>
        <option value="">all devices</option>
        ${(devices.data ?? []).map((d) => html`<option value=${d.id}>${d.id}</option>`)}
      </select></label
    >
    <label
      >Model
      <select value=${filters.model} onChange=${set('model')}>
        <option value="">all models</option>
        ${names.map((n) => html`<option value=${n}>${n}</option>`)}
      </select></label
    >
    <label
      >Reason
      <select value=${filters.reason} onChange=${set('reason')}>
        <option value="">any reason</option>
        ${REASONS.map((r) => html`<option value=${r}>${r}</option>`)}
      </select></label
    >
  </div>`;
}

function Facts({ item }) {
  const s = item.sample;
  return html`<dl class="facts review-facts">
    <div>
      <dt>Score</dt>
      <dd data-testid="review-score">
        ${s.score === null ? '–' : num(s.score, 3)}
        <span class="muted"
          >${` / threshold ${item.threshold === null ? '–' : num(item.threshold, 3)}`}</span
        >
      </dd>
    </div>
    <div>
      <dt>Verdict</dt>
      <dd>
        <${Badge} kind=${s.verdict === 'defect' ? 'bad' : s.verdict === 'good' ? 'ok' : 'muted'}
          >${s.verdict}<//
        >
      </dd>
    </div>
    <div>
      <dt>Reason</dt>
      <dd>${s.class}${s.reason ? html`<br /><span class="muted">${s.reason}</span>` : null}</dd>
    </div>
    <div>
      <dt>Model</dt>
      <dd>${s.modelName ? `${s.modelName} ${s.modelVersion}` : 'none'}</dd>
    </div>
    <div>
      <dt>Device</dt>
      <dd><a href=${`#/devices/${encodeURIComponent(s.deviceId)}`}>${s.deviceId}</a></dd>
    </div>
    <div>
      <dt>Captured</dt>
      <dd><time datetime=${s.at}>${when(s.at)}</time></dd>
    </div>
  </dl>`;
}

export function ReviewPage({ session }) {
  const [filters, setFilters] = useState({ deviceId: '', model: '', reason: '' });
  const [queue, setQueue] = useState({ loading: true, error: null, items: [], total: 0, at: 0 });
  const [cursor, setCursor] = useState(0);
  const [recent, setRecent] = useState([]);
  const [showMap, setShowMap] = useState(true);
  const [opacity, setOpacity] = useState(0.55);
  // Labelled here (sent or saved): kept out of every page fetched after, until the API has them.
  const done = useRef(new Set());
  const fetching = useRef(null);

  const load = (replace) => {
    if (fetching.current && !replace) return fetching.current;
    const mine = api(queuePath(filters)).then(
      (page) => {
        if (fetching.current !== mine) return;
        fetching.current = null;
        setQueue((q) => {
          const fresh = page.items.filter((i) => !done.current.has(keyOf(i)));
          const at = Date.now();
          if (replace) return { loading: false, error: null, items: fresh, total: page.total, at };
          // Keep what is on screen; add what is new at the end.
          const kept = q.items.filter((i) => !done.current.has(keyOf(i)));
          const have = new Set(kept.map(keyOf));
          return {
            loading: false,
            error: null,
            items: [...kept, ...fresh.filter((i) => !have.has(keyOf(i)))],
            total: page.total,
            at,
          };
        });
        if (replace) setCursor(0);
      },
      (error) => {
        if (fetching.current !== mine) return;
        fetching.current = null;
        setQueue((q) => ({ ...q, loading: false, error }));
      },
    );
    fetching.current = mine;
    return mine;
  };

  useEffect(() => {
    setQueue((q) => ({ ...q, loading: true }));
    void load(true);
  }, [filters.deviceId, filters.model, filters.reason]);

  const pending = queue.items.filter((i) => !done.current.has(keyOf(i)));
  const index = Math.min(cursor, Math.max(0, pending.length - 1));
  const current = pending[index] ?? null;

  // The next images load while this one is looked at, so the next is there at once.
  useEffect(() => {
    for (const next of pending.slice(index + 1, index + 1 + PREFETCH)) {
      new Image().src = next.imageUrl;
      if (next.mapUrl) new Image().src = next.mapUrl;
    }
    if (pending.length - index <= REFILL_AT && !queue.loading) void load(false);
  }, [current && keyOf(current), pending.length]);

  const label = (value) => {
    if (!session.canWrite || current === null) return;
    const item = current;
    const key = keyOf(item);
    done.current.add(key);
    // The cursor now points at the next item: the list shrank under it.
    setQueue((q) => ({ ...q, total: Math.max(0, q.total - 1) }));
    const entry = { key, item, label: value, status: 'sending', error: null };
    setRecent((r) => [entry, ...r.filter((e) => e.key !== key)].slice(0, RECENT));
    const update = (patch) =>
      setRecent((r) => r.map((e) => (e.key === key && e.label === value ? { ...e, ...patch } : e)));
    api(
      `/v1/review/samples/${encodeURIComponent(item.sample.deviceId)}/${encodeURIComponent(item.sample.id)}/labels`,
      { method: 'POST', body: { label: value } },
    ).then(
      () => update({ status: 'saved' }),
      (error) => {
        // Back into the queue, so it can be labelled again.
        done.current.delete(key);
        setQueue((q) => ({ ...q, total: q.total + 1 }));
        update({ status: 'failed', error });
      },
    );
  };
  const move = (by) => setCursor((c) => Math.max(0, Math.min(pending.length - 1, c + by)));

  const keys = useRef(null);
  keys.current = { label, move };
  useEffect(() => {
    const onKey = (e) => {
      if (e.altKey || e.ctrlKey || e.metaKey || e.defaultPrevented) return;
      const t = e.target;
      if (
        t instanceof HTMLElement &&
        (t.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(t.tagName))
      )
        return;
      const k = e.key.toLowerCase();
      if (k === 'g') keys.current.label('good');
      else if (k === 'd') keys.current.label('defect');
      else if (k === 'arrowright' || k === 'j') keys.current.move(1);
      else if (k === 'arrowleft' || k === 'k') keys.current.move(-1);
      else return;
      e.preventDefault();
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, []);

  const head = html`<div class="page-head">
      <h1 id="review-title">Review</h1>
      <p class="totals" data-testid="review-total">
        ${queue.loading && queue.items.length === 0 ? '' : html`<strong>${queue.total}</strong> waiting for a label`}
      </p>
    </div>
    <${Filters} filters=${filters} onChange=${setFilters} />`;

  let body;
  if (queue.loading && queue.items.length === 0)
    body = html`<${Loading} what="the review queue" />`;
  else if (queue.error && queue.items.length === 0)
    body = html`<${ErrorBox} error=${queue.error} retry=${() => load(true)} />`;
  else if (current === null)
    body = html`<${Empty}
      >${
        filters.deviceId || filters.model || filters.reason
          ? 'No sample waits for a label with these filters.'
          : 'No sample waits for a label. Devices keep every defect, frames near the threshold and a small random share; they show here as they upload.'
      }<//
    >`;
  else
    body = html`<div class="review">
        <div class="review-main">
          <div data-testid="review-image">
            <${FrameView}
              key=${keyOf(current)}
              imageUrl=${current.imageUrl}
              mapUrl=${current.mapUrl}
              alt=${`Frame ${current.sample.id} from ${current.sample.deviceId}, ${current.sample.verdict}`}
              showMap=${showMap}
              opacity=${opacity}
              onError=${() => {
                // Image URLs expire (5 min): fetch fresh ones, but not in a loop for an image that is gone.
                if (Date.now() - queue.at > 60_000) void load(true);
              }}
            />
          </div>
          <div class="map-controls">
            <label class="check"
              ><input
                type="checkbox"
                checked=${showMap}
                disabled=${!current.mapUrl}
                onChange=${(e) => setShowMap(e.currentTarget.checked)}
              />
              ${current.mapUrl ? 'Anomaly map' : 'No anomaly map for this frame'}</label
            >
            ${
              current.mapUrl && showMap
                ? html`<label
                    >Opacity
                    <input
                      type="range"
                      min="0.1"
                      max="1"
                      step="0.05"
                      value=${opacity}
                      onInput=${(e) => setOpacity(Number(e.currentTarget.value))}
                  /></label>`
                : null
            }
          </div>
        </div>
        <div class="review-side">
          <p class="muted" data-testid="review-current" data-sample=${keyOf(current)}>
            ${index + 1} of ${pending.length} loaded · sample ${current.sample.id}
          </p>
          <${Facts} item=${current} />
          ${
            session.canWrite
              ? html`<div class="actions label-actions" role="group" aria-label="Label this frame">
                  <button
                    type="button"
                    class="good"
                    onClick=${() => label('good')}
                    aria-keyshortcuts="g"
                  >
                    Good <kbd>g</kbd>
                  </button>
                  <button
                    type="button"
                    class="danger"
                    onClick=${() => label('defect')}
                    aria-keyshortcuts="d"
                  >
                    Defect <kbd>d</kbd>
                  </button>
                </div>`
              : html`<p class="state" data-testid="review-read-only">
                  Your <strong>${session.role}</strong> token can look at the queue; labelling needs
                  an operator token.
                </p>`
          }
          <div class="actions">
            <button
              type="button"
              class="quiet"
              disabled=${index === 0}
              onClick=${() => move(-1)}
              aria-keyshortcuts="ArrowLeft"
            >
              ← Previous
            </button>
            <button
              type="button"
              class="quiet"
              disabled=${index >= pending.length - 1}
              onClick=${() => move(1)}
              aria-keyshortcuts="ArrowRight"
            >
              Skip →
            </button>
          </div>
          ${
            recent.length > 0
              ? html`<h2>Just labelled</h2>
                  <ul class="recent" aria-live="polite">
                    ${recent.map(
                      (e) =>
                        html`<li data-labelled=${e.key} data-status=${e.status}>
                          ${e.item.sample.deviceId} ${e.item.sample.id}:
                          <${Badge} kind=${e.label === 'defect' ? 'bad' : 'ok'}>${e.label}<//>
                          ${e.status === 'sending' ? html`<span class="muted">saving…</span>` : null}
                          ${e.status === 'saved' ? html`<span class="muted">saved</span>` : null}
                          ${e.status === 'failed' ? html`<span class="error-text" role="alert">${e.error?.message}</span>` : null}
                        </li>`,
                    )}
                  </ul>`
              : null
          }
          ${queue.error ? html`<${ErrorBox} error=${queue.error} retry=${() => load(true)} />` : null}
        </div>
      </div>
      <h2>Up next</h2>
      <ol class="upcoming">
        ${pending.slice(index + 1, index + 11).map(
          (i, n) =>
            html`<li>
              <button type="button" class="link" onClick=${() => setCursor(index + 1 + n)}>
                ${i.sample.deviceId} ${i.sample.id}
              </button>
              <span class="muted"
                >${`${i.sample.class}, score ${i.sample.score === null ? '–' : num(i.sample.score, 3)}`}</span
              >
            </li>`,
        )}
      </ol>`;

  return html`<section aria-labelledby="review-title">
    ${head} ${body}
    ${
      session.canWrite && current
        ? html`<p class="muted small">
            Keys: <kbd>g</kbd> good, <kbd>d</kbd> defect, <kbd>→</kbd> skip, <kbd>←</kbd> back.
          </p>`
        : null
    }
  </section>`;
}
