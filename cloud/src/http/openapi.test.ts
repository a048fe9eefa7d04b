import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { createConfig, lintFromString } from '@redocly/openapi-core';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cloud } from '../cloud.ts';

interface Operation {
  operationId?: string;
  security?: Record<string, string[]>[];
  responses: Record<string, unknown>;
}
interface OpenApiDoc {
  openapi: string;
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string; scheme: string }> };
  security?: Record<string, string[]>[];
}

let dir: string;
let cloud: Cloud;
let text: string;
let doc: OpenApiDoc;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-openapi-'));
  cloud = new Cloud({ httpPort: 0, mqttPort: 0, dataDir: dir }, pino({ level: 'silent' }));
  await cloud.start();
  const res = await fetch(`${cloud.urls.http}/openapi.json`);
  expect(res.status).toBe(200);
  text = await res.text();
  doc = JSON.parse(text) as OpenApiDoc;
});

afterAll(async () => {
  await cloud.close();
  await rm(dir, { recursive: true, force: true });
});

function operations(): [string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]): [string, Operation] => [
      `${method.toUpperCase()} ${path}`,
      op,
    ]),
  );
}

function securityOf(route: string): string[] {
  const op = operations().find(([name]) => name === route)?.[1];
  expect(op, route).toBeDefined();
  return (op?.security ?? doc.security ?? []).flatMap((s) => Object.keys(s)).sort();
}

describe('/openapi.json', () => {
  it('is a valid OpenAPI document (swagger-parser)', async () => {
    // validate() dereferences in place: hand it a copy.
    await expect(SwaggerParser.validate(JSON.parse(text) as never)).resolves.toBeDefined();
  });

  it('passes redocly lint (recommended rules) with no errors and no warnings', async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({
      source: text,
      absoluteRef: `${cloud.urls.http}/openapi.json`,
      config,
    });
    // The open probes answer 200/503 only: they have no 4xx to document.
    const probes = ['/healthz', '/readyz', '/metrics'].map((p) => `#/paths/~1${p.slice(1)}/`);
    const described = problems
      .filter(
        (p) =>
          !(
            p.ruleId === 'operation-4xx-response' &&
            probes.some((probe) => p.location[0]?.pointer?.startsWith(probe))
          ),
      )
      .map((p) => `${p.severity} ${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`);
    expect(described).toEqual([]);
  });

  it('names the server it came from', () => {
    expect(doc.servers?.map((s) => s.url)).toEqual([cloud.advertised.http]);
  });

  it('gives every operation a unique operationId and a documented 4xx answer', () => {
    const ids = operations().map(([, op]) => op.operationId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const [name, op] of operations()) {
      if (['GET /healthz', 'GET /readyz', 'GET /metrics'].includes(name)) continue;
      expect(
        Object.keys(op.responses).some((s) => s.startsWith('4')),
        name,
      ).toBe(true);
    }
  });

  it('documents the busy answer of an artifact download: 503 with Retry-After', () => {
    const op = operations().find(
      ([name]) => name === 'GET /v1/models/{name}/{version}/artifact',
    )?.[1];
    expect(op?.responses['503']).toMatchObject({
      headers: { 'retry-after': { schema: { type: 'integer' } } },
    });
  });

  it('says truthfully which credentials each route takes', () => {
    expect(doc.components.securitySchemes).toEqual({
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      device: expect.objectContaining({ type: 'http', scheme: 'basic' }),
    });
    expect(securityOf('GET /healthz')).toEqual([]);
    expect(securityOf('GET /readyz')).toEqual([]);
    expect(securityOf('GET /metrics')).toEqual([]);
    expect(securityOf('GET /v1/models/{name}/{version}/artifact')).toEqual(['bearer', 'device']);
    expect(securityOf('GET /v1/devices')).toEqual(['bearer']);
    expect(securityOf('POST /v1/models')).toEqual(['bearer']);
  });
});

describe('/metrics behind a token (metricsAuth: token)', () => {
  let closedDir: string;
  let closed: Cloud;

  beforeAll(async () => {
    closedDir = await mkdtemp(join(tmpdir(), 'linesight-openapi-metrics-'));
    closed = new Cloud(
      { httpPort: 0, mqttPort: 0, dataDir: closedDir, metricsAuth: 'token' },
      pino({ level: 'silent' }),
    );
    await closed.start();
  });

  afterAll(async () => {
    await closed.close();
    await rm(closedDir, { recursive: true, force: true });
  });

  it('is open by default, as the document says', async () => {
    expect(cloud.config.metricsAuth).toBe('open');
    expect((await fetch(`${cloud.urls.http}/metrics`)).status).toBe(200);
    expect(securityOf('GET /metrics')).toEqual([]);
  });

  it('needs a token when asked to, and the document says so', async () => {
    const unauthenticated = await fetch(`${closed.urls.http}/metrics`);
    expect(unauthenticated.status).toBe(401);
    const authorized = await fetch(`${closed.urls.http}/metrics`, {
      headers: { authorization: `Bearer ${closed.adminToken.token}` },
    });
    expect(authorized.status).toBe(200);
    expect(await authorized.text()).toContain('linesight_devices');
    const closedDoc = (await (
      await fetch(`${closed.urls.http}/openapi.json`)
    ).json()) as OpenApiDoc;
    await expect(
      SwaggerParser.validate(structuredClone(closedDoc) as never),
    ).resolves.toBeDefined();
    const op = closedDoc.paths['/metrics']?.get;
    expect(op?.security?.flatMap((s) => Object.keys(s))).toEqual(['bearer']);
    expect(Object.keys(op?.responses ?? {})).toContain('401');
    expect(JSON.stringify(closedDoc.paths['/healthz']?.get?.security)).toBe('[]');
  });
});
