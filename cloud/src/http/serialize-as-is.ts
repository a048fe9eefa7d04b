import type { FastifySerializerCompiler } from 'fastify';

/**
 * Route option for answers that a response schema documents (in /openapi.json,
 * checked by the REST contract test) but that are sent as JSON.stringify makes
 * them: wide answers (rollout status, the review queue) whose every field must
 * reach the client. fast-json-stringify, fastify's serializer, would drop a
 * field the schema does not name and fail on NaN where JSON.stringify writes null.
 */
export const serializeAsIs: { serializerCompiler: FastifySerializerCompiler<unknown> } = {
  serializerCompiler: () => (data: unknown) => JSON.stringify(data),
};
