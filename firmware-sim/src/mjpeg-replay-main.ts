// A camera as its own process: pre-rendered JPEG frames sent at a fixed rate as an MJPEG
// stream on stdout, for an agent's `--camera mjpeg-exec:...`. Usage:
//   node --import tsx mjpeg-replay-main.ts --frames DIR --fps N [--ledger FILE]
// DIR holds the frames (*.jpg, sent in name order and over again). With --ledger, each
// skipped slot is appended to FILE as `late|blocked DUE_MS` (see MjpegReplay).
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { MjpegReplay } from './mjpeg-replay.ts';

const { values } = parseArgs({
  options: {
    frames: { type: 'string' },
    fps: { type: 'string' },
    ledger: { type: 'string' },
  },
});
const problems: string[] = [];
const fps = Number(values.fps);
if (values.frames === undefined) problems.push('--frames DIR is required');
if (!(Number.isFinite(fps) && fps > 0)) problems.push('--fps must be a number > 0');
let frames: Buffer[] = [];
if (values.frames !== undefined) {
  try {
    frames = readdirSync(values.frames)
      .filter((name) => name.endsWith('.jpg'))
      .sort()
      .map((name) => readFileSync(join(values.frames!, name)));
    if (frames.length === 0) problems.push(`no *.jpg in ${values.frames}`);
  } catch (err) {
    problems.push(`cannot read ${values.frames}: ${(err as Error).message}`);
  }
}
if (problems.length > 0) {
  process.stderr.write(`mjpeg-replay: ${problems.join('; ')}\n`);
  process.exit(2);
}

const ledger = values.ledger;
const replay = new MjpegReplay({
  frames,
  fps,
  write: (part) => process.stdout.write(part),
  drained: async () => {
    await once(process.stdout, 'drain');
  },
  onMissed: (dueMs, cause) => {
    if (ledger !== undefined) appendFileSync(ledger, `${cause} ${Math.round(dueMs)}\n`);
  },
});
// The reader went away (EPIPE): a camera without a reader has nothing to do.
process.stdout.on('error', () => {
  replay.close();
  process.exit(0);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    replay.close();
    process.exit(0);
  });
}
replay.start();
