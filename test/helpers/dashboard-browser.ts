import { chromium, type Browser, type BrowserContext } from 'playwright-core';

/** Debian's chromium, or the one LINESIGHT_CHROMIUM names. */
export const CHROMIUM = process.env.LINESIGHT_CHROMIUM ?? '/usr/bin/chromium';
/** The desktop size the dashboard is checked at. */
export const VIEWPORT = { width: 1280, height: 800 };

/** A headless chromium with no background traffic (so page weights count only the page). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A fresh context (empty cache), signed in with `token` if given; uncaught
 * page errors and console errors other than expected 401/403 answers go to `errors`.
 */
export async function dashboardContext(
  browser: Browser,
  errors: string[],
  token?: string,
  viewport = VIEWPORT,
): Promise<BrowserContext> {
  const ctx = await browser.newContext({ viewport });
  ctx.on('weberror', (e) => errors.push(String(e.error())));
  ctx.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) errors.push(m.text());
  });
  if (token !== undefined)
    // about:blank has no sessionStorage; the script runs again in the dashboard's origin.
    await ctx.addInitScript(
      `try { sessionStorage.setItem('linesight.token', ${JSON.stringify(token)}) } catch {}`,
    );
  return ctx;
}

/** First-load numbers of one page. */
export interface FirstLoad {
  bytes: number;
  requests: number;
  /** From navigation start until `ready` was in the DOM. */
  interactiveMs: number;
}

/**
 * Loads `url` in a fresh context: bytes on the wire until `ready` shows (with
 * `settle`, until the page's images are loaded too, so they count), and when it showed.
 */
export async function firstLoad(
  browser: Browser,
  url: string,
  ready: string,
  errors: string[],
  options: { token?: string; settle?: boolean } = {},
): Promise<FirstLoad> {
  const token = options.token;
  const ctx = await dashboardContext(browser, errors, token);
  try {
    const p = await ctx.newPage();
    const cdp = await ctx.newCDPSession(p);
    await cdp.send('Network.enable');
    const finished = new Map<string, number>();
    const streamed = new Map<string, number>();
    cdp.on('Network.dataReceived', (e) =>
      streamed.set(e.requestId, (streamed.get(e.requestId) ?? 0) + e.encodedDataLength),
    );
    cdp.on('Network.loadingFinished', (e) => finished.set(e.requestId, e.encodedDataLength));
    await p.goto(url, { waitUntil: 'load' });
    const interactiveMs = (await (
      await p.waitForFunction(
        `document.querySelector(${JSON.stringify(ready)}) ? performance.now() : 0`,
        undefined,
        { polling: 'raf', timeout: 60_000 },
      )
    ).jsonValue()) as number;
    if (options.settle === true)
      await p.waitForFunction('[...document.images].every((i) => i.complete)', undefined, {
        timeout: 60_000,
      });
    let bytes = 0;
    for (const n of finished.values()) bytes += n;
    for (const [id, n] of streamed) if (!finished.has(id)) bytes += n;
    const requests = new Set([...finished.keys(), ...streamed.keys()]).size;
    await cdp.detach();
    return { bytes, requests, interactiveMs: Math.round(interactiveMs) };
  } finally {
    await ctx.close();
  }
}
