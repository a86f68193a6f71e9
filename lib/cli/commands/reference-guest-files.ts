/** The kernel/initrd/command line `nodevmm run` boots when no --kernel is given: the reference guest. */
import { initCmdline, REFERENCE_GUEST_CMDLINE } from '../../guest/guest-protocol.js';
import { buildReferenceGuest, referenceGuestArch, type GuestArch } from '../../guest/reference-guest.js';

export interface ReferenceGuestFiles {
  kernel: string;
  initrd: string;
  rootfs: string;
  append: string;
}

export interface ReferenceGuestBootOptions {
  /** How many --net interfaces the VM has: with any, /init configures them all by DHCP (`nodevmm.net=dhcp`). */
  nets: number;
}

/**
 * The reference guest's kernel command line: the protocol's console/reboot/panic settings
 * (REFERENCE_GUEST_CMDLINE) plus the /init options the VM's devices call for.
 */
export function referenceGuestAppend(options: ReferenceGuestBootOptions): string {
  const init = initCmdline(options.nets > 0 ? { net: 'dhcp' } : {});
  return init === '' ? REFERENCE_GUEST_CMDLINE : `${REFERENCE_GUEST_CMDLINE} ${init}`;
}

/**
 * Finds the reference guest for `arch`, building it (minutes; progress lines to `progress`) when it is not in
 * the cache. The uncompressed vmlinux is booted: it skips the decompressor, which on emulating hosts is the
 * slowest part of a boot.
 */
export async function referenceGuestFiles(
  arch: GuestArch,
  progress: (line: string) => void,
  options: ReferenceGuestBootOptions = { nets: 0 },
): Promise<ReferenceGuestFiles> {
  let found = referenceGuestArch(arch);
  if (!found) {
    progress(`nodevmm: the ${arch} reference guest is not built yet; building it (about 5-8 minutes)...`);
    await buildReferenceGuest({ arch, onProgress: (line, stream) => { if (stream === 'stdout') progress(`nodevmm: ${line}`); } });
    found = referenceGuestArch(arch);
    if (!found) throw new Error(`the ${arch} reference guest build finished but its files are missing`);
  }
  return { kernel: found.vmlinux, initrd: found.initramfs, rootfs: found.rootfs, append: referenceGuestAppend(options) };
}
