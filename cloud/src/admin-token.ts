import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '@linesight/durable-fs';
import { join } from 'node:path';

/** Where the admin token came from, so the operator can be told. */
export interface AdminTokenSource {
  token: string;
  source: 'config' | 'file' | 'created';
  path?: string;
}

/**
 * Resolves the admin token: the configured one, else `<dataDir>/admin-token`,
 * else a new random token written there with mode 0600.
 */
export async function resolveAdminToken(
  dataDir: string,
  configured?: string,
): Promise<AdminTokenSource> {
  if (configured !== undefined) return { token: configured, source: 'config' };
  const path = join(dataDir, 'admin-token');
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if (token.length >= 16) return { token, source: 'file', path };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const token = `lsa_${randomBytes(24).toString('base64url')}`;
  // Whole or absent after a crash, never a truncated token that no longer matches the one logged.
  await writeFileAtomic(path, `${token}\n`, { mode: 0o600 });
  return { token, source: 'created', path };
}
