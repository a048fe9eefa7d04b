// REST contract of the drift routes: /v1/alerts and /v1/drift/*.
import { Type, type Static } from '@sinclair/typebox';
import { DeviceId } from '../schema-primitives.ts';

/** Query of GET /v1/alerts. */
export const AlertFilterQuerySchema = Type.Object(
  {
    deviceId: Type.Optional(DeviceId),
    state: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('resolved')])),
    level: Type.Optional(Type.Union([Type.Literal('warning'), Type.Literal('alert')])),
    kind: Type.Optional(Type.Union([Type.Literal('product'), Type.Literal('camera')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  },
  { additionalProperties: false },
);
/** Filters of the alert list. */
export type AlertFilterQuery = Static<typeof AlertFilterQuerySchema>;

const AlertKind = Type.Union([Type.Literal('product'), Type.Literal('camera')]);

/** A drift or camera alert. */
export const DriftAlertSchema = Type.Object({
  id: Type.Integer(),
  deviceId: Type.String(),
  modelName: Type.String({ description: "'' when the device ran no model" }),
  modelVersion: Type.String(),
  kind: AlertKind,
  feature: Type.String({ description: 'e.g. brightness, defectRate, frozen' }),
  statistic: Type.String({ description: 'e.g. psi, shift' }),
  state: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
  level: Type.Union([Type.Literal('warning'), Type.Literal('alert')]),
  value: Type.Number({ description: 'the statistic at the last run' }),
  peakValue: Type.Number(),
  frames: Type.Integer({ description: 'frames the statistic was computed over' }),
  windowStart: Type.String({ description: 'ISO 8601' }),
  windowEnd: Type.String({ description: 'ISO 8601' }),
  openedAt: Type.String({ description: 'ISO 8601' }),
  updatedAt: Type.String({ description: 'ISO 8601' }),
  resolvedAt: Type.Union([Type.String(), Type.Null()]),
});
/** A drift or camera alert. */
export type DriftAlertView = Static<typeof DriftAlertSchema>;

/** Answer of GET /v1/alerts. */
export const AlertListSchema = Type.Object({ alerts: Type.Array(DriftAlertSchema) });
/** Alerts, newest first. */
export type AlertList = Static<typeof AlertListSchema>;

const Count = Type.Integer({ minimum: 0 });

/** What one drift run did (answer of POST /v1/drift/runs). */
export const DriftRunSummarySchema = Type.Object({
  startedAt: Type.String({ description: 'ISO 8601' }),
  durationMs: Type.Number(),
  devices: Count,
  windows: Count,
  findings: Count,
  transitions: Type.Object(
    {
      opened: Type.Optional(Count),
      escalated: Type.Optional(Count),
      deescalated: Type.Optional(Count),
      updated: Type.Optional(Count),
      resolved: Type.Optional(Count),
      none: Type.Optional(Count),
    },
    { description: 'alerts per transition; a transition that did not happen is absent' },
  ),
  skipped: Type.Record(Type.String(), Count, {
    description: 'why features were not judged, with how many devices each reason held for',
  }),
});
/** What one drift run did. */
export type DriftRunSummaryView = Static<typeof DriftRunSummarySchema>;

/** Answer of GET /v1/drift/status: the job's counters and its last run (null before the first). */
export const DriftStatusSchema = Type.Object({
  running: Type.Boolean(),
  runs: Count,
  failed: Count,
  overlapped: { ...Count, description: 'scheduled runs skipped because one was under way' },
  lastRun: Type.Union([DriftRunSummarySchema, Type.Null()]),
});
/** The drift job's state. */
export type DriftStatus = Static<typeof DriftStatusSchema>;
