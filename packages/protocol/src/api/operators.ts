// REST contract of the operator routes: named API tokens and read-only MQTT credentials.
import { Type, type Static } from '@sinclair/typebox';

/** What a named API token may do; each role includes the ones before it. */
export const API_ROLES = ['viewer', 'operator', 'admin'] as const;

/** A token's role. */
export const ApiRoleSchema = Type.Union(API_ROLES.map((r) => Type.Literal(r)));
/** A token's role. */
export type ApiRole = Static<typeof ApiRoleSchema>;

/** Body of POST /v1/tokens. */
export const CreateTokenBodySchema = Type.Object(
  {
    actor: Type.String({ minLength: 1, maxLength: 64 }),
    role: Type.Optional(ApiRoleSchema),
  },
  { additionalProperties: false },
);

/** What POST /v1/tokens answers (the token is shown only once). */
export const CreatedTokenSchema = Type.Object({
  actor: Type.String(),
  role: ApiRoleSchema,
  token: Type.String(),
});
/** A new named token. */
export type CreatedToken = Static<typeof CreatedTokenSchema>;

/** A named token as GET /v1/tokens lists it (never the token). */
export const TokenViewSchema = Type.Object({
  actor: Type.String(),
  role: ApiRoleSchema,
  createdAt: Type.String(),
  createdBy: Type.String(),
});
/** A named token as listed. */
export type TokenView = Static<typeof TokenViewSchema>;

/** What DELETE /v1/tokens/:actor answers. */
export const RevokedTokenSchema = Type.Object({
  actor: Type.String(),
  revoked: Type.Literal(true),
});
/** A revoked token. */
export type RevokedToken = Static<typeof RevokedTokenSchema>;

/** Body of POST /v1/mqtt-readers. */
export const CreateMqttReaderBodySchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    devices: Type.Array(Type.String({ minLength: 1, maxLength: 64 }), {
      minItems: 1,
      maxItems: 10_000,
      description: 'granted device ids, or ["*"] for every device',
    }),
  },
  { additionalProperties: false },
);

/** What POST /v1/mqtt-readers answers (the password is shown only once). */
export const CreatedMqttReaderSchema = Type.Object({
  name: Type.String(),
  username: Type.String(),
  password: Type.String(),
  devices: Type.Array(Type.String()),
});
/** A new read-only MQTT credential. */
export type CreatedMqttReader = Static<typeof CreatedMqttReaderSchema>;

/** A read-only MQTT credential as listed (never the password). */
export const MqttReaderViewSchema = Type.Object({
  name: Type.String(),
  username: Type.String(),
  devices: Type.Array(Type.String()),
  createdAt: Type.String(),
  createdBy: Type.String(),
});
/** A read-only MQTT credential as listed. */
export type MqttReaderView = Static<typeof MqttReaderViewSchema>;

/** What DELETE /v1/mqtt-readers/:name answers. */
export const RevokedMqttReaderSchema = Type.Object({
  name: Type.String(),
  revoked: Type.Literal(true),
});
/** A revoked read-only MQTT credential. */
export type RevokedMqttReader = Static<typeof RevokedMqttReaderSchema>;
