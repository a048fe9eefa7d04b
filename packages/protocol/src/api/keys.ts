// REST contract of the signing-key routes: /v1/keys/*.
import { Type, type Static } from '@sinclair/typebox';

// GET /v1/keys answers TrustedKeySchema (schemas.ts), the entries of the trust list devices get.

/** One signing key and its state (GET /v1/keys/ring; never a private part). */
export const SigningKeyStateSchema = Type.Object({
  keyId: Type.String(),
  createdAt: Type.String({ description: 'ISO 8601' }),
  retiredAt: Type.Optional(Type.String({ description: 'ISO 8601' })),
  active: Type.Boolean(),
});
/** A signing key's state. */
export type SigningKeyState = Static<typeof SigningKeyStateSchema>;

/** Answer of POST /v1/keys/rotate: the new active key and how many devices were sent the new trust list. */
export const KeyRotationSchema = Type.Object({ keyId: Type.String(), devices: Type.Integer() });
/** What a key rotation did. */
export type KeyRotation = Static<typeof KeyRotationSchema>;

/** Answer of POST /v1/keys/{keyId}/retire: manifests re-signed and devices sent new desired state. */
export const KeyRetirementSchema = Type.Object({
  manifests: Type.Integer(),
  devices: Type.Integer(),
});
/** What a key retirement did. */
export type KeyRetirement = Static<typeof KeyRetirementSchema>;

/** Path of POST /v1/keys/{keyId}/retire. */
export const KeyIdParamsSchema = Type.Object({ keyId: Type.String({ pattern: '^[0-9a-f]{16}$' }) });
