import { READER_PREFIX, type ReaderGrant } from '../registry/mqtt-readers.ts';

/**
 * What the cloud tells the broker when MQTT logins change. The embedded broker
 * asks the registry at every CONNECT, so it needs nothing; an external broker
 * keeps its own list of logins and ACLs, which these calls keep in step with
 * the registry. Each call resolves once the broker has applied the change.
 */
export interface BrokerAccounts {
  /** A device was provisioned or its secret rotated: it may log in with this secret only. */
  setDevice(deviceId: string, secret: string): Promise<void>;
  /** Many devices were provisioned at once (as setDevice for each, in fewer round trips). */
  setDevices(devices: readonly { deviceId: string; secret: string }[]): Promise<void>;
  /** A device was decommissioned: its login and topics are gone (and a live session ended). */
  removeDevice(deviceId: string): Promise<void>;
  /** A read-only reader was created with this password and grant. */
  setReader(name: string, password: string, devices: ReaderGrant): Promise<void>;
  /** A reader was revoked. */
  removeReader(name: string): Promise<void>;
  /** The MQTT username (and client id) of a reader on this broker. */
  readerUsername(name: string): string;
}

/** A reader's username where the broker allows a colon in it: `reader:<name>`. */
export function defaultReaderUsername(name: string): string {
  return `${READER_PREFIX}${name}`;
}

/** The embedded broker's accounts: it authenticates against the registry itself. */
export const REGISTRY_ACCOUNTS: BrokerAccounts = {
  setDevice: async () => {},
  setDevices: async () => {},
  removeDevice: async () => {},
  setReader: async () => {},
  removeReader: async () => {},
  readerUsername: defaultReaderUsername,
};
