/** Why the parser dropped bytes that looked like the start of a frame. */
export type MjpegDropReason =
  /** The frame grew past `maxFrameBytes`; its bytes were discarded as they came. */
  | 'oversize'
  /** A new frame (SOI) or the end of the stream came before the frame's EOI. */
  | 'truncated'
  /** The bytes after SOI do not follow JPEG marker structure. */
  | 'corrupt';

/** A dropped frame: why, and how many of its bytes the parser saw. */
export interface MjpegDrop {
  reason: MjpegDropReason;
  bytes: number;
}

/** Options of an MJPEG stream parser. */
export interface MjpegParserOptions {
  /**
   * Called with each complete JPEG (SOI..EOI), a fresh copy the caller may keep, and what
   * the multipart headers before it said.
   */
  onFrame: (jpeg: Buffer, part: MjpegPartInfo) => void;
  /** Called for each dropped frame. */
  onDrop?: (drop: MjpegDrop) => void;
  /** Largest frame kept, in bytes (default 16 MiB); larger frames are dropped as 'oversize'. */
  maxFrameBytes?: number;
}

/** What the bytes before a frame (a multipart part's headers) said about it. */
export interface MjpegPartInfo {
  /**
   * Capture time from an `X-Timestamp: SECONDS[.FRACTION]` header (as mjpg-streamer and
   * other IP-camera servers send it), in ms of whatever clock the camera used; absent without one.
   */
  timestampMs?: number;
}

/** Bytes between two frames kept for header parsing; a part's headers are far shorter. */
const MAX_HEADER_BYTES = 1024;

const X_TIMESTAMP = /(?:^|\r?\n)x-timestamp:[ \t]*(\d{1,12})(?:\.(\d{1,9}))?[ \t]*\r?\n/i;

/** The `X-Timestamp` of a part's headers, in ms; undefined when there is none. */
export function partTimestampMs(headers: string): number | undefined {
  const m = X_TIMESTAMP.exec(headers);
  if (m === null) return undefined;
  const fraction = (m[2] ?? '').padEnd(3, '0').slice(0, 3);
  return Number(m[1]) * 1000 + Number(fraction);
}

/** Counters of an MJPEG parser. */
export interface MjpegParserStats {
  frames: number;
  droppedOversize: number;
  droppedTruncated: number;
  droppedCorrupt: number;
  /** Bytes outside any frame: multipart boundaries and headers, garbage. */
  bytesSkipped: number;
}

/** Default `maxFrameBytes`: far above any MJPEG frame a line camera sends (4K at q=1 is ~5 MiB). */
export const DEFAULT_MAX_MJPEG_FRAME_BYTES = 16 * 1024 * 1024;

const enum State {
  /** Outside a frame, looking for SOI (FF D8). */
  Seek,
  /** Seek, having just seen an FF. */
  SeekFF,
  /** In a frame, between segments: expecting FF. */
  Marker,
  /** Having seen FF between segments: expecting a marker code (more FF are fill). */
  MarkerCode,
  /** First byte of a segment length. */
  Length1,
  /** Second byte of a segment length. */
  Length2,
  /** Inside a segment's payload. */
  Payload,
  /** Entropy-coded data after SOS: scanning for a marker. */
  Entropy,
  /** Entropy data, having just seen an FF. */
  EntropyFF,
}

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;

// Markers without a length field: SOI, EOI, RST0..7 and TEM.
function isStandalone(code: number): boolean {
  return code === 0x01 || (code >= 0xd0 && code <= 0xd9);
}

/**
 * Splits an MJPEG byte stream (concatenated JPEGs, or multipart/x-mixed-replace
 * parts with boundaries and headers between them) into JPEG frames.
 *
 * It follows JPEG marker structure rather than searching for FF D9, so an EOI
 * inside a segment (an EXIF thumbnail) does not end a frame early, and byte
 * stuffing (FF 00) and restart markers in entropy data are understood.
 * Memory stays bounded by `maxFrameBytes`: a larger frame is dropped and
 * reported, and parsing resynchronizes on the next frame.
 */
