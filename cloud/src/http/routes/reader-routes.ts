import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  CreateMqttReaderBodySchema,
  CreatedMqttReaderSchema,
  MqttReaderViewSchema,
  RevokedMqttReaderSchema,
} from '@linesight/protocol';
import { actorOf } from '../auth.ts';
import type { CloudServices } from '../services.ts';

/** Read-only MQTT credentials for line systems and MES (admin only). */
export async function readerRoutes(app: FastifyInstance, services: CloudServices): Promise<void> {
  app.post<{ Body: { name: string; devices: string[] } }>(
    '/v1/mqtt-readers',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['operators'],
        summary:
          'Create a read-only MQTT credential: it may subscribe to the results and telemetry of the devices it is granted, nothing else; the password is shown only once',
        description:
          'Connect with client id and username both set to the answer\'s `username` ("reader:<name>"; "reader@<name>" on a Mosquitto with --mqtt-accounts files). ' +
          'Filters: linesight/v1/devices/<id>/results and .../telemetry for a granted id, or + in place of the id when devices is ["*"].',
        body: CreateMqttReaderBodySchema,
        response: { 201: CreatedMqttReaderSchema },
      },
    },
    async (request, reply) => {
      const by = actorOf(request);
      const created = services.readers.create(request.body.name, request.body.devices, by);
      try {
        await services.brokerAccounts.setReader(
          created.name,
          created.password,
          created.devices.length === 1 && created.devices[0] === '*' ? '*' : created.devices,
        );
      } catch (err) {
        services.readers.revoke(created.name);
        throw err;
      }
      services.audit.record(by, 'mqtt_reader.create', created.name, { devices: created.devices });
      void reply.status(201);
      return { ...created, username: services.brokerAccounts.readerUsername(created.name) };
    },
  );

  app.get(
    '/v1/mqtt-readers',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['operators'],
        summary: 'List read-only MQTT credentials and their grants (never the passwords)',
        response: { 200: Type.Array(MqttReaderViewSchema) },
      },
    },
    async () =>
      services.readers
        .list()
        .map((r) => ({ ...r, username: services.brokerAccounts.readerUsername(r.name) })),
  );

  app.delete<{ Params: { name: string } }>(
    '/v1/mqtt-readers/:name',
    {
      config: { auth: 'admin' },
      schema: {
        tags: ['operators'],
        summary:
          'Revoke a read-only MQTT credential: refused from now on, and its live session is ended',
        params: Type.Object({ name: Type.String() }),
        response: { 200: RevokedMqttReaderSchema },
      },
    },
    async (request) => {
      const { name } = request.params;
      services.readers.revoke(name);
      await services.brokerAccounts.removeReader(name);
      await services.link.disconnectClient(services.brokerAccounts.readerUsername(name));
      services.audit.record(actorOf(request), 'mqtt_reader.revoke', name);
      return { name, revoked: true as const };
    },
  );
}
