/** The kernel/initrd/command line `nodevmm run` boots when no --kernel is given: the reference guest. */
import { buildReferenceGuest, referenceGuestArch, type GuestArch } from '../../guest/reference-guest.js';

/**
 * The reference guest's command line. `noxsave nosmap` keep Linux off instructions that emulating KVM hosts
 * (kvm_pvm) cannot run at CPL0; the KVM accelerator also hides those features in CPUID, and on other hosts
 * the flags only cost a little speed.
 */
export const REFERENCE_GUEST_APPEND = 'console=ttyS0 earlyprintk=serial,ttyS0 noxsave nosmap';

export interface ReferenceGuestFiles {
  kernel: string;
  initrd: string;
  rootfs: string;
  append: string;
}

/**
 * Finds the reference guest for `arch`, building it (minutes; progress lines to `progress`) when it is not in
 * the cache. The uncompressed vmlinux is booted: it skips the decompressor, which on emulating hosts is the
 * slowest part of a boot.
 */
export async function referenceGuestFiles(arch: GuestArch, progress: (line: string) => void): Promise<ReferenceGuestFiles> {
  let found = referenceGuestArch(arch);
  if (!found) {
    progress(`nodevmm: the ${arch} reference guest is not built yet; building it (about 5-8 minutes)...`);
    await buildReferenceGuest({ arch, onProgress: (line, stream) => { if (stream === 'stdout') progress(`nodevmm: ${line}`); } });
    found = referenceGuestArch(arch);
    if (!found) throw new Error(`the ${arch} reference guest build finished but its files are missing`);
  }
  return { kernel: found.vmlinux, initrd: found.initramfs, rootfs: found.rootfs, append: REFERENCE_GUEST_APPEND };
}
