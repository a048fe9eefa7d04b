import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

const BackoffSchema = Type.Object(
  {
    initialMs: Type.Integer({ minimum: 1, default: 200 }),
    maxMs: Type.Integer({ minimum: 1, default: 5000 }),
  },
  { additionalProperties: false, default: {} },
);

/** Settings every output has: its queue, retry and staleness policy. */
function common(defaults: { queueMax: number; maxAgeMs: number }) {
  return {
    name: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9][a-z0-9_-]{0,31}$',
        description: 'name in metrics and telemetry (default: the kind; unique)',
      }),
    ),
    queueMax: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: defaults.queueMax,
      description: 'verdicts waiting for this output before the drop policy applies',
    }),
    dropPolicy: Type.Union([Type.Literal('drop-oldest'), Type.Literal('drop-newest')], {
      default: 'drop-oldest',
      description:
        'when the queue is full: drop the oldest waiting verdict (the line gets the newest) or refuse the new one; both are counted',
    }),
    maxAgeMs: Type.Integer({
      minimum: 0,
      default: defaults.maxAgeMs,
      description:
        'a verdict older than this when its turn comes is dropped as stale and counted (0 = never)',
    }),
    timeoutMs: Type.Integer({
      minimum: 1,
      default: 1000,
      description: 'one write attempt that takes longer fails and is retried',
    }),
    retryBackoff: BackoffSchema,
  };
}

/** A broker on the plant network, independent of the cloud link. */
export const MqttOutputSchema = Type.Object(
  {
    kind: Type.Literal('mqtt'),
    ...common({ queueMax: 1000, maxAgeMs: 0 }),
    url: Type.String({ pattern: '^(mqtts?|wss?|tcp)://', description: 'plant broker URL' }),
    username: Type.Optional(Type.String()),
    password: Type.Optional(Type.String()),
    clientId: Type.Optional(Type.String({ minLength: 1 })),
    topic: Type.String({
      minLength: 1,
      default: 'linesight/line/{deviceId}/verdicts',
      description: 'topic template; {deviceId} and {verdict} are replaced (no + or # wildcards)',
    }),
    qos: Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], { default: 1 }),
    retain: Type.Boolean({ default: false }),
  },
  { additionalProperties: false },
);

/** Holding registers and coils a PLC reads the verdict from. */
export const ModbusAddressMapSchema = Type.Object(
  {
    defectCoil: Type.Integer({
      minimum: 0,
      maximum: 65535,
      description: 'pulsed on for a defect (and for unknown when unknownAction is reject)',
    }),
    unknownCoil: Type.Integer({ minimum: 0, maximum: 65535, description: 'pulsed on for unknown' }),
    sequenceRegister: Type.Integer({
      minimum: 0,
      maximum: 65535,
      description: 'frame sequence number mod 65536, written last: the commit of each verdict',
    }),
    scoreRegister: Type.Integer({
      minimum: 0,
      maximum: 65535,
      description:
        'score x1000 as a signed 16-bit INT, clamped to -32767..32767; -32768 (0x8000) when unknown',
    }),
    verdictRegister: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 65535, description: '0 good, 1 defect, 2 unknown' }),
    ),
  },
  { additionalProperties: false },
);

/** A PLC reached over Modbus TCP. */
export const ModbusOutputSchema = Type.Object(
  {
    kind: Type.Literal('modbus'),
    ...common({ queueMax: 64, maxAgeMs: 2000 }),
    host: Type.String({ minLength: 1 }),
    port: Type.Integer({ minimum: 1, maximum: 65535, default: 502 }),
    unitId: Type.Integer({ minimum: 0, maximum: 255, default: 1 }),
    map: ModbusAddressMapSchema,
    pulseMs: Type.Integer({
      minimum: 1,
      maximum: 60_000,
      default: 200,
      description: 'how long the defect/unknown coil stays on; a new one during a pulse extends it',
    }),
    unknownAction: Type.Union([Type.Literal('reject'), Type.Literal('hold')], {
      default: 'reject',
      description:
        'reject: unknown also pulses the defect coil (fail safe: the part is rejected); hold: only the unknown coil, the PLC decides (e.g. stops the line)',
    }),
  },
  { additionalProperties: false },
);

/** An HTTP endpoint that receives each verdict (or batches) as JSON. */
export const WebhookOutputSchema = Type.Object(
  {
    kind: Type.Literal('webhook'),
    ...common({ queueMax: 1000, maxAgeMs: 0 }),
    url: Type.String({ pattern: '^https?://' }),
    headers: Type.Optional(Type.Record(Type.String(), Type.String())),
    batchMax: Type.Integer({
      minimum: 1,
      maximum: 1000,
      default: 1,
      description: '1 = one POST per verdict; more = a JSON array of up to this many per POST',
    }),
  },
  { additionalProperties: false },
);

