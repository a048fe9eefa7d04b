import { LinesightError } from './errors.ts';

/** The versioned root of every Linesight topic. */
export const TOPIC_ROOT = 'linesight/v1';

/** The per-device channels; see ARCHITECTURE.md for direction and retention. */
export const DEVICE_CHANNELS = [
  'desired',
  'reported',
  'telemetry',
  'events',
  'results',
  'status',
  'verdicts',
  'windows',
  'event-log',
  'samples',
] as const;

/** One per-device channel. */
export type DeviceChannel = (typeof DEVICE_CHANNELS)[number];

/** Channels a device itself may publish to (all under its own prefix). */
export const DEVICE_PUBLISH_CHANNELS: readonly DeviceChannel[] = [
  'reported',
  'telemetry',
  'events',
  'results',
  'status',
  'verdicts',
  'windows',
  'event-log',
  'samples',
];

/** Device channels whose messages are retained by the broker; a retain flag elsewhere is dropped. */
export const DEVICE_RETAINED_CHANNELS: readonly DeviceChannel[] = ['reported', 'status'];

/** Channels a device may subscribe to (all under its own prefix). */
export const DEVICE_SUBSCRIBE_CHANNELS: readonly DeviceChannel[] = ['desired'];

const DEVICE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** True when `id` can be a device id: 1-64 of [A-Za-z0-9_.-], no MQTT wildcards or slashes. */
export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID.test(id);
}

/** Throws ERR_PROTOCOL_TOPIC unless `id` is a valid device id. */
export function assertDeviceId(id: string): void {
  if (!isValidDeviceId(id)) {
    throw new LinesightError(
      'ERR_PROTOCOL_TOPIC',
      `invalid device id ${JSON.stringify(id)}: use 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit`,
    );
  }
}

/** The prefix under which one device's topics live. */
export function devicePrefix(deviceId: string): string {
  assertDeviceId(deviceId);
  return `${TOPIC_ROOT}/devices/${deviceId}`;
}

/** The topic of one channel of one device. */
export function deviceTopic(deviceId: string, channel: DeviceChannel): string {
  return `${devicePrefix(deviceId)}/${channel}`;
}

/**
 * One channel's topic with `placeholder` in the device's place: a broker's ACL
 * pattern, such as Mosquitto's `%u` (the login's username).
 */
export function deviceTopicPattern(placeholder: string, channel: DeviceChannel): string {
  return `${TOPIC_ROOT}/devices/${placeholder}/${channel}`;
}

/** A subscription filter for one channel across every device. */
export function allDevicesFilter(channel: DeviceChannel): string {
  return `${TOPIC_ROOT}/devices/+/${channel}`;
}

/** A parsed device topic. */
export interface ParsedDeviceTopic {
  deviceId: string;
  channel: DeviceChannel;
}

/** Parses a concrete device topic; returns undefined for anything else. */
export function parseDeviceTopic(topic: string): ParsedDeviceTopic | undefined {
  const parts = topic.split('/');
  if (parts.length !== 5) return undefined;
  const [root, version, devices, deviceId, channel] = parts;
  if (`${root}/${version}` !== TOPIC_ROOT || devices !== 'devices') return undefined;
  if (deviceId === undefined || !isValidDeviceId(deviceId)) return undefined;
  if (!(DEVICE_CHANNELS as readonly string[]).includes(channel ?? '')) return undefined;
  return { deviceId, channel: channel as DeviceChannel };
}
