/** One warn-or-worse log line as a benchmark keeps it. */
export interface KeptLogLine {
  level: 'warn' | 'error' | 'fatal';
  msg: string;
  /** The line's `event` or `component`, when it has one. */
  source?: string;
  /** Milliseconds since the collector was made. */
  atMs: number;
}

/** What a benchmark reports of the warnings and errors its cloud logged. */
export interface LogWarningsSummary {
  warn: number;
  error: number;
  fatal: number;
  /** The first few lines, in order. */
  first: KeptLogLine[];
  /** Lines per message text (the most frequent ones, at most `maxMessages`). */
  byMessage: Record<string, number>;
}

const LEVELS: Record<number, KeptLogLine['level']> = { 40: 'warn', 50: 'error', 60: 'fatal' };

/**
 * A pino destination for a benchmark's in-process cloud: counts the warn,
 * error and fatal lines, keeps the first `keep` and a count per message, and
 * echoes every line to `echo` (stderr by default, so `--json` stays one object
 * on stdout). Lines below warn, and lines that are not pino JSON, are echoed only.
 */
export class LogWarnings {
  readonly #keep: number;
  readonly #maxMessages: number;
  readonly #echo: ((line: string) => void) | undefined;
  readonly #startMs = Date.now();
  readonly #counts = { warn: 0, error: 0, fatal: 0 };
  readonly #first: KeptLogLine[] = [];
  readonly #byMessage = new Map<string, number>();

  constructor(
    options: { keep?: number; maxMessages?: number; echo?: ((line: string) => void) | null } = {},
  ) {
    this.#keep = options.keep ?? 10;
    this.#maxMessages = options.maxMessages ?? 20;
    this.#echo =
      options.echo === null
        ? undefined
        : (options.echo ?? ((line: string) => void process.stderr.write(line)));
  }

  /** pino's destination interface. */
  write(line: string): void {
    this.#echo?.(line);
    let entry: { level?: unknown; msg?: unknown; event?: unknown; component?: unknown };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      return;
    }
    const level = typeof entry.level === 'number' ? LEVELS[entry.level] : undefined;
    if (level === undefined) return;
    this.#counts[level]++;
    const msg = typeof entry.msg === 'string' ? entry.msg : '';
    const source =
      typeof entry.event === 'string'
        ? entry.event
        : typeof entry.component === 'string'
          ? entry.component
          : undefined;
    if (this.#first.length < this.#keep)
      this.#first.push({
        level,
        msg,
        ...(source === undefined ? {} : { source }),
        atMs: Date.now() - this.#startMs,
      });
    // Bounded: a new message beyond the limit is counted in the totals only.
    const seen = this.#byMessage.get(msg);
    if (seen !== undefined) this.#byMessage.set(msg, seen + 1);
    else if (this.#byMessage.size < 1000) this.#byMessage.set(msg, 1);
  }

  /** The counts so far, the first lines and the most frequent messages. */
  summary(): LogWarningsSummary {
    const byMessage = Object.fromEntries(
      [...this.#byMessage].sort((a, b) => b[1] - a[1]).slice(0, this.#maxMessages),
    );
    return { ...this.#counts, first: [...this.#first], byMessage };
  }
}
