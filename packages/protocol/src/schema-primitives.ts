import { Type } from '@sinclair/typebox';

// The small schemas the device messages and the edge-data batches share.

/** An ISO 8601 date-time. */
export const IsoTime = Type.String({ format: 'date-time', minLength: 20, maxLength: 40 });

/** The pattern of a device id: 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit. */
export const DEVICE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';

/** A device id, in messages, batches and REST routes alike. */
export const DeviceId = Type.String({ pattern: DEVICE_ID_PATTERN });

/** The verdict on one frame; `unknown` means a person must look. */
export const VerdictSchema = Type.Union([
  Type.Literal('good'),
  Type.Literal('defect'),
  Type.Literal('unknown'),
]);
