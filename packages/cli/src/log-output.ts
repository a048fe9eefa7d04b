import { Option } from 'commander';
import type { DestinationStream } from 'pino';
import pretty from 'pino-pretty';

/** `--log-pretty`: log lines for a person at a terminal instead of JSON. */
export function logPrettyOption(): Option {
  return new Option(
    '--log-pretty',
    'human-readable log lines (time, level, message, then the fields) instead of JSON, coloured on a terminal',
  );
}

/**
 * Where a command's pino logger writes: undefined (pino's JSON lines on stdout)
 * unless `--log-pretty` was given. The pretty stream is synchronous, so a line
 * logged just before exit is not lost, and keeps every field (device, model,
 * error code) after the message.
 */
export function logDestination(
  prettyLines: boolean | undefined,
  out: NodeJS.WritableStream = process.stdout,
): DestinationStream | undefined {
  if (prettyLines !== true) return undefined;
  return pretty({
    colorize: out === process.stdout && process.stdout.isTTY,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    sync: true,
    destination: out,
  });
}
