/**
 * Which kernel + initramfs the interpreter guest tests boot: the reference guest (guest/build.sh) for the current
 * build inputs, else the newest complete reference build in the cache; for x86_64 with a reference kernel but no
 * reference initramfs yet, an initramfs the test makes from a static busybox and guest/initramfs/init.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { referenceGuestDir, type GuestArch } from '../../lib/guest/reference-guest.js';
import { busyboxInitramfs } from './busybox-initramfs.js';

export interface GuestFiles {
  kernel: string;
  initrd: string;
  /** Where the files came from, printed by the tests. */
  origin: string;
}

function candidateDirs(): string[] {
  const dirs: string[] = [];
  try {
    dirs.push(referenceGuestDir());
  } catch {
    // build.sh unusable: fall back to the cache scan
  }
  const cache = join(homedir(), '.cache/nodevmm/guest');
  if (existsSync(cache)) {
    const others = readdirSync(cache)
      .filter((d) => /^[0-9a-f]{16}$/.test(d))
      .map((d) => join(cache, d))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    for (const d of others) if (!dirs.includes(d)) dirs.push(d);
  }
  return dirs;
}

/** Reference kernel + initramfs for `arch`, a test-made busybox initramfs, or a reason to skip. */
export function guestFilesFor(arch: GuestArch): GuestFiles | { skip: string } {
  const dirs = candidateDirs();
  for (const dir of dirs) {
    const kernel = join(dir, `bzImage-${arch}`);
    // Builds made before the initramfs went uncompressed named it .cpio.gz.
    const initrd = [`initramfs-${arch}.cpio`, `initramfs-${arch}.cpio.gz`].map((f) => join(dir, f)).find((p) => existsSync(p));
    if (existsSync(kernel) && initrd !== undefined) return { kernel, initrd, origin: `reference guest ${dir}` };
  }
  const kernelDir = dirs.find((d) => existsSync(join(d, `bzImage-${arch}`)));
  if (!kernelDir) return { skip: `the ${arch} reference guest kernel is not built (run guest/build.sh)` };
  const made = busyboxInitramfs(arch);
  if (typeof made !== 'string') return { skip: `the ${arch} reference initramfs is not built yet (guest/build.sh) and ${made.skip}` };
  return {
    kernel: join(kernelDir, `bzImage-${arch}`),
    initrd: made,
    origin: `reference kernel ${kernelDir}, test-made initramfs (static busybox + guest/initramfs/init) because the reference initramfs is not built yet`,
  };
}
