// REST contract of the audit log: GET /v1/audit.
import { Type, type Static } from '@sinclair/typebox';

/** Query of GET /v1/audit: filters and a page (entries below `beforeId`). */
export const AuditQuerySchema = Type.Object({
  action: Type.Optional(Type.String()),
  subject: Type.Optional(Type.String()),
  actor: Type.Optional(Type.String()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  beforeId: Type.Optional(Type.Integer({ minimum: 1 })),
});
/** Filters and page of the audit log. */
export type AuditQuery = Static<typeof AuditQuerySchema>;

/** One audit-log entry: who did what to what, and when. */
export const AuditEntrySchema = Type.Object({
  id: Type.Integer({ description: 'grows with every entry' }),
  at: Type.String({ description: 'ISO 8601' }),
  actor: Type.String({ description: 'who: a token actor, device:<id> or enrolment:<id>' }),
  action: Type.String({ description: 'e.g. model.publish, rollout.abort' }),
  subject: Type.String({ description: 'e.g. tile@1.0.0, rollout:<id>, a device id' }),
  details: Type.Record(Type.String(), Type.Unknown()),
});
/** An audit-log entry. */
export type AuditEntryView = Static<typeof AuditEntrySchema>;

/** Answer of GET /v1/audit: entries, newest first. */
export const AuditEntryListSchema = Type.Array(AuditEntrySchema);