/** A command run per defect/unknown (a GPIO pin, a stack light), without a shell. */
export const CommandOutputSchema = Type.Object(
  {
    kind: Type.Literal('command'),
    ...common({ queueMax: 16, maxAgeMs: 2000 }),
    command: Type.String({ minLength: 1, description: 'executable (run via execFile, no shell)' }),
    args: Type.Array(Type.String(), {
      default: [],
      description:
        'arguments; {verdict}, {seq}, {score} and {deviceId} are replaced in each argument',
    }),
    on: Type.Array(Type.Union([Type.Literal('defect'), Type.Literal('unknown')]), {
      minItems: 1,
      default: ['defect', 'unknown'],
      description: 'verdicts that run the command; others are skipped',
    }),
    minIntervalMs: Type.Integer({
      minimum: 0,
      default: 1000,
      description: 'rate limit: runs closer together than this are skipped and counted',
    }),
  },
  { additionalProperties: false },
);

/** One configured output. */
export const OutputConfigSchema = Type.Union([
  MqttOutputSchema,
  ModbusOutputSchema,
  WebhookOutputSchema,
  CommandOutputSchema,
]);

/** The local HTTP endpoint (read-only). */
export const HttpConfigSchema = Type.Object(
  {
    port: Type.Integer({ minimum: 0, maximum: 65535, description: '0 = any free port' }),
    host: Type.String({ minLength: 1, default: '127.0.0.1' }),
    recentVerdicts: Type.Integer({
      minimum: 1,
      maximum: 100_000,
      default: 1000,
      description: 'verdicts kept for /verdicts and for SSE clients that reconnect',
    }),
    sseMaxBufferedBytes: Type.Integer({
      minimum: 1024,
      default: 1_048_576,
      description: 'an SSE client that falls this far behind is disconnected and counted',
    }),
  },
  { additionalProperties: false },
);

/** Configuration of one mqtt output. */
export type MqttOutputConfig = Static<typeof MqttOutputSchema>;
/** Configuration of one modbus output. */
export type ModbusOutputConfig = Static<typeof ModbusOutputSchema>;
/** Configuration of one webhook output. */
export type WebhookOutputConfig = Static<typeof WebhookOutputSchema>;
/** Configuration of one command output. */
export type CommandOutputConfig = Static<typeof CommandOutputSchema>;
/** Configuration of any output. */
export type OutputConfig = Static<typeof OutputConfigSchema>;
/** Configuration of the local HTTP endpoint. */
export type HttpConfig = Static<typeof HttpConfigSchema>;
/** The queue and retry settings every output has. */
export type OutputPolicy = Pick<
  OutputConfig,
  'queueMax' | 'dropPolicy' | 'maxAgeMs' | 'timeoutMs' | 'retryBackoff'
>;

/** The schema of an output kind, to validate one entry against the schema its `kind` names. */
export const OUTPUT_SCHEMAS: Record<OutputConfig['kind'], TSchema> = {
  mqtt: MqttOutputSchema,
  modbus: ModbusOutputSchema,
  webhook: WebhookOutputSchema,
  command: CommandOutputSchema,
};

/**
 * Applies defaults to each output entry and checks it against the schema its
 * `kind` names; returns the entries and every problem found, paths prefixed
 * with `outputs/<index>`.
 */
export function checkOutputConfigs(entries: readonly unknown[]): {
  outputs: OutputConfig[];
  problems: string[];
} {
  const problems: string[] = [];
  const outputs: OutputConfig[] = [];
  const names = new Set<string>();
  entries.forEach((entry, index) => {
    const at = `outputs/${index}`;
    const kind = (entry as { kind?: unknown } | null)?.kind;
    if (typeof kind !== 'string' || !(kind in OUTPUT_SCHEMAS)) {
      problems.push(`${at}/kind: must be one of ${Object.keys(OUTPUT_SCHEMAS).join(', ')}`);
      return;
    }
    const schema = OUTPUT_SCHEMAS[kind as OutputConfig['kind']];
    const value = Value.Default(schema, Value.Clone(entry));
    const found = [...Value.Errors(schema, value)].map((e) => `${at}${e.path}: ${e.message}`);
    problems.push(...found);
    if (found.length > 0) return;
    const config = value as OutputConfig;
    const name = config.name ?? config.kind;
    if (names.has(name))
      problems.push(`${at}/name: "${name}" is used twice (give each output of a kind a name)`);
    names.add(name);
    if (config.kind === 'mqtt' && /[+#]/.test(config.topic))
      problems.push(`${at}/topic: must not contain the wildcards + or #`);
    if (config.retryBackoff.maxMs < config.retryBackoff.initialMs)
      problems.push(`${at}/retryBackoff/maxMs: must be >= initialMs`);
    outputs.push({ ...config, name });
  });
  return { outputs, problems };
}