export class MjpegParser {
  readonly #onFrame: (jpeg: Buffer, part: MjpegPartInfo) => void;
  readonly #onDrop: ((drop: MjpegDrop) => void) | undefined;
  readonly #maxFrameBytes: number;
  #state = State.Seek;
  // Bytes of the current frame from earlier chunks (copies), and their total.
  #parts: Buffer[] = [];
  #partsBytes = 0;
  // The current frame exceeded maxFrameBytes: follow its structure, keep nothing.
  #discarding = false;
  #discardedBytes = 0;
  #segmentHigh = 0;
  #payloadLeft = 0;
  #payloadIsSos = false;
  // The newest bytes seen outside a frame (a part's headers), at most MAX_HEADER_BYTES.
  #between: Buffer[] = [];
  #betweenBytes = 0;
  #part: MjpegPartInfo = {};
  #stats: MjpegParserStats = {
    frames: 0,
    droppedOversize: 0,
    droppedTruncated: 0,
    droppedCorrupt: 0,
    bytesSkipped: 0,
  };

  /** Checks `maxFrameBytes` (throws RangeError when it is below 4 bytes). */
  constructor(options: MjpegParserOptions) {
    const max = options.maxFrameBytes ?? DEFAULT_MAX_MJPEG_FRAME_BYTES;
    if (!(Number.isSafeInteger(max) && max >= 4)) {
      throw new RangeError(`maxFrameBytes must be an integer >= 4, got ${max}`);
    }
    this.#onFrame = options.onFrame;
    this.#onDrop = options.onDrop;
    this.#maxFrameBytes = max;
  }

  /** Counters since construction. */
  get stats(): Readonly<MjpegParserStats> {
    return { ...this.#stats };
  }

  /** Bytes held for the frame in progress; never more than `maxFrameBytes`. */
  get bufferedBytes(): number {
    return this.#partsBytes;
  }

  /** True while a frame has started and not yet ended. */
  get inFrame(): boolean {
    return this.#state !== State.Seek && this.#state !== State.SeekFF;
  }

  /** Parses the next bytes of the stream; calls `onFrame`/`onDrop` synchronously. */
  push(chunk: Uint8Array): void {
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // Start of the current frame within `buf` (0 when it began in an earlier chunk).
    let frameStart = 0;
    let i = 0;
    const n = buf.length;
    while (i < n) {
      switch (this.#state) {
        case State.Seek: {
          const ff = buf.indexOf(0xff, i);
          if (ff < 0) {
            this.#stats.bytesSkipped += n - i;
            this.#keepBetween(buf, i, n);
            i = n;
          } else {
            this.#stats.bytesSkipped += ff - i;
            this.#keepBetween(buf, i, ff);
            i = ff + 1;
            this.#state = State.SeekFF;
          }
          break;
        }
        case State.SeekFF: {
          const b = buf[i] as number;
          if (b === SOI) {
            // i === 0: the SOI's FF ended the previous chunk.
            frameStart = Math.max(i - 1, 0);
            this.#beginFrame(i === 0);
            i += 1;
          } else {
            this.#stats.bytesSkipped += 1; // The FF before `b`.
            if (b === 0xff) i += 1;
            else this.#state = State.Seek; // Seek counts `b`.
          }
          break;
        }
        case State.Marker: {
          if (buf[i] !== 0xff) {
            frameStart = this.#drop('corrupt', frameStart, i);
            this.#state = State.Seek;
            break; // Re-examine this byte outside a frame.
          }
          this.#state = State.MarkerCode;
          i += 1;
          break;
        }
        case State.MarkerCode:
        case State.EntropyFF: {
          const code = buf[i] as number;
          const inEntropy = this.#state === State.EntropyFF;
          if (code === 0xff) {
            i += 1; // Fill byte.
          } else if (inEntropy && (code === 0x00 || (code >= 0xd0 && code <= 0xd7))) {
            this.#state = State.Entropy; // Stuffed FF or restart marker.
            i += 1;
          } else if (code === EOI) {
            i += 1;
            this.#endFrame(buf, frameStart, i);
            frameStart = i;
          } else if (code === SOI) {
            // A new frame before this one ended: drop the old one, start over at
            // this SOI, whose FF is at i - 1 (-1: the last byte of the parts).
            this.#drop('truncated', frameStart, i - 1);
            frameStart = Math.max(i - 1, 0);
            this.#beginFrame(i === 0);
            i += 1;
          } else if (code === 0x00) {
            frameStart = this.#drop('corrupt', frameStart, i);
            this.#state = State.Seek;
          } else if (isStandalone(code)) {
            this.#state = State.Marker;
            i += 1;
          } else {
            this.#payloadIsSos = code === SOS;
            this.#state = State.Length1;
            i += 1;
          }
          break;
        }
        case State.Length1:
          this.#segmentHigh = buf[i] as number;
          this.#state = State.Length2;
          i += 1;
          break;
        case State.Length2: {
          const length = (this.#segmentHigh << 8) | (buf[i] as number);
          i += 1;
          if (length < 2) {
            frameStart = this.#drop('corrupt', frameStart, i);
            this.#state = State.Seek;
          } else {
            this.#payloadLeft = length - 2;
            this.#state = this.#payloadLeft > 0 ? State.Payload : this.#afterPayload();
          }
          break;
        }
        case State.Payload: {
          const take = Math.min(this.#payloadLeft, n - i);
          this.#payloadLeft -= take;
          i += take;
          if (this.#payloadLeft === 0) this.#state = this.#afterPayload();
          break;
        }
        case State.Entropy: {
          const ff = buf.indexOf(0xff, i);
          if (ff < 0) {
            i = n;
          } else {
            i = ff + 1;
            this.#state = State.EntropyFF;
          }
          break;
        }
      }
      if (this.inFrame && !this.#discarding) {
        const bytes = this.#partsBytes + (i - frameStart);
        if (bytes > this.#maxFrameBytes) this.#startDiscarding();
      }
    }
    if (this.inFrame) {
      if (this.#discarding) {
        this.#discardedBytes += n - frameStart;
      } else if (n > frameStart) {
        const part = Buffer.from(buf.subarray(frameStart, n)); // Copy: the caller may reuse `chunk`.
        this.#parts.push(part);
        this.#partsBytes += part.length;
      }
    }
  }

  /** Ends the stream (e.g. the producer exited): a frame in progress is dropped as 'truncated'. */
  end(): void {
    if (this.inFrame) this.#drop('truncated', 0, 0);
    this.#state = State.Seek;
  }

  #afterPayload(): State {
    return this.#payloadIsSos ? State.Entropy : State.Marker;
  }

  #keepBetween(buf: Buffer, from: number, to: number): void {
    if (to <= from) return;
    const bytes = Buffer.from(buf.subarray(Math.max(from, to - MAX_HEADER_BYTES), to));
    this.#between.push(bytes);
    this.#betweenBytes += bytes.length;
    while (this.#betweenBytes - (this.#between[0]?.length ?? 0) >= MAX_HEADER_BYTES) {
      this.#betweenBytes -= this.#between.shift()!.length;
    }
  }

  // The SOI's FF was the last byte of the previous chunk when `ffInPreviousChunk`.
  #beginFrame(ffInPreviousChunk: boolean): void {
    // A plain JPEG stream (ffmpeg's) has nothing between frames: no headers to read.
    const timestampMs =
      this.#betweenBytes === 0
        ? undefined
        : partTimestampMs(Buffer.concat(this.#between, this.#betweenBytes).toString('latin1'));
    this.#part = timestampMs === undefined ? {} : { timestampMs };
    this.#between = [];
    this.#betweenBytes = 0;
    this.#state = State.Marker;
    this.#parts = ffInPreviousChunk ? [Buffer.from([0xff])] : [];
    this.#partsBytes = this.#parts.length;
    this.#discarding = false;
    this.#discardedBytes = 0;
  }

  #startDiscarding(): void {
    this.#discarding = true;
    // Bytes of this chunk are added when the frame ends or the chunk does.
    this.#discardedBytes = this.#partsBytes;
    this.#parts = [];
    this.#partsBytes = 0;
  }

  #endFrame(buf: Buffer, frameStart: number, end: number): void {
    this.#state = State.Seek;
    if (this.#discarding) {
      this.#discardedBytes += end - frameStart;
      this.#reportDrop('oversize', this.#discardedBytes);
      this.#discarding = false;
      return;
    }
    const tail = buf.subarray(frameStart, end);
    if (this.#partsBytes + tail.length > this.#maxFrameBytes) {
      this.#reportDrop('oversize', this.#partsBytes + tail.length);
      this.#parts = [];
      this.#partsBytes = 0;
      return;
    }
    const jpeg = Buffer.concat([...this.#parts, tail], this.#partsBytes + tail.length);
    this.#parts = [];
    this.#partsBytes = 0;
    this.#stats.frames += 1;
    const part = this.#part;
    this.#part = {};
    this.#onFrame(jpeg, part);
  }

  // Drops the current frame, whose bytes in this chunk end at `end`; returns the new frame start.
  #drop(reason: MjpegDropReason, frameStart: number, end: number): number {
    const bytes = (this.#discarding ? this.#discardedBytes : this.#partsBytes) + end - frameStart;
    const wasOversize = this.#discarding;
    this.#parts = [];
    this.#partsBytes = 0;
    this.#discarding = false;
    this.#discardedBytes = 0;
    this.#reportDrop(wasOversize ? 'oversize' : reason, bytes);
    return end;
  }

  #reportDrop(reason: MjpegDropReason, bytes: number): void {
    if (reason === 'oversize') this.#stats.droppedOversize += 1;
    else if (reason === 'truncated') this.#stats.droppedTruncated += 1;
    else this.#stats.droppedCorrupt += 1;
    this.#onDrop?.({ reason, bytes });
  }
}
