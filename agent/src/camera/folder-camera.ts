import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { LinesightError } from '@linesight/protocol';
import type { Camera, FrameSink } from './camera.ts';

const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff']);

/** Options of a folder camera. */
export interface FolderCameraOptions {
  dir: string;
  fps: number;
  /** Loop over the folder forever (default) or stop after one pass. */
  loop?: boolean;
}

/** Replays the images of a folder in name order at a fixed rate, looping. */
export class FolderCamera implements Camera {
  readonly #o: FolderCameraOptions;
  #files: string[] = [];
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #closed = false;

  constructor(options: FolderCameraOptions) {
    this.#o = options;
  }

  get description(): string {
    return `folder(${this.#o.dir}, ${this.#files.length} images @ ${this.#o.fps} fps)`;
  }

  get framesDelivered(): number {
    return this.#seq;
  }

  async start(sink: FrameSink): Promise<void> {
    const names = (await readdir(this.#o.dir))
      .filter((n) => IMAGE_EXTENSIONS.has(extname(n).toLowerCase()))
      .sort();
    if (names.length === 0)
      throw new LinesightError('ERR_CAMERA', `folder ${this.#o.dir} holds no images`);
    this.#files = names.map((n) => join(this.#o.dir, n));
    const startedAt = Date.now();
    const periodMs = 1000 / this.#o.fps;
    const tick = () => {
      if (this.#closed) return;
      const index = this.#seq;
      if (this.#o.loop === false && index >= this.#files.length) return;
      const path = this.#files[index % this.#files.length] as string;
      this.#inFlight = readFile(path)
        .then(
          (image) => {
            if (this.#closed) return;
            sink.frame({ seq: this.#seq++, capturedAt: new Date(), image });
          },
          (err: unknown) => {
            sink.error(new LinesightError('ERR_CAMERA', `cannot read ${path}`, { cause: err }));
          },
        )
        .finally(() => {
          if (this.#closed) return;
          const due = startedAt + (index + 1) * periodMs;
          this.#timer = setTimeout(tick, Math.max(0, due - Date.now()));
        });
    };
    tick();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#inFlight;
  }
}
