// Shared view helpers: html (htm bound to preact), states, formatting.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);

export function Loading({ what }) {
  return html`<p class="state" role="status" aria-live="polite">Loading ${what}…</p>`;
}

export function ErrorBox({ error, retry }) {
  if (!error) return null;
  return html`<div class="state error" role="alert">
    <strong>${error.code ?? 'Error'}</strong>: ${error.message ?? String(error)}
    ${retry ? html` <button type="button" onClick=${retry}>Try again</button>` : null}
  </div>`;
}

export function Empty({ children }) {
  return html`<p class="state empty">${children}</p>`;
}

export function Badge({ kind, children }) {
  return html`<span class=${`badge badge-${kind}`}>${children}</span>`;
}

export function pct(v, digits = 1) {
  return v === null || v === undefined ? '–' : `${(v * 100).toFixed(digits)}%`;
}

export function num(v, digits = 1) {
  return v === null || v === undefined ? '–' : v.toFixed(digits);
}

/** "12 s ago", "3 min ago" — relative to `nowMs`. */
export function ago(iso, nowMs = Date.now()) {
  if (!iso) return 'never';
  const sec = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000));
  if (sec < 60) return `${sec} s ago`;
  if (sec < 3600) return `${Math.floor(sec / 60)} min ago`;
  if (sec < 86400) return `${Math.floor(sec / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

export function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '–';
}

/** Labels as "k=v" strings. */
export function labelPairs(labels) {
  return Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`);
}
