import { describe, expect, it } from 'vitest';
import { sameSecret } from './same-secret.ts';

describe('sameSecret', () => {
  it('matches equal secrets only, whatever their lengths', () => {
    expect(sameSecret('lsa_abc', 'lsa_abc')).toBe(true);
    expect(sameSecret('lsa_abd', 'lsa_abc')).toBe(false);
    expect(sameSecret('lsa_ab', 'lsa_abc')).toBe(false);
    expect(sameSecret('', 'lsa_abc')).toBe(false);
    expect(sameSecret('', '')).toBe(true);
  });
});
