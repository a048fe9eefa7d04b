import { request } from 'node:http';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { OutputTelemetrySchema, type FrameResult } from '@linesight/protocol';
import { LocalOutputs } from '../outputs/local-outputs.ts';
import { checkOutputConfigs } from '../outputs/outputs-config.ts';
import type { AgentHttpStatus, LineGuardStatus } from './agent-http-server.ts';

function result(seq: number, verdict: FrameResult['verdict']): FrameResult {
  return {
    schema: 'linesight.result/v1',
    deviceId: 'line-1',
    seq,
    capturedAt: new Date().toISOString(),
    verdict,
    score: verdict === 'unknown' ? null : verdict === 'defect' ? 0.9 : 0.1,
    threshold: verdict === 'unknown' ? null : 0.5,
    model: null,
    ...(verdict === 'unknown' ? { reason: 'no model loaded' } : {}),
    latencyMs: { capture: 1, queue: 0, preprocess: 3, inference: 2, total: 6 },
  };
}

const status = () => ({
  deviceId: 'line-1',
  phase: 'running' as const,
  model: null,
  cloudConnected: false,
  cloudReconnects: 0,
  swaps: 1,
  frames: { captured: 3, scored: 2, unknown: 1, droppedOverload: 0, defects: 1 },
  errors: 0,
  watchdogTrips: 0,
  circuitOpenFrames: 0,
});

const open: LocalOutputs[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((o) => o.close()));
});

async function started(
  outputs: unknown[] = [],
  statusOf: () => AgentHttpStatus = status,
): Promise<LocalOutputs> {
  const checked = checkOutputConfigs(outputs);
  expect(checked.problems).toEqual([]);
  const local = new LocalOutputs({
    deviceId: 'line-1',
    outputs: checked.outputs,
    http: { port: 0, host: '127.0.0.1', recentVerdicts: 5, sseMaxBufferedBytes: 1 << 20 },
    status: statusOf,
    logger: pino({ level: 'silent' }),
  });
  open.push(local);
  await local.start();
  return local;
}

/** Reads `count` SSE events from the stream. */
function readEvents(url: string, count: number, headers: Record<string, string> = {}) {
  return new Promise<{ id: string; event: string; data: FrameResult }[]>((resolve, reject) => {
    const events: { id: string; event: string; data: FrameResult }[] = [];
    const req = request(url, { headers }, (res) => {
      expect(res.headers['content-type']).toBe('text/event-stream');
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(
            block
              .split('\n')
              .filter((l) => !l.startsWith(':') && l.includes(': '))
              .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
          );
          if (fields.data === undefined) continue;
          events.push({
            id: fields.id ?? '',
            event: fields.event ?? '',
            data: JSON.parse(fields.data) as FrameResult,
          });
          if (events.length === count) {
            req.destroy();
            resolve(events);
          }
        }
      });
    });
    req.on('error', (err) => {
      if (events.length < count) reject(err);
    });
    req.end();
  });
}

async function waitForClients(local: LocalOutputs, url: string, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = await (await fetch(`${url}/metrics`)).text();
    if (text.includes(`linesight_agent_sse_clients ${n}`)) return;
    if (Date.now() > deadline) throw new Error('SSE client did not attach');
    await new Promise((r) => setTimeout(r, 10));
  }
  void local;
}

