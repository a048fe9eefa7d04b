import { LinesightError, type ErrorCode } from './errors.ts';

/** The log levels every Linesight process accepts (pino's). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** One of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** True when `value` is a valid log level. */
export function isLogLevel(value: unknown): value is LogLevel {
  return (LOG_LEVELS as readonly unknown[]).includes(value);
}

/**
 * Checks a log level before a logger is built from it (pino's own error names
 * no valid level); `code` is the app's config error code.
 */
export function checkLogLevel(value: string, code: ErrorCode): LogLevel {
  if (isLogLevel(value)) return value;
  throw new LinesightError(
    code,
    `unknown log level ${JSON.stringify(value)}; valid levels: ${LOG_LEVELS.join(', ')}`,
  );
}
