// Static checks of the deployment files in manifests/ and scripts/install-agent.sh. No
// systemd runs as PID 1 here and no container engine or cluster is available, so:
// - the systemd unit: `systemd-analyze verify` (and its `security` exposure score) against a
//   scratch root that holds the unit's executable, plus the rules that matter;
// - the install script: `bash -n` and shellcheck (Debian's; .ci/run installs it);
// - the Dockerfiles: hadolint is neither in Debian nor on npm, so the rules that matter are
//   checked on the parse tree of `dockerfile-ast` (the parser of VS Code's Docker support);
// - the Kubernetes objects: validated against the Kubernetes OpenAPI schemas that the npm
//   package `kubernetes-models` ships (compiled validators, as kubeconform uses the schemas;
//   unknown fields are not rejected, so the fields that matter are checked by name too).
// The options the unit, the images and the StatefulSet pass to `linesight` are checked against
// the command's own --help, so a renamed option breaks this test, not a plant.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT, runLinesight } from '../helpers/linesight-process.ts';

const run = promisify(execFile);
const UNIT = join(REPO_ROOT, 'manifests/systemd/linesight-agent@.service');
const INSTALL = join(REPO_ROOT, 'scripts/install-agent.sh');
const DOCKERFILES = ['cloud', 'agent'].map((n) =>
  join(REPO_ROOT, `manifests/containers/${n}.Dockerfile`),
);
const K8S_CLOUD = join(REPO_ROOT, 'manifests/kubernetes/cloud.yaml');

function which(...paths: string[]): string | undefined {
  return paths.find((p) => existsSync(p));
}
const systemdAnalyze = which('/usr/bin/systemd-analyze', '/bin/systemd-analyze');
const shellcheck = which('/usr/bin/shellcheck', '/bin/shellcheck');

