import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { PeerCertificate } from 'node:tls';
import { LinesightError } from '@linesight/protocol';

/** Where the cloud's certificate files are (config `tlsCert`, `tlsKey`, `tlsCa`, `tlsClientCa`). */
export interface CloudTlsFiles {
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  tlsCa?: string | undefined;
  tlsClientCa?: string | undefined;
}

/** The cloud's TLS material, read and checked at start. */
export interface CloudTls {
  /** The served certificate, with any intermediates after it (PEM). */
  certPem: string;
  keyPem: string;
  /** The CA devices pin (PEM): `tlsCa`, or the certificate itself when it is self-signed. */
  caPem: string;
  /** CA whose certificates log devices in without a password (PEM), when configured. */
  clientCaPem?: string;
  /** SHA-256 fingerprint of the served certificate (colon-separated hex, as node:tls shows it). */
  fingerprint256: string;
  /** When the served certificate expires. */
  validTo: Date;
}

/**
 * What the cloud's own MQTT sessions use against its TLS broker: the CA devices
 * pin, and exactly the certificate the cloud serves instead of a host name check
 * (they connect to the bound address, which the certificate need not name).
 */
export interface ServiceMqttTls {
  ca: string;
  rejectUnauthorized: true;
  checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Reads and checks the certificate files: each readable, PEM, the key matching the
 * certificate, the certificate valid now and signed by `tlsCa` (or self-signed when
 * no `tlsCa` is given), the client CA a CA. Undefined when TLS is not configured.
 * Every problem is ERR_CLOUD_CONFIG naming the option and the file.
 */
export async function loadCloudTls(
  files: CloudTlsFiles,
  now: Date = new Date(),
): Promise<CloudTls | undefined> {
  if (files.tlsCert === undefined && files.tlsKey === undefined) {
    for (const option of ['tlsCa', 'tlsClientCa'] as const)
      if (files[option] !== undefined)
        throw configError(`${option} needs tlsCert and tlsKey (--tls-cert, --tls-key)`);
    return undefined;
  }
  if (files.tlsCert === undefined || files.tlsKey === undefined)
    throw configError('tlsCert and tlsKey (--tls-cert, --tls-key) go together: give both');
  const certPem = await readPem('tlsCert', files.tlsCert);
  const chain = certificatesIn('tlsCert', files.tlsCert, certPem);
  const leaf = chain[0] as X509Certificate;
  const keyPem = await readPem('tlsKey', files.tlsKey);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (cause) {
    throw configError(
      `tlsKey ${files.tlsKey}: not an unencrypted PEM private key (${messageOf(cause)})`,
      cause,
    );
  }
  if (!leaf.checkPrivateKey(key))
    throw configError(
      `tlsKey ${files.tlsKey} does not belong to the certificate in ${files.tlsCert} (${leaf.subject.replace(/\n/g, ', ')})`,
    );
  const validFrom = new Date(leaf.validFrom);
  const validTo = new Date(leaf.validTo);
  if (validTo.getTime() <= now.getTime())
    throw configError(
      `tlsCert ${files.tlsCert} expired on ${validTo.toISOString()}: devices would refuse it`,
    );
  if (validFrom.getTime() > now.getTime())
    throw configError(
      `tlsCert ${files.tlsCert} is not valid before ${validFrom.toISOString()}: devices would refuse it`,
    );
  let caPem: string;
  if (files.tlsCa !== undefined) {
    caPem = await readPem('tlsCa', files.tlsCa);
    const anchors = certificatesIn('tlsCa', files.tlsCa, caPem);
    if (!chainsTo(leaf, chain.slice(1), anchors))
      throw configError(
        `tlsCert ${files.tlsCert} is not signed by the CA in tlsCa ${files.tlsCa} (nor through the intermediates after it in ${files.tlsCert}): devices pinning that CA would refuse it`,
      );
  } else {
    if (!issued(leaf, leaf))
      throw configError(
        `tlsCert ${files.tlsCert} is not self-signed: give the CA that signed it as tlsCa (--tls-ca), the certificate devices pin`,
      );
    caPem = leaf.toString();
  }
  let clientCaPem: string | undefined;
  if (files.tlsClientCa !== undefined) {
    clientCaPem = await readPem('tlsClientCa', files.tlsClientCa);
    const cas = certificatesIn('tlsClientCa', files.tlsClientCa, clientCaPem);
    if (!cas.every((c) => c.ca))
      throw configError(
        `tlsClientCa ${files.tlsClientCa} holds a certificate that is not a CA (basicConstraints CA:TRUE)`,
      );
  }
  return {
    certPem,
    keyPem,
    caPem,
    ...(clientCaPem !== undefined ? { clientCaPem } : {}),
    fingerprint256: leaf.fingerprint256,
    validTo,
  };
}

/** The options the cloud's own MQTT sessions connect to its TLS broker with. */
export function serviceMqttTls(tls: CloudTls): ServiceMqttTls {
  return {
    ca: tls.caPem,
    rejectUnauthorized: true,
    checkServerIdentity: (_host, cert) =>
      cert.fingerprint256 === tls.fingerprint256
        ? undefined
        : new Error(
            `the broker presented certificate ${cert.fingerprint256}, not the cloud's own ${tls.fingerprint256}`,
          ),
  };
}

async function readPem(option: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw configError(`${option} ${path}: cannot read it (${messageOf(cause)})`, cause);
  }
}

function certificatesIn(option: string, path: string, pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  if (blocks.length === 0)
    throw configError(`${option} ${path}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (cause) {
      throw configError(
        `${option} ${path}: certificate ${i + 1} cannot be parsed (${messageOf(cause)})`,
        cause,
      );
    }
  });
}

function issued(cert: X509Certificate, by: X509Certificate): boolean {
  return cert.checkIssued(by) && cert.verify(by.publicKey);
}

/** True when `leaf` is signed by an anchor, directly or through the given intermediates. */
function chainsTo(
  leaf: X509Certificate,
  intermediates: X509Certificate[],
  anchors: X509Certificate[],
): boolean {
  let current = leaf;
  for (let depth = 0; depth <= intermediates.length; depth++) {
    if (anchors.some((a) => issued(current, a))) return true;
    const next = intermediates.find((i) => i !== current && issued(current, i));
    if (next === undefined) return false;
    current = next;
  }
  return false;
}

function configError(problem: string, cause?: unknown): LinesightError {
  return new LinesightError('ERR_CLOUD_CONFIG', `invalid cloud configuration:\n  ${problem}`, {
    ...(cause !== undefined ? { cause } : {}),
    details: { problems: [problem] },
  });
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
