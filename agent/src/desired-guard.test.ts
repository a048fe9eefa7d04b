import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  generateSigningKeyPair,
  isLinesightError,
  signDocument,
  type DesiredState,
  type SigningKeyPair,
  type TrustList,
} from '@linesight/protocol';
import { DesiredGuard } from './desired-guard.ts';
import { fillDisk, smallDisk } from './models/small-disk.ts';

const k1 = generateSigningKeyPair();
const k2 = generateSigningKeyPair();
const pub = (k: SigningKeyPair) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem });
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-guard-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function desired(
  revision: number,
  key: SigningKeyPair,
  opts: { ttlMs?: number; trust?: TrustList; issuedAt?: Date } = {},
): DesiredState {
  const issuedAt = opts.issuedAt ?? new Date();
  return signDocument<DesiredState>(
    {
      schema: 'linesight.desired/v1',
      deviceId: 'd1',
      revision,
      issuedAt: issuedAt.toISOString(),
      expiresAt: new Date(issuedAt.getTime() + (opts.ttlMs ?? 3_600_000)).toISOString(),
      keyId: key.keyId,
      model: null,
      ...(opts.trust ? { trust: opts.trust } : {}),
    },
    key,
  );
}

function trust(version: number, keys: SigningKeyPair[], signer: SigningKeyPair): TrustList {
  return signDocument<TrustList>(
    {
      schema: 'linesight.trust/v1',
      version,
      keys: keys.map(pub),
      issuedAt: new Date().toISOString(),
      keyId: signer.keyId,
    },
    signer,
  );
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isLinesightError(err) ? err.code : String(err);
  }
}

describe('DesiredGuard', () => {
  it('accepts newer revisions and re-deliveries, and rejects replays even after a restart', async () => {
    const path = join(dir, 'replay');
    const guard = await DesiredGuard.open(path, [pub(k1)]);
    const r1 = desired(1, k1);
    const r2 = desired(2, k1);
    expect(await codeOf(guard.check(r1))).toBe('ok');
    expect(await codeOf(guard.check(r2))).toBe('ok');
    expect(await codeOf(guard.check(r2))).toBe('ok');
    expect(await codeOf(guard.check(r1))).toBe('ERR_DESIRED_REPLAY');
    // A different document reusing the accepted revision is refused too.
    expect(await codeOf(guard.check(desired(2, k1)))).toBe('ERR_DESIRED_REPLAY');
    const reopened = await DesiredGuard.open(path, [pub(k1)]);
    expect(await codeOf(reopened.check(r1))).toBe('ERR_DESIRED_REPLAY');
    expect(await codeOf(reopened.check(r2))).toBe('ok');
  });

  it('rejects an expired document (freeze attack)', async () => {
    const guard = await DesiredGuard.open(join(dir, 'expiry'), [pub(k1)]);
    const old = desired(5, k1, { issuedAt: new Date(Date.now() - 7_200_000), ttlMs: 3_600_000 });
    expect(await codeOf(guard.check(old))).toBe('ERR_DESIRED_EXPIRED');
    expect(await codeOf(guard.check(desired(6, k1), new Date(Date.now() + 7_200_000)))).toBe(
      'ERR_DESIRED_EXPIRED',
    );
  });

  it('rejects altered, unsigned and foreign-key documents', async () => {
    const guard = await DesiredGuard.open(join(dir, 'forged'), [pub(k1)]);
    const doc = desired(1, k1);
    expect(await codeOf(guard.check({ ...doc, revision: 99 }))).toBe('ERR_SIGNATURE_INVALID');
    expect(await codeOf(guard.check(desired(2, k2)))).toBe('ERR_SIGNATURE_UNKNOWN_KEY');
    expect(await codeOf(guard.check({ ...desired(3, k2), keyId: k1.keyId }))).toBe(
      'ERR_SIGNATURE_INVALID',
    );
  });

  it('follows a key rotation through a trust list signed by a trusted key', async () => {
    const path = join(dir, 'rotation');
    const guard = await DesiredGuard.open(path, [pub(k1)]);
    // Step 1: new key announced, signed by the old one; the document itself is signed by the new key.
    expect(await codeOf(guard.check(desired(1, k2, { trust: trust(2, [k1, k2], k1) })))).toBe('ok');
    expect(guard.trustedKeys.map((k) => k.keyId)).toEqual([k1.keyId, k2.keyId]);
    // Step 2: old key retired by a list signed by the new key.
    expect(await codeOf(guard.check(desired(2, k2, { trust: trust(3, [k2], k2) })))).toBe('ok');
    expect(await codeOf(guard.check(desired(3, k1)))).toBe('ERR_SIGNATURE_UNKNOWN_KEY');
    // The trust survives a restart.
    const reopened = await DesiredGuard.open(path, [pub(k1)]);
    expect(reopened.trustVersion).toBe(3);
    // A trust list signed by an untrusted key is refused, and changes nothing.
    const rogue = generateSigningKeyPair();
    expect(
      await codeOf(reopened.check(desired(4, rogue, { trust: trust(9, [rogue], rogue) }))),
    ).toBe('ERR_SIGNATURE_UNKNOWN_KEY');
    expect(reopened.trustedKeys.map((k) => k.keyId)).toEqual([k2.keyId]);
  });
});

describe('DesiredGuard on a full disk', () => {
  it('accepts a newer document it cannot persist (a rollback must not wait for disk space) and still refuses replays', async () => {
    const disk = await smallDisk(64 * 1024);
    try {
      const guard = await DesiredGuard.open(disk.dir, [pub(k1)]);
      await guard.check(desired(1, k1));
      const failures: unknown[] = [];
      guard.onDiskFull = (err) => failures.push(err);
      if (disk.real) await fillDisk(join(disk.dir, 'filler'));
      await guard.check(desired(2, k1));
      if (disk.real) expect(failures).toHaveLength(1);
      const replay = await guard.check(desired(1, k1)).catch((err: unknown) => err);
      expect(isLinesightError(replay, 'ERR_DESIRED_REPLAY')).toBe(true);
    } finally {
      await disk.close();
    }
  });
});