let dir: string;
const helpOf: Record<string, string> = {};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-manifests-'));
  for (const cmd of ['agent', 'cloud'])
    helpOf[cmd] = (await runLinesight([cmd, '--help'])).join('\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The long options in `args` (`--name` or `--name=value`) that `linesight <cmd> --help` lacks. */
function unknownOptions(cmd: string, args: string[]): string[] {
  return args
    .filter((a) => a.startsWith('--'))
    .map((a) => a.split('=')[0]!)
    .filter((opt) => !new RegExp(`(^|[\\s,])${opt}([\\s,=<\\[]|$)`, 'm').test(helpOf[cmd]!));
}

/** A unit file's [Service] (or other) section as key -> values (keys may repeat). */
function unitSection(text: string, section: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = header[1]!;
      continue;
    }
    if (current !== section) continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

describe('systemd unit of the agent', () => {
  it('has the rules that matter: notify + watchdog, a dedicated user, restart, hardening, memory cap', async () => {
    const s = unitSection(await readFile(UNIT, 'utf8'), 'Service');
    const one = (k: string) => s.get(k)?.at(-1);
    expect(one('Type')).toBe('notify');
    expect(['main', 'all']).toContain(one('NotifyAccess'));
    expect(Number(one('WatchdogSec'))).toBeGreaterThan(0);
    expect(['always', 'on-failure']).toContain(one('Restart'));
    expect(one('User')).toBe('linesight');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('NoNewPrivileges')).toBe('true');
    expect(one('MemoryMax')).toMatch(/^\d+[KMG]$/);
    // The data dir is the one writable path, and it is where the agent keeps its data.
    const dataDir = '/var/lib/linesight/agent-%i';
    expect(s.get('ReadWritePaths')).toEqual([dataDir]);
    expect(one('StateDirectory')).toBe('linesight/agent-%i');
    const exec = one('ExecStart')!.split(/\s+/);
    expect(exec[exec.indexOf('--data-dir') + 1]).toBe(dataDir);
    expect(exec[exec.indexOf('--device-id') + 1]).toBe('%i');
    // The line keeps its verdicts while the scoring process restarts: the guard is the main
    // process, the one systemd's notify and watchdog talk to (test/e2e/systemd-notify.test.ts).
    expect(exec).toContain('--line-guard');
    expect(unknownOptions('agent', exec.slice(2))).toEqual([]);
    // What would break the agent: V8's JIT needs W+X memory, onnxruntime reads /proc/cpuinfo,
    // cameras are devices.
    expect(one('MemoryDenyWriteExecute')).not.toBe('true');
    expect(one('ProcSubset')).not.toBe('pid');
    expect(one('PrivateDevices')).not.toBe('true');
  });

  it.skipIf(systemdAnalyze === undefined)(
    'passes systemd-analyze verify without a warning, with an exposure score of OK or better',
    async () => {
      const root = join(dir, 'root');
      await mkdir(join(root, 'opt/linesight/current/bin'), { recursive: true });
      await writeFile(join(root, 'opt/linesight/current/bin/linesight'), '#!/bin/sh\n');
      await chmod(join(root, 'opt/linesight/current/bin/linesight'), 0o755);
      await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
      // The targets a service depends on by default.
      await mkdir(join(root, 'usr/lib/systemd'), { recursive: true });
      await cp('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), {
        recursive: true,
      });
      const instance = join(root, 'etc/systemd/system/linesight-agent@line-1.service');
      await cp(UNIT, instance);
      const verify = await run(systemdAnalyze!, ['verify', '--man=no', `--root=${root}`, instance]);
      expect(`${verify.stdout}${verify.stderr}`.trim()).toBe('');
      const security = await run(systemdAnalyze!, [
        'security',
        '--offline=true',
        `--root=${root}`,
        'linesight-agent@line-1.service',
      ]);
      const score = /Overall exposure level for \S+: ([\d.]+) (\w+)/.exec(security.stdout);
      expect(score, security.stdout.slice(-500)).not.toBeNull();
      // systemd's scale: 0-2 SAFE, 2-5 OK, 5-7 MEDIUM, 7-9 EXPOSED, 9+ UNSAFE.
      expect(['SAFE', 'OK']).toContain(score![2]);

      // The check itself can fail: a misspelt setting is reported.
      await writeFile(
        instance,
        (await readFile(UNIT, 'utf8')).replace('MemoryMax=', 'MemoryMaxx='),
      );
      const bad = await run(systemdAnalyze!, ['verify', '--man=no', `--root=${root}`, instance]);
      expect(bad.stderr).toContain('MemoryMaxx');
    },
  );
});

describe('install script', () => {
  it('parses (bash -n)', async () => {
    await run('bash', ['-n', INSTALL]);
  });

  it.skipIf(shellcheck === undefined)('passes shellcheck', async () => {
    const { stdout } = await run(shellcheck!, ['--format=gcc', INSTALL]).catch(
      (err: { stdout: string }) => err,
    );
    expect(stdout).toBe('');
  });

  it('refuses to run without root or without a release, saying what is missing', async () => {
    const err = await run('bash', [INSTALL, '--device-id', 'line-1']).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toMatch(/run as root|--release/);
  });
});

/** Instructions per build stage (a stage starts at each FROM). */
function stages(text: string): Instruction[][] {
  const out: Instruction[][] = [];
  for (const ins of DockerfileParser.parse(text).getInstructions()) {
    if (ins.getKeyword() === 'FROM') out.push([]);
    out.at(-1)?.push(ins);
  }
  return out;
}

