/** One captured frame: an encoded image (JPEG or PNG) with its sequence number. */
export interface Frame {
  /** 0-based, increases by one per frame the camera delivers; never reused. */
  seq: number;
  capturedAt: Date;
  /** Encoded image bytes as the camera produced them (JPEG or PNG). */
  image: Buffer;
}

/** Where a camera delivers frames and reports trouble. */
export interface FrameSink {
  frame(frame: Frame): void;
  /** A failure the camera could not hide; the camera keeps trying unless closed. */
  error(err: unknown): void;
}

/** A frame source. Every implementation delivers frames in seq order with no gaps. */
export interface Camera {
  /** Human-readable source, e.g. `synthetic(seed=1, 256x256 @ 10fps)`. */
  readonly description: string;
  /** Number of frames delivered so far (equals the next seq). */
  readonly framesDelivered: number;
  /** Starts delivering frames to `sink`; resolves once the source is running. */
  start(sink: FrameSink): Promise<void>;
  /** Stops delivery; idempotent. No frame is delivered after it resolves. */
  close(): Promise<void>;
}
