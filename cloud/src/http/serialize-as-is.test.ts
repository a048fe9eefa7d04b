import Fastify from 'fastify';
import { Type } from '@sinclair/typebox';
import { afterAll, describe, expect, it } from 'vitest';
import { serializeAsIs } from './serialize-as-is.ts';

const app = Fastify();
const schema = { response: { 200: Type.Object({ a: Type.Number() }) } };
const answer = () => ({ a: Number.NaN, b: 'kept' });
app.get('/as-is', { ...serializeAsIs, schema }, async () => answer());
app.get('/schema', { schema }, async () => answer());

afterAll(() => app.close());

describe('serializeAsIs', () => {
  it('sends the whole answer as JSON.stringify writes it, where the schema would filter and fail', async () => {
    const asIs = await app.inject({ url: '/as-is' });
    expect([asIs.statusCode, asIs.json()]).toEqual([200, { a: null, b: 'kept' }]);
    // What the route would do without it: a 500 on NaN (and `b` dropped).
    expect((await app.inject({ url: '/schema' })).statusCode).toBe(500);
  });
});
