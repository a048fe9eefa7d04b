import type { IncomingMessage } from 'node:http';

/** The header a client or proxy may name its request with; the cloud echoes it on the answer. */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What a caller's id may look like: short, and safe in a log line and a header. */
const CALLER_ID = /^[\w.:-]{1,128}$/;

/**
 * Makes fastify's `genReqId`: the caller's `x-request-id` when it is a short
 * token (so a line in the access log can be matched with the client's or a
 * proxy's own), else `req-<n>` counting from 1 as fastify's default does.
 */
export function requestIdGenerator(): (raw: IncomingMessage) => string {
  let next = 0;
  return (raw) => {
    const given = raw.headers[REQUEST_ID_HEADER];
    return typeof given === 'string' && CALLER_ID.test(given)
      ? given
      : `req-${(++next).toString(36)}`;
  };
}
