import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate with its key, as files and as PEM. */
export interface TestCertificate {
  certPath: string;
  keyPath: string;
}

/** A CA made for a test: its files, and a way to issue certificates from it. */
export interface TestCa extends TestCertificate {
  /**
   * Issues a certificate signed by this CA: a server certificate for 127.0.0.1 and
   * localhost, or a client certificate with the given CN (and the same DNS SAN).
   * `expired` back-dates it so that it is no longer valid.
   */
  issue(
    name: string,
    options?: { client?: boolean; expired?: boolean; ca?: boolean },
  ): Promise<TestCertificate>;
}

/** Extensions of a CA certificate. */
const CA_EXTENSIONS = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';
/** Extensions of a server certificate for 127.0.0.1 and localhost. */
const SERVER_EXTENSIONS =
  'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n';
/** Extensions of a client certificate whose DNS SAN is its CN. */
const clientExtensions = (cn: string): string =>
  `basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:${cn}\n`;

/** Who signs a certificate: a CA's files, or the certificate's own key when absent. */
type Signer = TestCertificate | undefined;

let serialCount = 0;

/**
 * Issues one certificate with openssl (Debian's `openssl`; tests only): a fresh EC
 * P-256 key (milliseconds), `/CN=<subject>`, the given extensions (openssl extension
 * lines), valid for two days, signed by `signer` or self-signed. `expired` back-dates it
 * (signer required) so that it is no longer valid. Files are `<base>.key` and `<base>.crt`.
 */
async function issue(
  subject: string,
  signer: Signer,
  extensions: string,
  o: { dir: string; base: string; expired?: boolean },
): Promise<TestCertificate> {
  await mkdir(o.dir, { recursive: true });
  const keyPath = `${o.base}.key`;
  const certPath = `${o.base}.crt`;
  const csr = `${o.base}.csr`;
  const ext = `${o.base}.ext`;
  await writeFile(ext, extensions);
  // prettier-ignore
  await openssl([
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', keyPath, '-out', csr, '-subj', `/CN=${subject}`,
  ]);
  if (o.expired === true) {
    if (signer === undefined) throw new Error('an expired certificate needs a signer');
    // `openssl x509 -req` (OpenSSL 3.0) sets no start date: `openssl ca` with a throwaway setup does.
    await expiredSign({ dir: o.dir, base: o.base, csr, ext, leafCert: certPath, ca: signer });
    return { certPath, keyPath };
  }
  serialCount++;
  // prettier-ignore
  await openssl([
    'x509', '-req', '-in', csr,
    ...(signer === undefined
      ? ['-key', keyPath]
      : ['-CA', signer.certPath, '-CAkey', signer.keyPath]),
    '-set_serial', String(Date.now() * 1000 + serialCount),
    '-out', certPath, '-extfile', ext, '-days', '2',
  ]);
  return { certPath, keyPath };
}

/** Makes a self-signed CA in `dir`; its `issue` signs server, client or CA certificates. */
export async function makeTestCa(dir: string, name: string): Promise<TestCa> {
  const ca = await issue(name, undefined, CA_EXTENSIONS, { dir, base: join(dir, name) });
  let serial = 1;
  return {
    ...ca,
    issue: async (certName, options = {}) => {
      const base = join(dir, `${name}-${certName}-${serial}`);
      serial++;
      const extensions =
        options.ca === true
          ? CA_EXTENSIONS
          : options.client === true
            ? clientExtensions(certName)
            : SERVER_EXTENSIONS;
      return issue(certName, ca, extensions, {
        dir,
        base,
        ...(options.expired === true ? { expired: true } : {}),
      });
    },
  };
}

/** A self-signed server certificate for 127.0.0.1 (no separate CA). */
export async function makeSelfSigned(dir: string, name: string): Promise<TestCertificate> {
  return issue(name, undefined, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n', {
    dir,
    base: join(dir, name),
  });
}

async function expiredSign(o: {
  dir: string;
  base: string;
  csr: string;
  ext: string;
  leafCert: string;
  ca: TestCertificate;
}): Promise<void> {
  const db = `${o.base}.index`;
  const conf = `${o.base}.cnf`;
  await writeFile(db, '');
  await writeFile(`${o.base}.serial`, `${Date.now().toString(16).padStart(16, '0')}\n`);
  await writeFile(
    conf,
    [
      '[ca]',
      'default_ca = test',
      '[test]',
      `database = ${db}`,
      `serial = ${o.base}.serial`,
      `new_certs_dir = ${o.dir}`,
      `certificate = ${o.ca.certPath}`,
      `private_key = ${o.ca.keyPath}`,
      'default_md = sha256',
      'policy = any',
      'unique_subject = no',
      '[any]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  await openssl([
    'ca',
    '-batch',
    '-config',
    conf,
    '-in',
    o.csr,
    '-out',
    o.leafCert,
    '-extfile',
    o.ext,
    '-startdate',
    '20200101000000Z',
    '-enddate',
    '20200102000000Z',
    '-notext',
  ]);
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args[0] ?? ''} failed: ${stderr || String(err)}`, { cause: err });
  }
}
