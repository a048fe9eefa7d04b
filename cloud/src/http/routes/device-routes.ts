import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  DecommissionedDeviceSchema,
  DeviceEventListSchema,
  DeviceIdParamsSchema,
  DeviceViewSchema,
  ProvisionDeviceBodySchema,
  ProvisionedDeviceSchema,
  ProvisionDevicesBodySchema,
  ProvisionedDevicesSchema,
  RevokeCertificateBodySchema,
  RevokedCertificateListSchema,
  RevokedCertificateResultSchema,
  LinesightError,
  type RevokeCertificateBody,
  type RevokedCertificateList,
  type RevokedCertificateResult,
  type DeviceView,
  type ProvisionedDevice,
  type ProvisionDeviceBody,
  type ProvisionDevicesBody,
  type ProvisionedDevices,
  type DeviceEventList,
} from '@linesight/protocol';
import type { CloudServices } from '../services.ts';
import { actorOf } from '../auth.ts';
import { enrolmentProvisioning } from './enrolment-routes.ts';
import type { DeviceRecord } from '../../registry/device-registry.ts';
import { normalizeFingerprint, parseCertificatePem } from '../../tls/certificate-fingerprint.ts';

// Telemetry and reported state both carry frame counters; the newer one wins.
function latestCounters(d: DeviceRecord) {
  const r = d.reported;
  const t = d.telemetry;
  if (r !== null && t !== null)
    return Date.parse(r.updatedAt) >= Date.parse(t.at) ? r.frames : t.frames;
  return (r ?? t)?.frames;
}

function view(d: DeviceRecord): DeviceView {
  const reported = d.reported;
  const counters = latestCounters(d);
  const desired = d.desired?.model?.signed.manifest;
  return {
    id: d.id,
    labels: d.labels,
    online: d.online,
    lastSeen: d.lastSeen,
    phase: reported?.phase ?? null,
    model: reported?.model ? { name: reported.model.name, version: reported.model.version } : null,
    desiredModel: desired ? { name: desired.name, version: desired.version } : null,
    framesProcessed: counters?.scored ?? 0,
    framesCaptured: counters?.captured ?? 0,
    defects: counters?.defects ?? 0,
    fps: d.online ? (d.telemetry?.fps ?? null) : null,
    lastError: reported?.lastError ?? null,
  };
}

/** What a device needs to connect, with its secret: the answer of provisioning and of rotation. */
function credentials(services: CloudServices, id: string, secret: string): ProvisionedDevice {
  return {
    deviceId: id,
    username: id,
    password: secret,
    mqttUrl: services.mqttUrl(),
    trustedKeys: services.keys.trusted,
    ...(services.tlsCaPem !== undefined ? { caPem: services.tlsCaPem } : {}),
  };
}

