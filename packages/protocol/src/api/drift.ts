// REST contract of the drift routes: /v1/alerts and /v1/drift/*.
import { Type, type Static } from '@sinclair/typebox';
import { DEVICE_ID_PATTERN } from './devices.ts';

/** Query of GET /v1/alerts. */
export const AlertFilterQuerySchema = Type.Object(
  {
    deviceId: Type.Optional(Type.String({ pattern: DEVICE_ID_PATTERN })),
    state: Type.Optional(Type.Union([Type.Literal('open'), Type.Literal('resolved')])),
    level: Type.Optional(Type.Union([Type.Literal('warning'), Type.Literal('alert')])),
    kind: Type.Optional(Type.Union([Type.Literal('product'), Type.Literal('camera')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
  },
  { additionalProperties: false },
);
/** Filters of the alert list. */
export type AlertFilterQuery = Static<typeof AlertFilterQuerySchema>;
