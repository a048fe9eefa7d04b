import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

/** A token bucket: `ratePerSec` tokens a second, at most `burst` saved up. */
export class TokenBucket {
  readonly ratePerSec: number;
  readonly burst: number;
  #tokens: number;
  #at: number;

  constructor(ratePerSec: number, burst: number, now: number = Date.now()) {
    this.ratePerSec = ratePerSec;
    this.burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /**
   * Takes `n` tokens; the balance may go negative. Returns how many of the
   * `n` were over the limit and how long until the balance is back to zero.
   */
  take(n: number, now: number = Date.now()): { over: number; waitMs: number } {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.ratePerSec);
    this.#at = now;
    this.#tokens -= n;
    if (this.#tokens >= 0) return { over: 0, waitMs: 0 };
    return {
      over: Math.min(n, Math.ceil(-this.#tokens)),
      waitMs: Math.ceil((-this.#tokens / this.ratePerSec) * 1000),
    };
  }
}

/** What a guarded connection reports to the broker. */
export interface ConnectionGuardHooks {
  /** A packet declared a remaining length over the limit; the socket is destroyed. */
  oversize(declaredBytes: number): void;
  /** `over` publishes came over the rate limit; reading pauses for `waitMs`. */
  throttled(over: number, waitMs: number): void;
}

const PUBLISH = 3;

/**
 * The broker's view of one TCP connection: passes MQTT bytes through while
 * reading each packet's fixed header, so that a packet declaring more than
 * `maxPacketBytes` is refused (socket destroyed) before its body is read or
 * buffered; and, once a rate limit is set (after login), PUBLISH packets
 * take tokens from a bucket and reading pauses while it is empty
 * (backpressure: TCP slows the sender; nothing is dropped).
 */
export class GuardedConnection extends Duplex {
  readonly socket: Socket;
  readonly #maxPacketBytes: number;
  readonly #hooks: ConnectionGuardHooks;
  #bucket: TokenBucket | undefined;
  #resumeTimer: NodeJS.Timeout | undefined;
  /** Bytes of the current packet body still to pass; -1 while reading a header. */
  #bodyLeft = -1;
  #headerByte = -1;
  #length = 0;
  #lengthBytes = 0;
  #wantsData = true;
  #throttled = false;

  constructor(socket: Socket, maxPacketBytes: number, hooks: ConnectionGuardHooks) {
    super({ allowHalfOpen: false });
    this.socket = socket;
    this.#maxPacketBytes = maxPacketBytes;
    this.#hooks = hooks;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  /** Limits PUBLISH packets from now on with `bucket` (shared by every connection of one device). */
  limit(bucket: TokenBucket): void {
    this.#bucket = bucket;
  }

  override _read(): void {
    this.#wantsData = true;
    if (!this.#throttled) this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void) {
    this.socket.write(chunk, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end(done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    clearTimeout(this.#resumeTimer);
    this.socket.destroy();
    done(err);
  }

  #onData(chunk: Buffer): void {
    let publishes = 0;
    for (let i = 0; i < chunk.length;) {
      if (this.#bodyLeft > 0) {
        const step = Math.min(this.#bodyLeft, chunk.length - i);
        this.#bodyLeft -= step;
        i += step;
        if (this.#bodyLeft === 0) this.#bodyLeft = -1;
        continue;
      }
      const byte = chunk[i++] as number;
      if (this.#headerByte < 0) {
        this.#headerByte = byte;
        this.#length = 0;
        this.#lengthBytes = 0;
        continue;
      }
      // Remaining length: 1-4 bytes, 7 bits each, low first (MQTT 3.1.1 2.2.3).
      this.#length += (byte & 0x7f) * 128 ** this.#lengthBytes;
      this.#lengthBytes++;
      if (byte & 0x80 && this.#lengthBytes < 4) continue;
      if (this.#length > this.#maxPacketBytes || byte & 0x80) {
        this.#hooks.oversize(this.#length);
        this.socket.destroy();
        this.destroy();
        return;
      }
      if (this.#headerByte >> 4 === PUBLISH) publishes++;
      this.#headerByte = -1;
      this.#bodyLeft = this.#length > 0 ? this.#length : -1;
    }
    if (!this.push(chunk)) {
      this.#wantsData = false;
      this.socket.pause();
    }
    if (publishes > 0 && this.#bucket !== undefined) {
      const { over, waitMs } = this.#bucket.take(publishes);
      if (waitMs > 0) {
        this.#hooks.throttled(over, waitMs);
        this.#throttled = true;
        this.socket.pause();
        clearTimeout(this.#resumeTimer);
        this.#resumeTimer = setTimeout(() => {
          this.#throttled = false;
          if (this.#wantsData) this.socket.resume();
        }, waitMs);
      }
    }
  }
}