/** Device routes: provisioning and fleet state. */
export async function deviceRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.post<{ Body: ProvisionDeviceBody }>(
    '/v1/devices',
    {
      config: { auth: 'admin-or-enrolment' },
      schema: {
        tags: ['devices'],
        summary: 'Provision a device; the answer holds its MQTT password, shown only this once',
        body: ProvisionDeviceBodySchema,
        response: { 201: ProvisionedDeviceSchema },
      },
    },
    async (request, reply) => {
      const caller = request.caller;
      const byToken =
        caller?.kind === 'enrolment'
          ? enrolmentProvisioning(caller, request.body, services)
          : undefined;
      const labels = byToken?.labels ?? request.body.labels ?? {};
      const { id, secret } = services.devices.provision(request.body.id, labels);
      try {
        await services.brokerAccounts.setDevice(id, secret);
      } catch (err) {
        // A device the broker does not know could never connect: provisioning did not happen.
        services.devices.remove(id);
        throw err;
      }
      services.audit.record(actorOf(request), 'device.provision', id, {
        labels,
        ...byToken?.details,
      });
      void reply.status(201);
      return credentials(services, id, secret);
    },
  );

  app.post<{ Body: ProvisionDevicesBody }>(
    '/v1/devices/batch',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['devices'],
        summary:
          "Provision many devices at once (all or none; a fleet's first install): one request, one database transaction; the answer holds each device's MQTT password, shown only this once",
        body: ProvisionDevicesBodySchema,
        response: { 201: ProvisionedDevicesSchema },
      },
    },
    async (request, reply): Promise<ProvisionedDevices> => {
      const created = services.devices.provisionMany(request.body.devices);
      try {
        await services.brokerAccounts.setDevices(
          created.map(({ id, secret }) => ({ deviceId: id, secret })),
        );
      } catch (err) {
        // Devices the broker may not know could never connect: provisioning did not happen.
        // Logins the broker did create keep secrets no one holds, as after a failed single one.
        for (const { id } of created) services.devices.remove(id);
        throw err;
      }
      const actor = actorOf(request);
      for (const [i, { id }] of created.entries())
        services.audit.record(actor, 'device.provision', id, {
          labels: request.body.devices[i]?.labels ?? {},
          batch: created.length,
        });
      void reply.status(201);
      return { devices: created.map(({ id, secret }) => credentials(services, id, secret)) };
    },
  );

  app.get(
    '/v1/devices',
    {
      schema: {
        tags: ['devices'],
        summary: 'List devices with presence, model and frame counts',
        response: { 200: Type.Array(DeviceViewSchema) },
      },
    },
    async () => services.devices.list().map(view),
  );

  app.get<{ Params: { id: string } }>(
    '/v1/devices/:id',
    {
      schema: {
        tags: ['devices'],
        summary: 'Show one device',
        params: DeviceIdParamsSchema,
        response: { 200: DeviceViewSchema },
      },
    },
    async (request) => view(services.devices.get(request.params.id)),
  );

  app.post<{ Params: { id: string } }>(
    '/v1/devices/:id/credentials',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['devices'],
        summary:
          "Rotate a device's credentials (re-provision): the old secret stops working and its live session is ended; the answer holds the new secret, shown only this once",
        params: DeviceIdParamsSchema,
        response: { 200: ProvisionedDeviceSchema },
      },
    },
    async (request) => {
      const { id, secret } = services.devices.rotateSecret(request.params.id);
      services.audit.record(actorOf(request), 'device.rotate_credentials', id);
      // On failure the old secret may still open the broker: the error says so, and rotating again fixes it.
      await services.brokerAccounts.setDevice(id, secret);
      await services.link.disconnectDevice(id);
      return credentials(services, id, secret);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/devices/:id',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['devices'],
        summary:
          'Decommission a device: its credentials are revoked, its live session ended, its retained topics cleared; the audit log keeps the record',
        params: DeviceIdParamsSchema,
        response: { 200: DecommissionedDeviceSchema },
      },
    },
    async (request) => {
      const id = request.params.id;
      const last = view(services.devices.get(id));
      services.devices.remove(id);
      services.audit.record(actorOf(request), 'device.decommission', id, {
        labels: last.labels,
        model: last.model,
      });
      // After the credentials are gone, so the device cannot come back; the
      // retained topics last, so its will message does not outlive the clear.
      await services.brokerAccounts.removeDevice(id);
      await services.link.disconnectDevice(id);
      await services.link.clearRetained(id);
      return { deviceId: id, decommissioned: true as const };
    },
  );

  app.post<{ Params: { id: string }; Body: RevokeCertificateBody }>(
    '/v1/devices/:id/certificates/revoke',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['devices'],
        summary:
          "Revoke one client certificate of a device that stays in service (stolen, leaked): it is refused from now on over mqtts and HTTPS, a live MQTT session that logged in with it is ended; the device's password and other certificates keep working",
        params: DeviceIdParamsSchema,
        body: RevokeCertificateBodySchema,
        response: { 200: RevokedCertificateResultSchema },
      },
    },
    async (request): Promise<RevokedCertificateResult> => {
      const id = request.params.id;
      const { fingerprintSha256, certificatePem, reason } = request.body;
      services.devices.get(id);
      if ((fingerprintSha256 === undefined) === (certificatePem === undefined))
        throw new LinesightError(
          'ERR_CLOUD_BAD_REQUEST',
          'send either fingerprintSha256 or certificatePem (exactly one)',
        );
      let fingerprint: string;
      if (certificatePem !== undefined) {
        const parsed = parseCertificatePem(certificatePem);
        if (!parsed.names.includes(id))
          throw new LinesightError(
            'ERR_CLOUD_BAD_REQUEST',
            `this certificate names ${parsed.names.map((n) => JSON.stringify(n)).join(', ') || 'nothing'}, not device ${id}: it cannot log in as ${id}`,
          );
        fingerprint = parsed.fingerprintSha256;
      } else fingerprint = normalizeFingerprint(fingerprintSha256 ?? '');
      const actor = actorOf(request);
      const { record, alreadyRevoked } = services.revokedCertificates.revoke(
        id,
        fingerprint,
        actor,
        reason,
      );
      // Recorded before the session ends: the refusal holds from the revoke on.
      if (!alreadyRevoked)
        services.audit.record(actor, 'device.revoke_certificate', id, {
          fingerprintSha256: fingerprint,
          ...(reason !== undefined ? { reason } : {}),
        });
      const sessionEnded = services.disconnectCertificate(fingerprint) > 0;
      return { ...record, alreadyRevoked, sessionEnded };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/devices/:id/certificates/revoked',
    {
      schema: {
        tags: ['devices'],
        summary: "A device's revoked client certificates, newest first",
        params: DeviceIdParamsSchema,
        response: { 200: RevokedCertificateListSchema },
      },
    },
    async (request): Promise<RevokedCertificateList> => {
      services.devices.get(request.params.id);
      return services.revokedCertificates.list(request.params.id);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/devices/:id/events',
    {
      schema: {
        tags: ['devices'],
        summary: 'Recent events a device reported (model refused, activated, camera errors)',
        params: DeviceIdParamsSchema,
        response: { 200: DeviceEventListSchema },
      },
    },
    async (request): Promise<DeviceEventList> => {
      services.devices.get(request.params.id);
      return services.link.recentEvents(request.params.id);
    },
  );
}
