import {
  DEVICE_PUBLISH_CHANNELS,
  DEVICE_RETAINED_CHANNELS,
  DEVICE_SUBSCRIBE_CHANNELS,
  TOPIC_ROOT,
  deviceTopic,
  isValidDeviceId,
  parseDeviceTopic,
  type DeviceChannel,
} from '@linesight/protocol';

/** Who an MQTT connection authenticated as. */
export type MqttIdentity =
  | { kind: 'device'; deviceId: string }
  | { kind: 'service' }
  | { kind: 'admin' }
  /** A read-only line system or MES: results and telemetry of the granted devices. */
  | { kind: 'reader'; name: string; devices: readonly string[] | '*' };

/** Channels a reader may subscribe to. */
export const READER_CHANNELS: readonly DeviceChannel[] = ['results', 'telemetry'];

/** True when `identity` may publish to `topic`. Devices only to their own publish channels; readers never. */
export function canPublish(identity: MqttIdentity, topic: string): boolean {
  if (identity.kind === 'reader') return false;
  if (identity.kind !== 'device') return topic.startsWith(`${TOPIC_ROOT}/`);
  const parsed = parseDeviceTopic(topic);
  return (
    parsed !== undefined &&
    parsed.deviceId === identity.deviceId &&
    DEVICE_PUBLISH_CHANNELS.includes(parsed.channel)
  );
}

/** True when `identity` may subscribe to `filter`. Devices only to their own desired state, no wildcards. */
export function canSubscribe(identity: MqttIdentity, filter: string): boolean {
  if (identity.kind === 'reader') return readerMaySubscribe(identity.devices, filter);
  if (identity.kind !== 'device') return filter.startsWith(`${TOPIC_ROOT}/`);
  return DEVICE_SUBSCRIBE_CHANNELS.some((ch) => deviceTopic(identity.deviceId, ch) === filter);
}

/** True when a retained publish by `identity` to `topic` may stay retained: devices only on `reported` and `status`. */
export function mayRetain(identity: MqttIdentity, topic: string): boolean {
  if (identity.kind !== 'device') return true;
  const channel = parseDeviceTopic(topic)?.channel;
  return channel !== undefined && DEVICE_RETAINED_CHANNELS.includes(channel);
}

/**
 * A reader's filter names one readable channel of one granted device; `+` in
 * the device's place only when every device is granted. No `#`, no other
 * wildcard.
 */
function readerMaySubscribe(devices: readonly string[] | '*', filter: string): boolean {
  const prefix = `${TOPIC_ROOT}/devices/`;
  if (!filter.startsWith(prefix)) return false;
  const [deviceId, channel, ...rest] = filter.slice(prefix.length).split('/');
  if (rest.length > 0 || deviceId === undefined || channel === undefined) return false;
  if (!(READER_CHANNELS as readonly string[]).includes(channel)) return false;
  if (deviceId === '+') return devices === '*';
  if (!isValidDeviceId(deviceId)) return false;
  return devices === '*' || devices.includes(deviceId);
}
