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

/**
 * Makes a CA in `dir` with openssl (Debian's `openssl`; tests only). Keys are
 * EC P-256 so a CA and a few certificates take milliseconds.
 */
export async function makeTestCa(dir: string, name: string): Promise<TestCa> {
  await mkdir(dir, { recursive: true });
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  let serial = 1;
  return {
    certPath,
    keyPath,
    issue: async (certName, options = {}) => {
      const base = join(dir, `${name}-${certName}-${serial}`);
      serial++;
      const leafKey = `${base}.key`;
      const csr = `${base}.csr`;
      const leafCert = `${base}.crt`;
      const ext = `${base}.ext`;
      await openssl([
        'req',
        '-new',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        leafKey,
        '-out',
        csr,
        '-subj',
        `/CN=${certName}`,
      ]);
      await writeFile(
        ext,
        options.ca === true
          ? 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n'
          : options.client === true
            ? `basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:${certName}\n`
            : 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
      );
      if (options.expired === true) {
        // `openssl x509 -req` (OpenSSL 3.0) sets no start date: `openssl ca` with a throwaway setup does.
        await expiredSign({ dir, base, csr, ext, leafCert, caCert: certPath, caKey: keyPath });
      } else {
        await openssl([
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          certPath,
          '-CAkey',
          keyPath,
          '-set_serial',
          String(Date.now() * 1000 + serial),
          '-out',
          leafCert,
          '-extfile',
          ext,
          '-days',
          '2',
        ]);
      }
      return { certPath: leafCert, keyPath: leafKey };
    },
  };
}

/** A self-signed server certificate for 127.0.0.1 (no separate CA). */
export async function makeSelfSigned(dir: string, name: string): Promise<TestCertificate> {
  await mkdir(dir, { recursive: true });
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  return { certPath, keyPath };
}

async function expiredSign(o: {
  dir: string;
  base: string;
  csr: string;
  ext: string;
  leafCert: string;
  caCert: string;
  caKey: string;
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
      `certificate = ${o.caCert}`,
      `private_key = ${o.caKey}`,
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