describe('agent HTTP endpoint', () => {
  it('streams verdicts in order over SSE, serves the newest N and Prometheus metrics', async () => {
    const local = await started();
    const url = local.httpUrl!;
    const stream = readEvents(`${url}/verdicts/stream`, 8);
    await waitForClients(local, url, 1);
    const verdicts = [
      'good',
      'defect',
      'unknown',
      'good',
      'good',
      'defect',
      'good',
      'unknown',
    ] as const;
    verdicts.forEach((v, seq) => local.publish(result(seq, v)));
    const events = await stream;
    expect(events.map((e) => [Number(e.id), e.event, e.data.verdict])).toEqual(
      verdicts.map((v, seq) => [seq, 'verdict', v]),
    );

    const recent = (await (await fetch(`${url}/verdicts?limit=3`)).json()) as {
      verdicts: FrameResult[];
    };
    expect(recent.verdicts.map((r) => r.seq)).toEqual([5, 6, 7]);
    expect((await fetch(`${url}/verdicts?limit=6`)).status).toBe(400);

    const health = (await (await fetch(`${url}/healthz`)).json()) as Record<string, unknown>;
    expect(health).toMatchObject({ status: 'ok', deviceId: 'line-1', cloudConnected: false });

    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('linesight_agent_verdicts_total{verdict="unknown"} 2');
    expect(metrics).toContain('linesight_agent_frames_total{kind="captured"} 3');
    expect(metrics).toContain('linesight_output_written_total{output="sse",kind="sse"} 8');
    expect(metrics).toContain('linesight_output_latency_ms_count{output="sse",kind="sse"} 8');
    expect(metrics).toContain('linesight_agent_frame_latency_ms_bucket{le="+Inf"} 8');
    expect(metrics).toContain('linesight_agent_model_swaps_total 1');
    expect((await fetch(`${url}/verdicts`, { method: 'POST' })).status).toBe(404);
  });

  it('resumes a reconnecting SSE client after Last-Event-ID', async () => {
    const local = await started();
    const url = local.httpUrl!;
    for (let seq = 10; seq < 14; seq++) local.publish(result(seq, 'good'));
    await waitForWritten(url, 4);
    const events = await readEvents(`${url}/verdicts/stream`, 2, { 'last-event-id': '11' });
    expect(events.map((e) => e.data.seq)).toEqual([12, 13]);
  });

  it('reports a failing output as degraded with its failures counted, the others still written', async () => {
    const local = await started([
      {
        kind: 'webhook',
        url: 'http://127.0.0.1:9/never',
        timeoutMs: 200,
        retryBackoff: { initialMs: 50, maxMs: 100 },
      },
    ]);
    const url = local.httpUrl!;
    for (let seq = 0; seq < 5; seq++) local.publish(result(seq, 'good'));
    await waitForWritten(url, 5);
    const deadline = Date.now() + 10_000;
    let health: { status?: string; outputsDown?: string[] } = {};
    while (health.status !== 'degraded' && Date.now() < deadline) {
      health = (await (await fetch(`${url}/healthz`)).json()) as typeof health;
    }
    expect(health).toMatchObject({ status: 'degraded', outputsDown: ['webhook'] });
    const [webhook] = local.telemetry() ?? [];
    expect(webhook).toMatchObject({ name: 'webhook', up: false, written: 0, outages: 1 });
    expect(webhook!.failures).toBeGreaterThanOrEqual(1);
    // What goes into telemetry matches the protocol schema (the link validates before publishing).
    for (const entry of local.telemetry() ?? [])
      expect(Value.Check(OutputTelemetrySchema, entry)).toBe(true);
  });

  it("shows a line guard's worker on /healthz, degraded while the worker crash-loops", async () => {
    const guard: LineGuardStatus = {
      workerPid: 4242,
      workerRestarts: 5,
      crashLoop: false,
      verdictBudgetMs: 800,
      unknownNoWorker: 30,
      unknownTimeout: 2,
      unknownWorkerExit: 1,
      lateResults: 1,
      handoverPending: 0,
      handoverDropped: 0,
    };
    const local = await started([], () => ({ ...status(), guard }));
    const health = async () =>
      (await (await fetch(`${local.httpUrl}/healthz`)).json()) as Record<string, unknown>;
    expect(await health()).toMatchObject({ status: 'ok', guard });
    guard.crashLoop = true;
    guard.workerPid = null;
    expect(await health()).toMatchObject({ status: 'degraded', guard: { crashLoop: true } });
  });
});

async function waitForWritten(url: string, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = await (await fetch(`${url}/metrics`)).text();
    if (text.includes(`linesight_output_written_total{output="sse",kind="sse"} ${n}`)) return;
    if (Date.now() > deadline) throw new Error(`sse did not write ${n}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
