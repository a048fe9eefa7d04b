import {
  DEVICE_PUBLISH_CHANNELS,
  DEVICE_RETAINED_CHANNELS,
  DEVICE_SUBSCRIBE_CHANNELS,
  TOPIC_ROOT,
  deviceTopic,
  parseDeviceTopic,
} from '@linesight/protocol';

/** Who an MQTT connection authenticated as. */
export type MqttIdentity =
  { kind: 'device'; deviceId: string } | { kind: 'service' } | { kind: 'admin' };

/** True when `identity` may publish to `topic`. Devices only to their own publish channels. */
export function canPublish(identity: MqttIdentity, topic: string): boolean {
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
  if (identity.kind !== 'device') return filter.startsWith(`${TOPIC_ROOT}/`);
  return DEVICE_SUBSCRIBE_CHANNELS.some((ch) => deviceTopic(identity.deviceId, ch) === filter);
}

/** True when a retained publish by `identity` to `topic` may stay retained: devices only on `reported` and `status`. */
export function mayRetain(identity: MqttIdentity, topic: string): boolean {
  if (identity.kind !== 'device') return true;
  const channel = parseDeviceTopic(topic)?.channel;
  return channel !== undefined && DEVICE_RETAINED_CHANNELS.includes(channel);
}
