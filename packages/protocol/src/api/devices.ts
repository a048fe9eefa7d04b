// REST contract of /v1/devices: provisioning, fleet state and decommissioning.
import { Type, type Static } from '@sinclair/typebox';
import { DeviceId } from '../schema-primitives.ts';
import { DeviceEventSchema, ReportedErrorSchema } from '../schemas.ts';

/** A public key devices trust, as the REST API lists it. */
export const TrustedKeyViewSchema = Type.Object({
  keyId: Type.String(),
  publicKeyPem: Type.String(),
});
/** A trusted key as the REST API lists it. */
export type TrustedKeyView = Static<typeof TrustedKeyViewSchema>;

/** Body of POST /v1/devices. */
export const ProvisionDeviceBodySchema = Type.Object(
  {
    id: DeviceId,
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
  },
  { additionalProperties: false },
);
/** What provisioning a device takes. */
export type ProvisionDeviceBody = Static<typeof ProvisionDeviceBodySchema>;

/** What provisioning (or rotating) a device's credentials answers; the password is shown only once. */
export const ProvisionedDeviceSchema = Type.Object({
  deviceId: Type.String(),
  username: Type.String(),
  password: Type.String(),
  mqttUrl: Type.String(),
  trustedKeys: Type.Array(TrustedKeyViewSchema),
  caPem: Type.Optional(
    Type.String({
      description:
        'the CA certificate (PEM) the device must trust, and only it, for mqtts and HTTPS; present when the cloud serves TLS',
    }),
  ),
});
/** What provisioning a device returns (the password is shown only once). */
export type ProvisionedDevice = Static<typeof ProvisionedDeviceSchema>;

/** Devices one POST /v1/devices/batch provisions at most. */
export const MAX_DEVICES_PER_BATCH = 1000;

/** Body of POST /v1/devices/batch: many devices in one request (a fleet's first install). */
export const ProvisionDevicesBodySchema = Type.Object(
  {
    devices: Type.Array(ProvisionDeviceBodySchema, {
      minItems: 1,
      maxItems: MAX_DEVICES_PER_BATCH,
    }),
  },
  { additionalProperties: false },
);
/** What provisioning many devices takes. */
export type ProvisionDevicesBody = Static<typeof ProvisionDevicesBodySchema>;

/** What POST /v1/devices/batch answers: each device's credentials, in the order asked. */
export const ProvisionedDevicesSchema = Type.Object({
  devices: Type.Array(ProvisionedDeviceSchema),
});
/** What provisioning many devices returns (the passwords are shown only once). */
export type ProvisionedDevices = Static<typeof ProvisionedDevicesSchema>;

const NameVersion = Type.Object({ name: Type.String(), version: Type.String() });

/** A device as GET /v1/devices lists it: presence, model and frame counts. */
export const DeviceViewSchema = Type.Object({
  id: Type.String(),
  labels: Type.Record(Type.String(), Type.String()),
  online: Type.Boolean(),
  lastSeen: Type.Union([Type.String(), Type.Null()]),
  phase: Type.Union([Type.String(), Type.Null()]),
  model: Type.Union([NameVersion, Type.Null()]),
  desiredModel: Type.Union([NameVersion, Type.Null()]),
  framesProcessed: Type.Integer(),
  framesCaptured: Type.Integer(),
  defects: Type.Integer(),
  fps: Type.Union([Type.Number(), Type.Null()], {
    description: 'frames/s of the latest telemetry window; null while the device is offline',
  }),
  lastError: Type.Union([ReportedErrorSchema, Type.Null()]),
});
/** A device as GET /v1/devices lists it. */
export type DeviceView = Static<typeof DeviceViewSchema>;

/** Path parameters of /v1/devices/:id. */
export const DeviceIdParamsSchema = Type.Object({ id: Type.String() });

/** What DELETE /v1/devices/:id answers. */
export const DecommissionedDeviceSchema = Type.Object({
  deviceId: Type.String(),
  decommissioned: Type.Literal(true),
});
/** What decommissioning a device answers. */
export type DecommissionedDevice = Static<typeof DecommissionedDeviceSchema>;

