// Builds a release of the `linesight` command (agent, cloud and CLI) as compiled JavaScript,
// so that a device runs it with plain `node`, without a source checkout or a TypeScript loader:
//
//   npm run build:release -- [--out DIR] [--link-deps] [--pack]
//
// The release is one folder, DIR/linesight (default DIR: dist/release):
//   package.json                 name "linesight", bin, the third-party dependencies pinned to
//                                the versions installed here, and every @linesight package as a
//                                bundled dependency
//   bin/linesight.js             the command
//   node_modules/@linesight/*/   each workspace: its TypeScript compiled by tsc (relative `.ts`
//                                imports rewritten to `.js`), its other files (the inference
//                                worker, the dashboard's static files) and a package.json whose
//                                exports name the compiled files
//
// --pack also writes DIR/linesight-<version>.tgz with `npm pack`: the file to ship (packed
// before --link-deps adds its links, when both are given). On the
// device, `npm install --omit=dev <tgz>` installs the third-party dependencies for that machine
// (native ones included: sharp, onnxruntime-node and better-sqlite3 for arm64 on a Raspberry
// Pi); scripts/install-agent.sh does that. --link-deps instead links each third-party
// dependency from this checkout's node_modules into the folder, so it runs here at once (tests
// and `linesight bench startup`).
import { execFile } from 'node:child_process';
import {
  chmod,
  cp,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The workspaces that make up the release, by folder. */
const WORKSPACES = [
  'packages/protocol',
  'packages/durable-fs',
  'packages/api-client',
  'packages/vision',
  'packages/model',
  'firmware-sim',
  'agent',
  'cloud',
  'packages/cli',
] as const;

/** Build-time only dependencies of the workspaces, never shipped. */
const BUILD_ONLY = new Set(['tsx']);

/** What a release build is told. */
export interface BuildReleaseOptions {
  /** Folder that receives `linesight/` (and the tarball with `pack`). */
  outDir: string;
  /** Link third-party dependencies from this checkout's node_modules. */
  linkDeps?: boolean;
  /** With `linkDeps`: link them from this node_modules folder instead (one installed for another CPU). */
  depsFrom?: string;
  /** Also write `linesight-<version>.tgz` with `npm pack`. */
  pack?: boolean;
}

/** Where a release build put things. */
export interface BuiltRelease {
  /** The release folder. */
  dir: string;
  /** Its command: run it as `node <bin> ...`. */
  bin: string;
  version: string;
  /** The third-party dependencies, pinned. */
  dependencies: Record<string, string>;
  /** The npm tarball, with `pack`. */
  tarball?: string;
}

interface WorkspaceManifest {
  name: string;
  version: string;
  exports?: Record<string, string>;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  [key: string]: unknown;
}

/** Builds the release; see the file comment. */
export async function buildRelease(options: BuildReleaseOptions): Promise<BuiltRelease> {
  const outDir = resolve(options.outDir);
  const dir = join(outDir, 'linesight');
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  const emitDir = await mkdtemp(join(tmpdir(), 'linesight-release-emit-'));
  try {
    await compile(emitDir);
    const root = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      version: string;
      engines?: Record<string, string>;
      allowScripts?: Record<string, boolean>;
    };
    const thirdParty = new Set<string>();
    const optional = new Set<string>();
    const optionalRanges: Record<string, string> = {};
    const bundled: string[] = [];
    for (const ws of WORKSPACES) {
      const manifest = JSON.parse(
        await readFile(join(REPO_ROOT, ws, 'package.json'), 'utf8'),
      ) as WorkspaceManifest;
      bundled.push(manifest.name);
      for (const dep of Object.keys(manifest.dependencies ?? {}))
        if (!dep.startsWith('@linesight/') && !BUILD_ONLY.has(dep)) thirdParty.add(dep);
      for (const [dep, range] of Object.entries(manifest.optionalDependencies ?? {})) {
        optional.add(dep);
        optionalRanges[dep] = range;
      }
      await placeWorkspace(ws, manifest, emitDir, join(dir, 'node_modules', manifest.name));
    }
    const dependencies: Record<string, string> = {};
    for (const dep of [...thirdParty].sort()) dependencies[dep] = await installedVersion(dep);
    // Native extras a device may lack a compiler for (unix-dgram for sd_notify): npm carries on
    // without them, and the code falls back.
    const optionalDependencies: Record<string, string> = {};
    for (const dep of [...optional].sort()) {
      // Not installed here when it failed to build: the release still names it, by its range.
      optionalDependencies[dep] = await installedVersion(dep).catch(() => optionalRanges[dep]!);
    }
    // What scripts/install-agent.sh puts in place beside the code.
    await mkdir(join(dir, 'deploy'));
    for (const file of ['manifests/systemd/linesight-agent@.service', 'scripts/install-agent.sh'])
      await cp(join(REPO_ROOT, file), join(dir, 'deploy', file.split('/').at(-1)!));
    await mkdir(join(dir, 'bin'));
    const bin = join(dir, 'bin', 'linesight.js');
    await writeExecutable(
      bin,
      "#!/usr/bin/env node\n// The linesight command, compiled: no TypeScript loader.\nimport '../node_modules/@linesight/cli/bin/linesight.js';\n",
    );
    await writeFile(
      join(dir, 'package.json'),
      `${JSON.stringify(
        {
          name: 'linesight',
          version: root.version,
          description: 'Linesight agent, cloud and CLI, compiled (no build step on the device)',
          type: 'module',
          license: 'Apache-2.0',
          engines: root.engines,
          bin: { linesight: 'bin/linesight.js' },
          files: ['bin', 'deploy'],
          // npm bundles only dependencies that are also listed here.
          dependencies: {
            ...dependencies,
            ...Object.fromEntries(bundled.map((name) => [name, root.version])),
          },
          optionalDependencies,
          bundleDependencies: bundled,
          allowScripts: root.allowScripts,
        },
        null,
        2,
      )}\n`,
    );
    const built: BuiltRelease = { dir, bin, version: root.version, dependencies };
    // Packed before the links go in, so the tarball holds only the release's own files.
    if (options.pack) built.tarball = await pack(dir, outDir);
    if (options.linkDeps) {
      const from = options.depsFrom ?? join(REPO_ROOT, 'node_modules');
      await linkDependencies(dir, from, [
        ...Object.keys(dependencies),
        // An optional dependency that did not build here is not there to link.
        ...Object.keys(optionalDependencies).filter((dep) => existsSync(join(from, dep))),
      ]);
    }
    return built;
  } finally {
    await rm(emitDir, { recursive: true, force: true });
  }
}

