import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { generateSigningKeyPair, keyIdOf, type SigningKeyPair } from '@linesight/protocol';

/** Loads the cloud's Ed25519 manifest-signing key, creating it (mode 0600) on first start. */
export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKeyPair> {
  const path = join(dataDir, 'keys', 'signing-key.json');
  try {
    const stored = JSON.parse(await readFile(path, 'utf8')) as SigningKeyPair;
    return { ...stored, keyId: keyIdOf(stored.publicKeyPem) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const pair = generateSigningKeyPair();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, JSON.stringify(pair, null, 2), { mode: 0o600 });
  await chmod(path, 0o600);
  return pair;
}
