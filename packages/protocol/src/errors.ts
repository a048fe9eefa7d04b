/**
 * One registry of every Linesight error code. A code is stable API: logs,
 * events, HTTP answers and tests match on it, never on message text.
 */
export const ERROR_CODES = {
  ERR_PROTOCOL_PAYLOAD: 'a message or document does not match its schema',
  ERR_PROTOCOL_TOPIC: 'a topic is not a Linesight topic or names an invalid device id',
  ERR_SIGNATURE_UNKNOWN_KEY: 'a manifest is signed by a key the verifier does not trust',
  ERR_SIGNATURE_INVALID: 'a signature does not verify',
  ERR_MANIFEST_EXPIRED: 'a manifest is past its expiry',
  ERR_DESIRED_EXPIRED:
    'a desired-state document is past its expiry (a freeze attack, or a cloud that stopped refreshing it)',
  ERR_DESIRED_REPLAY:
    'a desired-state document is not newer than one already accepted (a replay or rollback)',
  ERR_MODEL_CONTRACT: 'an ONNX model lacks a valid Linesight contract',
  ERR_MODEL_LOAD: 'an ONNX model cannot be loaded',
  ERR_MODEL_OUTPUT: 'an ONNX model produced an output that is not finite or of the declared shape',
  ERR_MODEL_WATCHDOG:
    'an ONNX model run took longer than its watchdog limit and was abandoned (details.watchdogMs)',
  ERR_IMAGE_DECODE: 'an image cannot be decoded',
  ERR_AGENT_DOWNLOAD: 'a model artifact cannot be downloaded',
  ERR_AGENT_MODEL_VERIFY: 'a downloaded artifact does not match its signed manifest',
  ERR_AGENT_STALLED:
    'a step of a model update that cannot be aborted (an fsync, a write, reading the stored artifact) is waiting beyond its limit, usually on a busy disk; the update goes on when it ends',
  ERR_AGENT_CONFIG: 'the agent configuration is invalid',
  ERR_AGENT_DISK_FULL:
    'the agent data disk has too little free space for a model download or a state write; the live model keeps running',
  ERR_AGENT_CRASH_LOOP:
    'the agent kept crashing soon after a model went live, so it went back to the last-known-good model',
  ERR_AGENT_WATCHDOG:
    'a live model kept exceeding the inference watchdog limit, so the agent quarantined it and went back to the last-known-good model',
  ERR_CAMERA: 'a camera source failed',
  ERR_AGENT_OUTPUT:
    'a local output (PLC over Modbus, plant MQTT broker, webhook, command) could not write a verdict',
  ERR_AGENT_NOTIFY:
    'the agent could not notify the service manager (systemd sd_notify: ready, watchdog, stopping)',
  ERR_CLOUD_CONFIG: 'the cloud configuration is invalid',
  ERR_CLI_CONFIG:
    'the command line lacks a setting (cloud URL, token) or a CLI config file is invalid',
  ERR_CLI_USAGE:
    'a command cannot do what its arguments ask with the inputs given (e.g. `model eval --holdout` on a folder the model was not split from)',
  ERR_CLOUD_DATA_DIR_IN_USE:
    'another cloud process holds the data directory (two would corrupt its registry and blobs)',
  ERR_CLOUD_NOT_STARTED: 'the cloud (or one of its parts) was used before start() or after close()',
  ERR_CLOUD_NOT_FOUND: 'a requested resource does not exist',
  ERR_CLOUD_CONFLICT: 'a resource already exists',
  ERR_CLOUD_BAD_REQUEST: 'a request is malformed',
  ERR_CLOUD_UNAUTHORIZED: 'a request lacks valid credentials',
  ERR_CLOUD_FORBIDDEN: 'the caller may not do this (e.g. approve its own model version)',
  ERR_CLOUD_PAYLOAD_TOO_LARGE: 'a request body is too large',
  ERR_CLOUD_MODEL_UNAVAILABLE:
    'a registered model version cannot be served: its artifact is missing, corrupt or does not load (a server fault, not the request)',
  ERR_CLOUD_UPLOAD_EXPIRED: 'a signed upload or download URL is past its expiry: request a new one',
  ERR_CLOUD_UPLOAD_MISMATCH:
    'an uploaded body differs from what its upload URL declared (size, sha256 or content type)',
  ERR_CLOUD_STORAGE: 'the object store (S3) failed or cannot be reached',
  ERR_CLOUD_BROKER:
    'the external MQTT broker refused or did not answer a change of its logins (dynamic security)',
  ERR_CLOUD_RATE_LIMITED:
    'a caller sent more requests than its per-minute budget; the answer says when to retry (Retry-After)',
  ERR_CLOUD_BUSY:
    'the cloud is at its limit for this kind of request (e.g. concurrent model uploads); retry later',
  ERR_AGENT_UPLOAD: 'an object cannot be uploaded to the cloud storage',
  ERR_AGENT_UPLOAD_EXPIRED: 'an upload URL expired before the upload finished; ask for a new one',
  ERR_DATASET: 'a dataset is empty, unreadable or has only one class',
  ERR_TRAINING: 'training failed',
  ERR_INTERNAL:
    'an unexpected failure (a bug): the log of the process that answered has the details',
} as const;

/** A code from the registry above. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Options every Linesight error accepts. */
export interface LinesightErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

/** Base class of every error Linesight throws on purpose; carries a registry code. */
export class LinesightError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: LinesightErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LinesightError';
    this.code = code;
    this.details = options.details;
  }
}

/** True when `err` is a LinesightError, optionally with the given code. */
export function isLinesightError(err: unknown, code?: ErrorCode): err is LinesightError {
  return err instanceof LinesightError && (code === undefined || err.code === code);
}

/** A short printable form of any thrown value: code and message, with causes. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const head = typeof code === 'string' ? `${code}: ${err.message}` : err.message;
    return err.cause === undefined ? head : `${head} (cause: ${describeError(err.cause)})`;
  }
  return String(err);
}
