import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { fingerprintOfDer } from './certificate-fingerprint.ts';

/**
 * What TLS proved about a client that presented a certificate: the names (CN and DNS
 * subject alternative names) of a certificate the client CA signed and that is valid
 * now, with its SHA-256 fingerprint (revocation names certificates by it), or why a
 * presented certificate was not accepted (another CA, expired...).
 */
export type ClientCertificate =
  | { verified: true; names: string[]; fingerprintSha256: string }
  | { verified: false; reason: string };

/** What the TLS layer proved about a socket's client certificate; undefined without one. */
export function clientCertificateOf(socket: Socket): ClientCertificate | undefined {
  if (!(socket instanceof TLSSocket)) return undefined;
  const peer = socket.getPeerCertificate();
  if (peer === null || Object.keys(peer).length === 0) return undefined;
  if (!socket.authorized)
    return { verified: false, reason: String(socket.authorizationError ?? 'not verified') };
  const cn = peer.subject.CN as string | string[] | undefined;
  const sans = (peer.subjectaltname ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  return {
    verified: true,
    names: [...(Array.isArray(cn) ? cn : cn ? [cn] : []), ...sans],
    fingerprintSha256: fingerprintOfDer(peer.raw),
  };
}
