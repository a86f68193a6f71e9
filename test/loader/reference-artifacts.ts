/** Locating the reference guest built by guest/build.sh ($cache/<hash>/bzImage-x86_64, ...). */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export function guestCacheRoot(): string {
  return process.env['NODEVMM_GUEST_CACHE'] ?? join(process.env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'nodevmm', 'guest');
}

/** Newest artifact directory entry named `file`, or undefined when none has been built. */
export function findGuestArtifact(file: string): string | undefined {
  const root = guestCacheRoot();
  if (!existsSync(root)) return undefined;
  const hits = readdirSync(root)
    .map((d) => join(root, d, file))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  return hits[0];
}

export interface GuestKernel {
  bzImage: string;
  vmlinux: string;
  systemMap: string;
}

/**
 * The newest complete kernel build for `arch`: guest/build.sh publishes bzImage last, so a directory with
 * bzImage-<arch> also holds the matching vmlinux and System.map. All three come from the same directory,
 * never mixed across builds.
 */
export function findGuestKernel(arch: 'x86_64' | 'i386'): GuestKernel | undefined {
  const bz = findGuestArtifact(`bzImage-${arch}`);
  if (!bz) return undefined;
  const dir = dirname(bz);
  const vmlinux = join(dir, `vmlinux-${arch}`);
  const systemMap = join(dir, `System.map-${arch}`);
  if (!existsSync(vmlinux) || !existsSync(systemMap)) return undefined;
  return { bzImage: bz, vmlinux, systemMap };
}
