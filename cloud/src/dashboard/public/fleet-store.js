// One live copy of the fleet for every page: a snapshot, then changed rows from the stream.
import { readEvents, ApiError } from './api.js';

const rows = new Map();
const listeners = new Set();
let totals = null;
let status = { state: 'connecting', error: null, at: null };
let version = 0;
let controller = null;
let retryTimer = null;
let attempt = 0;

function emit() {
  version++;
  for (const fn of listeners) fn();
}

function apply(event, data) {
  if (event === 'snapshot') rows.clear();
  for (const row of data.devices) rows.set(row.id, row);
  totals = data.totals;
  status = { state: 'live', error: null, at: data.at };
  attempt = 0;
  emit();
}

function connect() {
  controller = new AbortController();
  const mine = controller;
  readEvents('/v1/dashboard/fleet/stream', apply, mine.signal).then(
    () => retry(mine, null),
    (err) => retry(mine, err),
  );
}

// Capped exponential backoff with jitter; a refused token does not retry.
function retry(mine, err) {
  if (controller !== mine || mine.signal.aborted) return;
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    status = { state: 'failed', error: err, at: status.at };
    emit();
    return;
  }
  status = { state: 'reconnecting', error: err, at: status.at };
  emit();
  const delayMs = Math.min(30_000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2);
  retryTimer = setTimeout(connect, delayMs);
}

/** Subscribes to changes; the stream runs while anyone listens. */
export function subscribeFleet(fn) {
  listeners.add(fn);
  if (controller === null) connect();
  return () => {
    listeners.delete(fn);
    if (listeners.size === 0) stopFleet();
  };
}

/** Ends the stream (sign-out, or no one listening). */
export function stopFleet() {
  clearTimeout(retryTimer);
  controller?.abort();
  controller = null;
  rows.clear();
  totals = null;
  status = { state: 'connecting', error: null, at: null };
}

export function fleetState() {
  return { rows, totals, status, version };
}
