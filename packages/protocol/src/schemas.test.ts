import { describe, expect, it } from 'vitest';
import { Value } from '@sinclair/typebox/value';
import { ModelRefSchema, isSemver } from './schemas.ts';

describe('isSemver', () => {
  it('accepts SemVer 2.0.0 versions, with pre-release and build metadata', () => {
    for (const v of [
      '0.0.0',
      '1.0.1',
      '10.20.30',
      '1.0.1+build.7',
      '1.0.0-rc.1',
      '1.0.0-alpha-a.b-c-somethinglong+build.1-aef.1-its-okay',
      '1.0.0-0.3.7',
      '1.0.0-x.7.z.92',
      '1.0.0+0.build.1-rc.10000aaa-kk-0.1',
      '1.0.0-0A.is.legal',
    ])
      expect([v, isSemver(v)]).toEqual([v, true]);
  });

  it('refuses empty identifiers, leading zeros and anything else', () => {
    for (const v of [
      '1.0.0-..',
      '1.0.0-',
      '1.0.0+',
      '1.0.0-rc..1',
      '1.0.0+build..7',
      '1.0.0-01',
      '01.0.0',
      '1.0',
      '1.0.0.0',
      'v1.0.0',
      '1.0.0 ',
      '1.0.0+build/7',
      `1.0.0-${'a'.repeat(60)}`,
    ])
      expect([v, isSemver(v)]).toEqual([v, false]);
  });

  it('is what the message schemas check', () => {
    expect(Value.Check(ModelRefSchema, { name: 'm', version: '1.0.1+build.7' })).toBe(true);
    expect(Value.Check(ModelRefSchema, { name: 'm', version: '1.0.0-..' })).toBe(false);
  });
});