describe.each(DOCKERFILES)('Dockerfile %s', (file) => {
  let text: string;
  let all: Instruction[][];
  let final: Instruction[];
  const args = (ins: Instruction) => ins.getArgumentsContent() ?? '';
  const of = (list: Instruction[], kw: string) => list.filter((i) => i.getKeyword() === kw);

  beforeAll(async () => {
    text = await readFile(file, 'utf8');
    all = stages(text);
    final = all.at(-1)!;
  });

  it('is multi-stage: the build (compiler, npm ci, release) stays out of the final image', () => {
    expect(all.length).toBeGreaterThanOrEqual(2);
    expect(of(all[0]!, 'FROM')[0] && args(of(all[0]!, 'FROM')[0]!)).toMatch(/ AS build$/);
    const finalRuns = of(final, 'RUN').map(args).join('\n');
    expect(finalRuns).not.toMatch(/\b(g\+\+|gcc|make|build-essential|npm ci)\b/);
    expect(of(final, 'COPY').some((c) => c.getTextContent().includes('--from=build'))).toBe(true);
  });

  it('runs as a non-root user, with a health check, in exec form', () => {
    const user = of(final, 'USER').at(-1);
    expect(user).toBeDefined();
    expect(args(user!)).not.toMatch(/^(root|0)(:|$)/);
    const health = of(final, 'HEALTHCHECK');
    expect(health).toHaveLength(1);
    expect(args(health[0]!)).toMatch(/CMD \["node", "-e", .*\/healthz/);
    for (const kw of ['ENTRYPOINT', 'CMD'])
      for (const ins of of(final, kw)) expect(args(ins).startsWith('[')).toBe(true);
  });

  it('pins its base image, keeps apt lean and uses no ADD', () => {
    const arg = /ARG NODE_IMAGE=(\S+)/.exec(text)?.[1];
    expect(arg).toMatch(/^node:\d+\.\d+\.\d+-[a-z]+-slim$/);
    for (const stage of all) expect(args(of(stage, 'FROM')[0]!)).toMatch(/^\$\{NODE_IMAGE\}/);
    expect(all.flat().some((i) => i.getKeyword() === 'ADD')).toBe(false);
    for (const ins of all.flat().filter((i) => i.getKeyword() === 'RUN')) {
      const body = args(ins);
      if (!body.includes('apt-get install')) continue;
      expect(body).toContain('--no-install-recommends');
      expect(body).toContain('rm -rf /var/lib/apt/lists/*');
    }
  });

  it('starts linesight with options it has', () => {
    const json = (ins: Instruction | undefined) =>
      ins === undefined ? [] : (JSON.parse(args(ins)) as string[]);
    const entry = json(of(final, 'ENTRYPOINT').at(-1));
    const cmd = json(of(final, 'CMD').at(-1));
    const sub = entry[2]!;
    expect(entry.slice(0, 2)).toEqual([
      'node',
      '/opt/linesight/node_modules/linesight/bin/linesight.js',
    ]);
    expect(unknownOptions(sub, [...entry.slice(3), ...cmd])).toEqual([]);
  });
});

describe('.dockerignore', () => {
  it('keeps node_modules, data and the git folder out of the build context', async () => {
    const lines = (await readFile(join(REPO_ROOT, '.dockerignore'), 'utf8')).split('\n');
    for (const must of ['.git', '**/node_modules', 'data', 'dist']) expect(lines).toContain(must);
  });
});

describe('Kubernetes objects of the cloud', () => {
  type Obj = { kind: string; metadata: { name: string } } & Record<string, unknown>;
  let objects: Obj[];

  beforeAll(async () => {
    objects = parseAllDocuments(await readFile(K8S_CLOUD, 'utf8')).map((d) => d.toJS() as Obj);
  });

  const modelOf = (o: Obj) => {
    switch (o.kind) {
      case 'Secret':
        return new Secret(o as never);
      case 'Service':
        return new Service(o as never);
      case 'StatefulSet':
        return new StatefulSet(o as never);
      default:
        throw new Error(`no schema for kind ${o.kind} here`);
    }
  };

  it('validates every object against the Kubernetes schemas', () => {
    expect(objects.map((o) => o.kind).sort()).toEqual([
      'Secret',
      'Service',
      'Service',
      'StatefulSet',
    ]);
    for (const o of objects) expect(() => modelOf(o).validate(), o.metadata.name).not.toThrow();
  });

  it('the schema check can fail: a port that is not a number is refused', () => {
    const sts = structuredClone(objects.find((o) => o.kind === 'StatefulSet')!) as never as {
      spec: { template: { spec: { containers: { ports: { containerPort: unknown }[] }[] } } };
    };
    sts.spec.template.spec.containers[0]!.ports[0]!.containerPort = 'http';
    expect(() => new StatefulSet(sts as never).validate()).toThrow(/containerPort/);
  });

  it('runs one replica with its data on a claim, probes on /healthz and /readyz, requests and the token from the Secret', () => {
    const sts = new StatefulSet(objects.find((o) => o.kind === 'StatefulSet') as never);
    const spec = sts.spec!;
    expect(spec.replicas).toBe(1);
    const podLabels = spec.template.metadata!.labels!;
    expect(spec.selector.matchLabels).toEqual(podLabels);
    const c = spec.template.spec!.containers[0]!;
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(c.startupProbe?.httpGet?.path).toBe('/healthz');
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(c.resources?.requests?.cpu).toBeDefined();
    expect(c.resources?.requests?.memory).toBeDefined();
    expect(c.resources?.limits?.memory).toBeDefined();
    expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(spec.template.spec!.securityContext?.runAsNonRoot).toBe(true);
    // The data dir lives on the claim.
    const claim = spec.volumeClaimTemplates![0]!;
    const mount = c.volumeMounts!.find((m) => m.name === claim.metadata!.name)!;
    const dataDir = c.args!.find((a) => a.startsWith('--data-dir='))!.split('=')[1]!;
    expect(dataDir.startsWith(`${mount.mountPath}/`)).toBe(true);
    expect(claim.spec!.resources!.requests!.storage).toBeDefined();
    // The admin token comes from the Secret in this file, by the key it has.
    const ref = c.env!.find((e) => e.name === 'LINESIGHT_ADMIN_TOKEN')!.valueFrom!.secretKeyRef!;
    const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === ref.name) as
      { stringData?: Record<string, string> } | undefined;
    expect(secret?.stringData).toHaveProperty(ref.key);
    // Probes and Services name ports the container has; Services select the pod.
    const portNames = c.ports!.map((p) => p.name);
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe])
      expect(portNames).toContain(probe!.httpGet!.port);
    for (const svc of objects
      .filter((o) => o.kind === 'Service')
      .map((o) => new Service(o as never))) {
      expect(svc.spec!.selector).toEqual(podLabels);
      for (const p of svc.spec!.ports!) expect(portNames).toContain(p.targetPort);
    }
    expect(unknownOptions('cloud', c.args!)).toEqual([]);
  });

  it('serves HTTPS and mqtts with the certificate files of the linesight-tls Secret, read-only', () => {
    const sts = new StatefulSet(objects.find((o) => o.kind === 'StatefulSet') as never);
    const pod = sts.spec!.template.spec!;
    const c = pod.containers[0]!;
    const arg = (name: string) => c.args!.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
    const volume = pod.volumes!.find((v) => v.secret?.secretName === 'linesight-tls')!;
    const mount = c.volumeMounts!.find((m) => m.name === volume.name)!;
    expect(mount.readOnly).toBe(true);
    // Each file is a key of a kubernetes.io/tls Secret (with cert-manager's ca.crt) in the mount.
    expect(['tls-cert', 'tls-key', 'tls-ca'].map(arg)).toEqual(
      ['tls.crt', 'tls.key', 'ca.crt'].map((key) => `${mount.mountPath}/${key}`),
    );
    // Group-readable only (fsGroup), never world-readable: it holds the private key.
    expect(volume.secret!.defaultMode! & 0o007).toBe(0);
    expect(arg('advertised-url')).toMatch(/^https:\/\//);
    expect(arg('advertised-mqtt-url')).toMatch(/^mqtts:\/\//);
    for (const probe of [c.livenessProbe, c.readinessProbe, c.startupProbe])
      expect(probe!.httpGet!.scheme).toBe('HTTPS');
  });
});
