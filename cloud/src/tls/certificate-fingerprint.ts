import { X509Certificate, createHash } from 'node:crypto';
import { LinesightError } from '@linesight/protocol';

/** The SHA-256 of a DER certificate, lower-case hex: how the cloud names one certificate. */
export function fingerprintOfDer(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/** A fingerprint as an operator may type it (upper case, colon-separated) in the cloud's form. */
export function normalizeFingerprint(fingerprint: string): string {
  const hex = fingerprint.replaceAll(':', '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex))
    throw new LinesightError(
      'ERR_CLOUD_BAD_REQUEST',
      'fingerprintSha256 must be 64 hex digits (SHA-256 of the DER certificate), bare or colon-separated',
    );
  return hex;
}

/** What a PEM certificate an operator sent says: its fingerprint and the names (CN, DNS) it carries. */
export interface ParsedCertificate {
  fingerprintSha256: string;
  names: string[];
}

/** Reads one PEM certificate; ERR_CLOUD_BAD_REQUEST when it is not exactly one readable certificate. */
export function parseCertificatePem(pem: string): ParsedCertificate {
  const count = pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  if (count !== 1)
    throw new LinesightError(
      'ERR_CLOUD_BAD_REQUEST',
      `certificatePem must hold exactly one PEM certificate ("-----BEGIN CERTIFICATE-----"); it holds ${count}`,
    );
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pem);
  } catch (cause) {
    throw new LinesightError(
      'ERR_CLOUD_BAD_REQUEST',
      'certificatePem is not a readable X.509 certificate',
      { cause },
    );
  }
  const cn = certificate.subject
    .split('\n')
    .filter((line) => line.startsWith('CN='))
    .map((line) => line.slice(3));
  const dns = (certificate.subjectAltName ?? '')
    .split(', ')
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  return { fingerprintSha256: fingerprintOfDer(certificate.raw), names: [...cn, ...dns] };
}
