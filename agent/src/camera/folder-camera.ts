import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { LinesightError } from '@linesight/protocol';
import { separateMasks } from '@linesight/vision';
import type { Camera, FrameSink } from './camera.ts';
import { deliverToSink, reportToSink } from './sink-guard.ts';
import { PacedLoop } from './paced-loop.ts';

// Formats sharp decodes; BMP is left out because sharp cannot read it.
const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff']);

/** Options of a folder camera. */
export interface FolderCameraOptions {
  dir: string;
  /** Frames per second, > 0. */
  fps: number;
  /** Loop over the folder forever (default) or stop after one pass. */
  loop?: boolean;
  /**
   * File extensions to replay, without dots (default jpg, jpeg, png, webp, tif,
   * tiff). Masks (a .png beside a .jpg of the same stem) are never replayed.
   */
  ext?: string[];
}

/**
 * Replays the images of a folder in name order (by code point, so zero-pad
 * numbered names) at a fixed rate, looping. A file that cannot be read is
 * reported to the sink as ERR_CAMERA and skipped; its time slot stays empty.
 */
export class FolderCamera implements Camera {
  readonly #o: FolderCameraOptions;
  readonly #loop: PacedLoop;
  #files: string[] = [];
  #seq = 0;
  // Index of the next file to read (counts up across loops).
  #cursor = 0;
  #sink: FrameSink | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;

  /** Checks `fps` (throws ERR_CAMERA); does not touch the folder yet. */
  constructor(options: FolderCameraOptions) {
    if (!(Number.isFinite(options.fps) && options.fps > 0)) {
      throw new LinesightError('ERR_CAMERA', `folder camera fps must be > 0, got ${options.fps}`);
    }
    this.#o = options;
    this.#loop = new PacedLoop(
      options.fps,
      () => this.#readNext(),
      () => this.#o.loop !== false || this.#cursor < this.#files.length,
    );
  }

  get description(): string {
    return `folder(${this.#o.dir}, ${this.#files.length} images @ ${this.#o.fps} fps)`;
  }

  get framesDelivered(): number {
    return this.#seq;
  }

  /** Lists the folder (rejects with ERR_CAMERA when it holds no images) and starts replaying at once. */
  async start(sink: FrameSink): Promise<void> {
    if (this.#closed) throw new LinesightError('ERR_CAMERA', 'folder camera is closed');
    if (this.#sink !== undefined) {
      throw new LinesightError('ERR_CAMERA', 'folder camera is already started');
    }
    this.#sink = sink;
    let names: string[];
    try {
      names = await readdir(this.#o.dir);
    } catch (cause) {
      throw new LinesightError('ERR_CAMERA', `cannot list folder ${this.#o.dir}`, { cause });
    }
    // Code-point order, independent of the machine's locale.
    const extensions = this.#o.ext
      ? new Set(this.#o.ext.map((e) => `.${e.replace(/^\./, '').toLowerCase()}`))
      : IMAGE_EXTENSIONS;
    // Masks beside their images (the dataset layout) are not frames.
    names = separateMasks(
      names.filter((n) => extensions.has(extname(n).toLowerCase())),
    ).images.sort();
    if (names.length === 0) {
      throw new LinesightError(
        'ERR_CAMERA',
        `folder ${this.#o.dir} holds no images (${[...extensions].join(', ')}; masks beside images do not count)`,
      );
    }
    this.#files = names.map((n) => join(this.#o.dir, n));
    this.#loop.start();
  }

  /** Stops the timer and waits for a file being read, which is then dropped; idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    await this.#loop.stop();
  }

  // Never rejects: read failures go to the sink.
  async #readNext(): Promise<void> {
    const path = this.#files[this.#cursor % this.#files.length] as string;
    this.#cursor += 1;
    const capturedAt = new Date();
    let image: Buffer;
    try {
      image = await readFile(path);
      if (image.length === 0) throw new Error('file is empty');
    } catch (cause) {
      if (!this.#closed) {
        reportToSink(
          this.#sink,
          new LinesightError('ERR_CAMERA', `cannot read ${path}; skipped`, {
            cause,
            details: { path },
          }),
        );
      }
      return;
    }
    if (this.#closed) return;
    const seq = this.#seq++;
    deliverToSink(this.#sink, { seq, capturedAt, image });
  }
}