/** Compiles every workspace's sources (tests left out) into `emitDir`, mirroring the repo. */
async function compile(emitDir: string): Promise<void> {
  const config = join(emitDir, 'tsconfig.json');
  await writeFile(
    config,
    JSON.stringify({
      extends: join(REPO_ROOT, 'tsconfig.base.json'),
      compilerOptions: {
        noEmit: false,
        // `./foo.ts` in an import becomes `./foo.js` in the emitted file.
        rewriteRelativeImportExtensions: true,
        rootDir: REPO_ROOT,
        outDir: join(emitDir, 'out'),
        sourceMap: false,
        declaration: false,
        // The config lives outside the checkout, so name where the type packages are.
        typeRoots: [join(REPO_ROOT, 'node_modules', '@types')],
      },
      include: WORKSPACES.map((ws) => join(REPO_ROOT, ws, 'src')),
      exclude: [join(REPO_ROOT, '**/*.test.ts')],
    }),
  );
  const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    await run(process.execPath, [tsc, '-p', config], { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    const out = (err as { stdout?: string }).stdout ?? '';
    throw new Error(`tsc failed:\n${out}`, { cause: err });
  }
}

/** Puts one workspace's compiled files, other files and rewritten package.json at `target`. */
async function placeWorkspace(
  ws: string,
  manifest: WorkspaceManifest,
  emitDir: string,
  target: string,
): Promise<void> {
  await mkdir(target, { recursive: true });
  await cp(join(emitDir, 'out', ws, 'src'), join(target, 'src'), { recursive: true });
  // Files that are not TypeScript (a worker-thread entry, the dashboard's static files) as they are.
  await cp(join(REPO_ROOT, ws, 'src'), join(target, 'src'), {
    recursive: true,
    filter: (source) => !source.endsWith('.ts') || source.endsWith('.d.ts'),
  });
  await removeEmptyDirs(join(target, 'src'));
  const shipped: WorkspaceManifest = {
    name: manifest.name,
    version: manifest.version,
    description: manifest.description as string,
    type: 'module',
    ...(manifest.exports ? { exports: mapValues(manifest.exports, toJs) } : {}),
    ...(manifest.optionalDependencies
      ? { optionalDependencies: manifest.optionalDependencies }
      : {}),
    ...(manifest.dependencies
      ? {
          dependencies: Object.fromEntries(
            Object.entries(manifest.dependencies).filter(([dep]) => !BUILD_ONLY.has(dep)),
          ),
        }
      : {}),
  };
  if (ws === 'packages/cli') {
    // The command's own entries, without the tsx registration of the source checkout's.
    await mkdir(join(target, 'bin'));
    await writeExecutable(
      join(target, 'bin', 'linesight.js'),
      "#!/usr/bin/env node\nimport '../src/main.js';\n",
    );
    await writeExecutable(
      join(target, 'bin', 'bench-rollout-fleet.js'),
      "#!/usr/bin/env node\nimport '../src/bench/rollout-fleet-main.js';\n",
    );
    await writeExecutable(
      join(target, 'bin', 'soak-fleet.js'),
      "#!/usr/bin/env node\nimport '../src/soak/soak-fleet-main.js';\n",
    );
    shipped.bin = { linesight: 'bin/linesight.js' };
  }
  await writeFile(join(target, 'package.json'), `${JSON.stringify(shipped, null, 2)}\n`);
}

function toJs(path: string): string {
  return path.replace(/\.ts$/, '.js');
}

function mapValues(obj: Record<string, string>, f: (v: string) => string): Record<string, string> {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, f(v)]));
}

