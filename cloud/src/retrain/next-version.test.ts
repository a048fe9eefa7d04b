import { describe, expect, it } from 'vitest';
import { nextVersion } from './next-version.ts';

describe('nextVersion', () => {
  it('takes the next minor above every registered version', () => {
    expect(nextVersion(['1.0.0'])).toBe('1.1.0');
    expect(nextVersion(['1.0.0', '1.2.3', '0.9.0'])).toBe('1.3.0');
    expect(nextVersion(['2.0.0-rc.1', '1.9.9'])).toBe('2.1.0');
    expect(nextVersion(['1.10.0', '1.9.0'])).toBe('1.11.0');
  });

  it('refuses what is not a version', () => {
    expect(() => nextVersion(['one'])).toThrow(/not a semantic version/);
  });
});
