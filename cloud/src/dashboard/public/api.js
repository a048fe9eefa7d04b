// The API as the pages use it: the token from sessionStorage (never the URL), errors with the API's message.
const TOKEN_KEY = 'linesight.token';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** An API answer that was not 2xx, with the API's own message and code. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const unauthorizedListeners = new Set();

/** Calls `fn` when any request is refused for its token (the page signs out). */
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
  return () => unauthorizedListeners.delete(fn);
}

async function failure(res) {
  let body = {};
  try {
    body = await res.json();
  } catch {
    // Not JSON: the status says enough.
  }
  const err = new ApiError(
    res.status,
    body.error ?? body.code ?? `HTTP_${res.status}`,
    body.message ?? `${res.status} ${res.statusText}`,
  );
  if (res.status === 401) for (const fn of unauthorizedListeners) fn(err);
  return err;
}

function headers(extra = {}) {
  const token = getToken();
  return token ? { authorization: `Bearer ${token}`, ...extra } : extra;
}

/** GET (or another method with a JSON body) a /v1 path; resolves to the parsed JSON. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const res = await fetch(path, {
    method,
    signal,
    headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw await failure(res);
  return res.status === 204 ? null : res.json();
}

/**
 * Reads a Server-Sent Events stream with fetch, so the token travels in a
 * header (EventSource cannot send one). Resolves when the stream ends.
 */
export async function readEvents(path, onEvent, signal) {
  const res = await fetch(path, { headers: headers({ accept: 'text/event-stream' }), signal });
  if (!res.ok) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) onEvent(event, JSON.parse(data.join('\n')));
    }
  }
}
