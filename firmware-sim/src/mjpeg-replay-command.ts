import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** What the camera process sends: see mjpeg-replay-main.ts. */
export interface MjpegReplayCommandOptions {
  /** Folder of *.jpg frames, sent in name order and over again. */
  framesDir: string;
  /** Frames per second. */
  fps: number;
  /** File the process appends each slot it skipped to (`late|blocked DUE_MS`). */
  ledger?: string;
}

/**
 * The shell command of a camera process that replays `framesDir` as MJPEG on stdout
 * (mjpeg-replay-main.ts, run by this Node through tsx), for an agent's
 * `--camera mjpeg-exec:<command>`. For a source checkout: it needs tsx, which a packed
 * release does not ship, so it is resolved only when a command is made.
 */
export function mjpegReplayCommand(o: MjpegReplayCommandOptions): string {
  const main = fileURLToPath(new URL('./mjpeg-replay-main.ts', import.meta.url));
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;
  return [
    'exec',
    shellQuote(process.execPath),
    '--import',
    shellQuote(tsx),
    shellQuote(main),
    '--frames',
    shellQuote(o.framesDir),
    '--fps',
    String(o.fps),
    ...(o.ledger === undefined ? [] : ['--ledger', shellQuote(o.ledger)]),
  ].join(' ');
}

/** Single-quoted for the shell. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}
