import { InvalidArgumentError, Option } from 'commander';
import { LOG_LEVELS } from '@linesight/protocol';

/** `--log-level <level>`: commander refuses an unknown level, listing the valid ones. */
export function logLevelOption(defaultLevel: string, description = 'log level'): Option {
  return new Option('--log-level <level>', description).choices(LOG_LEVELS).default(defaultLevel);
}

/** Parses a TCP port (0 = any free port). */
export function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('expected a port number 0-65535 (0 picks a free port)');
  return n;
}

/** Parses a positive integer. */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

/** Parses a positive number. */
export function parsePositive(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a number above 0');
  return n;
}

/** Parses a share from 0 to 1. */
export function parseShare(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new InvalidArgumentError('expected a number from 0 to 1');
  return n;
}

/** Parses `jpg,png` (dots optional) into lower-case extensions. */
export function parseExtensions(value: string): string[] {
  const list = value
    .split(',')
    .map((e) => e.trim().replace(/^\./, '').toLowerCase())
    .filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError('expected extensions, e.g. jpg,png');
  return list;
}
