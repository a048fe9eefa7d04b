import { Agent as HttpDispatcher } from 'undici';

/** A device's TLS towards its cloud, from provisioning (the CA) and its own files (a client certificate). */
export interface CloudTls {
  /** The only CA trusted for the cloud's mqtts and HTTPS (PEM). */
  caPem: string;
  /** A client certificate naming the device id, instead of the password (PEM, with its key). */
  clientCertPem?: string;
  clientKeyPem?: string;
}

/** fetch as the agent calls the cloud with it. */
export type CloudFetch = (url: string, init?: RequestInit) => Promise<Response>;

/** TLS options for mqtt.js: the pinned CA only, the client certificate when there is one. */
export function mqttTlsOptions(tls: CloudTls | undefined): {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized?: true;
} {
  if (tls === undefined) return {};
  return {
    ca: tls.caPem,
    rejectUnauthorized: true,
    ...clientCertificate(tls),
  };
}

/**
 * A fetch that trusts only the pinned CA (and presents the client certificate)
 * for URLs of the cloud's origin, so the system's CAs cannot vouch for a false
 * cloud; other origins (signed URLs of an S3 store) are fetched as usual.
 * Without TLS settings it is plain fetch. close() releases its connections.
 */
export function cloudFetch(
  cloudUrl: string,
  tls: CloudTls | undefined,
): { fetch: CloudFetch; close: () => Promise<void> } {
  if (tls === undefined) return { fetch: (url, init) => fetch(url, init), close: async () => {} };
  const origin = new URL(cloudUrl).origin;
  const dispatcher = new HttpDispatcher({
    connect: { ca: tls.caPem, rejectUnauthorized: true, ...clientCertificate(tls) },
  });
  return {
    fetch: (url, init) =>
      new URL(url).origin === origin
        ? // Node's fetch is undici 6, the same major as the dispatcher; its types name another copy.
          fetch(url, { ...init, dispatcher } as RequestInit)
        : fetch(url, init),
    close: () => dispatcher.close(),
  };
}

/** The Authorization header of a device's HTTP Basic login; none without a password (certificate login). */
export function basicAuthHeader(username: string, password: string): Record<string, string> {
  if (password === '') return {};
  return { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}` };
}

function clientCertificate(tls: CloudTls): { cert?: string; key?: string } {
  return tls.clientCertPem !== undefined && tls.clientKeyPem !== undefined
    ? { cert: tls.clientCertPem, key: tls.clientKeyPem }
    : {};
}
