import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { requestIdGenerator } from './request-ids.ts';

const withHeader = (value?: string | string[]) =>
  ({ headers: value === undefined ? {} : { 'x-request-id': value } }) as IncomingMessage;

describe('requestIdGenerator', () => {
  it("keeps a caller's short id and numbers the rest", () => {
    const id = requestIdGenerator();
    expect(id(withHeader('fuzz-42:a.b_c'))).toBe('fuzz-42:a.b_c');
    expect(id(withHeader())).toBe('req-1');
    expect(id(withHeader('has space'))).toBe('req-2');
    expect(id(withHeader('x'.repeat(129)))).toBe('req-3');
    expect(id(withHeader(['a', 'b']))).toBe('req-4');
    expect(id(withHeader('x'.repeat(128)))).toBe('x'.repeat(128));
  });
});