/** Removes folders left empty by the copy filter (the copy creates every folder). */
async function removeEmptyDirs(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true });
  let empty = true;
  for (const e of entries) {
    if (e.isDirectory() && (await removeEmptyDirs(join(dir, e.name)))) continue;
    empty = false;
  }
  if (empty) await rm(dir, { recursive: true });
  return empty;
}

/**
 * The third-party runtime dependencies of the release, pinned to the versions installed in this
 * checkout (what `buildRelease` writes into the release's package.json), without the optional ones.
 */
export async function releaseDependencies(): Promise<Record<string, string>> {
  const names = new Set<string>();
  for (const ws of WORKSPACES) {
    const manifest = JSON.parse(
      await readFile(join(REPO_ROOT, ws, 'package.json'), 'utf8'),
    ) as WorkspaceManifest;
    for (const dep of Object.keys(manifest.dependencies ?? {}))
      if (!dep.startsWith('@linesight/') && !BUILD_ONLY.has(dep)) names.add(dep);
  }
  const pinned: Record<string, string> = {};
  for (const dep of [...names].sort()) pinned[dep] = await installedVersion(dep);
  return pinned;
}

/** The version of `dep` installed in this checkout (what the tests ran against). */
async function installedVersion(dep: string): Promise<string> {
  const manifest = JSON.parse(
    await readFile(join(REPO_ROOT, 'node_modules', dep, 'package.json'), 'utf8'),
  ) as { version: string };
  return manifest.version;
}

/** Links each dependency from the node_modules folder `from` (their own dependencies resolve there). */
async function linkDependencies(dir: string, from: string, deps: string[]): Promise<void> {
  for (const dep of deps) {
    const link = join(dir, 'node_modules', dep);
    await mkdir(dirname(link), { recursive: true });
    await symlink(relative(dirname(link), join(from, dep)), link, 'dir');
  }
}

/** `npm pack` of the release folder; returns the tarball's path. */
async function pack(dir: string, outDir: string): Promise<string> {
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', outDir], {
    cwd: dir,
    maxBuffer: 64 * 1024 * 1024,
  });
  const [info] = JSON.parse(stdout) as { filename: string }[];
  if (info === undefined) throw new Error('npm pack printed no file');
  return join(outDir, info.filename);
}

async function writeExecutable(path: string, text: string): Promise<void> {
  await writeFile(path, text);
  await chmod(path, 0o755);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const outIndex = args.indexOf('--out');
  const outDir =
    outIndex >= 0 ? (args[outIndex + 1] ?? 'dist/release') : join(REPO_ROOT, 'dist', 'release');
  const built = await buildRelease({
    outDir,
    linkDeps: args.includes('--link-deps'),
    pack: args.includes('--pack'),
  });
  process.stdout.write(`${JSON.stringify(built, null, 2)}\n`);
}
