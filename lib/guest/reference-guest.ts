/**
 * Locates and builds the reference guest (kernels, initramfs, rootfs) that guest/build.sh makes from Debian
 * packages. The artifact directory is named by a hash of the build inputs; build.sh alone computes it
 * (`--print-dir`), so this module and the script can never disagree.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type GuestArch = 'x86_64' | 'i386';
export const GUEST_ARCHES: readonly GuestArch[] = ['x86_64', 'i386'];

export interface ReferenceGuestArch {
  /** Compressed kernel (Linux boot protocol, "HdrS" setup header). */
  bzImage: string;
  /** Uncompressed kernel ELF (PT_LOAD at physical addresses, entry = startup_64 / startup_32). */
  vmlinux: string;
  /** Uncompressed newc cpio with busybox, /init and the udhcpc event script (the kernel skips inflating it). */
  initramfs: string;
  /** The kernel's final .config. */
  config: string;
  /** Kernel symbol table (address type name), handy for symbolising guest RIPs. */
  systemMap: string;
}

export interface ReferenceGuestArtifacts {
  dir: string;
  x86_64: ReferenceGuestArch;
  i386: ReferenceGuestArch;
  /** 64 MiB ext4 image with busybox, /nodevmm-rootfs-marker and /data/pattern-1MiB.txt(.sha256). */
  rootfs: string;
}

/** Path of guest/build.sh, found by walking up from this module (works from lib/ and from dist/lib/). */
export function referenceGuestBuildScript(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'guest', 'build.sh');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`reference guest: guest/build.sh not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** Directory the artifacts for the current inputs live in (it may not exist yet). */
export function referenceGuestDir(): string {
  const script = referenceGuestBuildScript();
  const out = execFileSync('bash', [script, '--print-dir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const dir = out.trim();
  if (!dir.startsWith('/')) throw new Error(`reference guest: ${script} --print-dir printed ${JSON.stringify(out)}`);
  return dir;
}

function archArtifacts(dir: string, arch: GuestArch): ReferenceGuestArch {
  return {
    bzImage: join(dir, `bzImage-${arch}`),
    vmlinux: join(dir, `vmlinux-${arch}`),
    initramfs: join(dir, `initramfs-${arch}.cpio`),
    config: join(dir, `config-${arch}`),
    systemMap: join(dir, `System.map-${arch}`),
  };
}

function allExist(paths: Iterable<string>): boolean {
  for (const p of paths) if (!existsSync(p)) return false;
  return true;
}

/** One architecture's kernel + initramfs, plus the rootfs path, or undefined when any of them is not built. */
export function referenceGuestArch(arch: GuestArch, dir = referenceGuestDir()): (ReferenceGuestArch & { dir: string; rootfs: string }) | undefined {
  const a = archArtifacts(dir, arch);
  const rootfs = join(dir, 'rootfs.ext4');
  return allExist([...Object.values(a), rootfs]) ? { ...a, dir, rootfs } : undefined;
}

/** Every artifact for both architectures, or undefined when anything is missing (run buildReferenceGuest). */
export function referenceGuestArtifacts(dir = referenceGuestDir()): ReferenceGuestArtifacts | undefined {
  const x86_64 = archArtifacts(dir, 'x86_64');
  const i386 = archArtifacts(dir, 'i386');
  const rootfs = join(dir, 'rootfs.ext4');
  if (!allExist([...Object.values(x86_64), ...Object.values(i386), rootfs])) return undefined;
  return { dir, x86_64, i386, rootfs };
}

export interface BuildReferenceGuestOptions {
  arch?: GuestArch | 'all';
  /** Parallel make jobs (default: build.sh uses nproc). */
  jobs?: number;
  /** Rebuild even when the artifacts exist. */
  force?: boolean;
  /** Each line build.sh prints (stage lines "[3/7] ...", heartbeats, notes). stderr lines are passed too. */
  onProgress?: (line: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
}

export class ReferenceGuestBuildError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderrTail: string,
  ) {
    super(message);
    this.name = 'ReferenceGuestBuildError';
  }
}

/** A parsed "[n/total] text ... (elapsed)" stage line from build.sh. */
export interface BuildStage {
  stage: number;
  total: number;
  text: string;
}

export function parseBuildStage(line: string): BuildStage | undefined {
  const m = /^\[(\d+)\/(\d+)\] (.*)$/.exec(line);
  if (!m) return undefined;
  return { stage: Number(m[1]), total: Number(m[2]), text: m[3]! };
}

function splitLines(onLine: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  let pending = '';
  return {
    push(chunk) {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    },
    end() {
      if (pending !== '') onLine(pending);
      pending = '';
    },
  };
}

/**
 * Runs guest/build.sh (installing apt packages and compiling kernels when needed; minutes on first use) and
 * resolves to the artifacts of the requested architecture(s): the arch's entry when `arch` is one
 * architecture, both when 'all'.
 */
export async function buildReferenceGuest(
  options: BuildReferenceGuestOptions = {},
): Promise<{ dir: string; rootfs: string; x86_64?: ReferenceGuestArch; i386?: ReferenceGuestArch }> {
  const arch = options.arch ?? 'all';
  if (arch !== 'all' && !GUEST_ARCHES.includes(arch)) {
    throw new RangeError(`buildReferenceGuest: arch must be x86_64, i386 or all, got ${JSON.stringify(arch)}`);
  }
  const args = [referenceGuestBuildScript(), '--arch', arch];
  if (options.jobs !== undefined) {
    if (!Number.isInteger(options.jobs) || options.jobs < 1) {
      throw new RangeError(`buildReferenceGuest: jobs must be a positive integer, got ${options.jobs}`);
    }
    args.push('--jobs', String(options.jobs));
  }
  if (options.force) args.push('--force');

  const child = spawn('bash', args, { stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal, killSignal: 'SIGTERM' });
  const stdoutLines: string[] = [];
  const stderrLines: string[] = [];
  const out = splitLines((line) => {
    stdoutLines.push(line);
    options.onProgress?.(line, 'stdout');
  });
  const err = splitLines((line) => {
    stderrLines.push(line);
    if (stderrLines.length > 200) stderrLines.shift();
    options.onProgress?.(line, 'stderr');
  });
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));

  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  out.end();
  err.end();
  if (exitCode !== 0) {
    const tail = stderrLines.slice(-40).join('\n');
    throw new ReferenceGuestBuildError(
      `guest/build.sh --arch ${arch} failed with exit code ${exitCode}${tail ? `:\n${tail}` : ''}`,
      exitCode,
      tail,
    );
  }
  // build.sh prints the artifact directory as its last line.
  const dir = stdoutLines.filter((l) => l.startsWith('/')).pop();
  if (dir === undefined) throw new ReferenceGuestBuildError('guest/build.sh succeeded but printed no artifact directory', 0, '');
  const rootfs = join(dir, 'rootfs.ext4');
  const result: { dir: string; rootfs: string; x86_64?: ReferenceGuestArch; i386?: ReferenceGuestArch } = { dir, rootfs };
  for (const a of arch === 'all' ? GUEST_ARCHES : [arch]) {
    const artifacts = archArtifacts(dir, a);
    if (!allExist([...Object.values(artifacts), rootfs])) {
      throw new ReferenceGuestBuildError(`guest/build.sh succeeded but ${a} artifacts are missing in ${dir}`, 0, '');
    }
    result[a] = artifacts;
  }
  return result;
}
