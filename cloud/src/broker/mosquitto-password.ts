import { pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/** Iterations of Mosquitto 2.0's `$7$` hashes, as `mosquitto_passwd` writes them by default. */
export const MOSQUITTO_HASH_ITERATIONS = 101;

const SALT_BYTES = 12;
const HASH_BYTES = 64;
const FORMAT = /^\$7\$(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

/**
 * A password as a line of Mosquitto 2.0's `password_file` holds it (after
 * `username:`): `$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>`,
 * the format `mosquitto_passwd` writes. Device secrets are 256 random bits, so
 * the default 101 iterations are no weakness, and they keep the broker's check
 * of every live session at a reload cheap.
 */
export function mosquittoPasswordHash(
  password: string,
  options: { salt?: Buffer; iterations?: number } = {},
): string {
  const salt = options.salt ?? randomBytes(SALT_BYTES);
  const iterations = options.iterations ?? MOSQUITTO_HASH_ITERATIONS;
  const hash = pbkdf2Sync(password, salt, iterations, HASH_BYTES, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** True when `password` matches a `$7$` hash (as Mosquitto checks a login). */
export function checkMosquittoPassword(hash: string, password: string): boolean {
  const m = FORMAT.exec(hash);
  if (m === null) return false;
  const expected = Buffer.from(m[3]!, 'base64');
  const actual = pbkdf2Sync(
    password,
    Buffer.from(m[2]!, 'base64'),
    Number(m[1]),
    expected.length,
    'sha512',
  );
  return expected.length > 0 && timingSafeEqual(expected, actual);
}

/** True when `hash` has the `$7$` format (a registry value can be written to the file as it is). */
export function isMosquittoPasswordHash(hash: string): boolean {
  return FORMAT.test(hash);
}