/** Path parameters of POST /v1/devices/:id/enrolment-token. */
export const EnrolmentParamsSchema = Type.Object({
  id: DeviceId,
});

/** What POST /v1/devices/:id/enrolment-token answers (the token is shown only once). */
export const EnrolmentTokenSchema = Type.Object({
  deviceId: Type.String(),
  token: Type.String({ description: 'shown only this once' }),
  tokenId: Type.String({ description: 'names the token in the audit log' }),
  expiresAt: Type.String({ format: 'date-time' }),
});
/** A one-device enrolment token. */
export type EnrolmentToken = Static<typeof EnrolmentTokenSchema>;

/** The addresses devices and clients must use, so cached ones can be refreshed (GET /v1/connection). */
export const ConnectionViewSchema = Type.Object({
  cloudUrl: Type.String({ description: 'HTTP base URL (advertised, else bound)' }),
  mqttUrl: Type.String({ description: 'MQTT URL devices connect to (advertised, else bound)' }),
});
/** Where the cloud is reachable now. */
export type ConnectionView = Static<typeof ConnectionViewSchema>;

/** Answer of GET /v1/devices/:id/events: the device's latest events the cloud keeps, oldest first. */
export const DeviceEventListSchema = Type.Array(DeviceEventSchema);
/** A device's recent events. */
export type DeviceEventList = Static<typeof DeviceEventListSchema>;

/** A SHA-256 fingerprint of a DER certificate: 64 hex digits, bare or colon-separated (as openssl prints it). */
export const CERTIFICATE_FINGERPRINT_PATTERN =
  '^([0-9A-Fa-f]{64}|([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2})$';

/** Body of POST /v1/devices/:id/certificates/revoke: the certificate, or its fingerprint (one of the two). */
export const RevokeCertificateBodySchema = Type.Object(
  {
    fingerprintSha256: Type.Optional(
      Type.String({
        pattern: CERTIFICATE_FINGERPRINT_PATTERN,
        description:
          'SHA-256 of the DER certificate (openssl x509 -noout -fingerprint -sha256), bare or colon-separated hex',
      }),
    ),
    certificatePem: Type.Optional(
      Type.String({
        maxLength: 65_536,
        description: 'the certificate itself (PEM); it must name the device (CN or DNS name)',
      }),
    ),
    reason: Type.Optional(
      Type.String({ maxLength: 500, description: 'kept in the audit log (stolen, leaked, ...)' }),
    ),
  },
  { additionalProperties: false },
);
/** What revoking a device's client certificate takes. */
export type RevokeCertificateBody = Static<typeof RevokeCertificateBodySchema>;

/** A client certificate the cloud refuses, as GET /v1/devices/:id/certificates/revoked lists it. */
export const RevokedCertificateViewSchema = Type.Object({
  deviceId: Type.String(),
  fingerprintSha256: Type.String({ description: 'lower-case hex, no separators' }),
  revokedAt: Type.String({ format: 'date-time' }),
  revokedBy: Type.String(),
  reason: Type.Union([Type.String(), Type.Null()]),
});
/** A revoked client certificate. */
export type RevokedCertificateView = Static<typeof RevokedCertificateViewSchema>;

/** What POST /v1/devices/:id/certificates/revoke answers. */
export const RevokedCertificateResultSchema = Type.Object({
  ...RevokedCertificateViewSchema.properties,
  alreadyRevoked: Type.Boolean({
    description: 'true when this certificate was revoked before (the first revocation is kept)',
  }),
  sessionEnded: Type.Boolean({
    description: 'true when a live MQTT session that logged in with this certificate was closed',
  }),
});
/** What revoking a client certificate answers. */
export type RevokedCertificateResult = Static<typeof RevokedCertificateResultSchema>;

/** Answer of GET /v1/devices/:id/certificates/revoked, newest first. */
export const RevokedCertificateListSchema = Type.Array(RevokedCertificateViewSchema);
/** A device's revoked client certificates. */
export type RevokedCertificateList = Static<typeof RevokedCertificateListSchema>;
