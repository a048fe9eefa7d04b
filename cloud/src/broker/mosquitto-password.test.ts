import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkMosquittoPassword,
  isMosquittoPasswordHash,
  mosquittoPasswordHash,
} from './mosquitto-password.ts';

const passwd = spawnSync('mosquitto_passwd', ['-h'], { stdio: 'ignore' }).error === undefined;

describe('Mosquitto $7$ password hashes', () => {
  it('has the format of mosquitto_passwd: iterations, 12-byte salt, 64-byte PBKDF2-SHA512', () => {
    const hash = mosquittoPasswordHash('lsd_secret');
    const [, type, iterations, salt, digest] = hash.split('$');
    expect([type, iterations]).toEqual(['7', '101']);
    expect(Buffer.from(salt!, 'base64')).toHaveLength(12);
    expect(Buffer.from(digest!, 'base64')).toHaveLength(64);
    expect(isMosquittoPasswordHash(hash)).toBe(true);
    expect(checkMosquittoPassword(hash, 'lsd_secret')).toBe(true);
    expect(checkMosquittoPassword(hash, 'lsd_secreT')).toBe(false);
    // A fresh salt each time.
    expect(mosquittoPasswordHash('lsd_secret')).not.toBe(hash);
  });

  it('refuses what is not a $7$ hash', () => {
    expect(isMosquittoPasswordHash('$6$abc$def')).toBe(false);
    expect(isMosquittoPasswordHash('plain')).toBe(false);
    expect(checkMosquittoPassword('plain', 'plain')).toBe(false);
  });

  it.runIf(passwd)('gives what mosquitto_passwd writes for the same salt', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'linesight-passwd-'));
    try {
      const file = join(dir, 'passwords');
      const made = spawnSync('mosquitto_passwd', ['-c', '-b', file, 'press-1', 'lsd_x:y z'], {
        encoding: 'utf8',
      });
      expect(made.status, made.stderr).toBe(0);
      const line = (await readFile(file, 'utf8')).trim();
      const theirs = line.slice('press-1:'.length);
      const salt = Buffer.from(theirs.split('$')[3]!, 'base64');
      expect(mosquittoPasswordHash('lsd_x:y z', { salt })).toBe(theirs);
      expect(checkMosquittoPassword(theirs, 'lsd_x:y z')).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
