/**
 * What the reference guest (guest/initramfs/init + the kernels guest/build.sh makes) promises the VMM.
 * Tests and benchmarks use these instead of repeating magic strings and port numbers.
 */

/** The first line /init prints; boot benchmarks time "first line from /init" to it. */
export const INIT_FIRST_LINE = 'nodevmm-init: hello from /init';

/** Every line /init prints for the VMM starts with this. */
export const INIT_LINE_PREFIX = 'nodevmm-init: ';

/** /init prints this just before it starts the interactive shell. */
export const INIT_SHELL_LINE = 'nodevmm-init: starting shell';

/** /init writes one byte, BOOT_MARKER_VALUE, to this I/O port as soon as /dev is mounted. */
export const BOOT_MARKER_PORT = 0x501;
export const BOOT_MARKER_VALUE = 0x01;

/**
 * With ACPI off the kernel has no power-off method: `poweroff` (and SIGUSR2 to /init) ends in the halt path,
 * which prints this and leaves every CPU in HLT with interrupts disabled.
 */
export const KERNEL_HALT_LINE = 'reboot: System halted';

/** `reboot` prints this, then writes 0xFE to port 0x64 (i8042 reset pulse), ten times, before other methods. */
export const KERNEL_RESTART_LINE = 'reboot: Restarting system';

/** Contents of /nodevmm-rootfs-marker on rootfs.ext4. */
export const ROOTFS_MARKER_CONTENT = 'nodevmm rootfs marker v1\n';

/**
 * Kernel command line for a serial console on COM1 (0x3f8, IRQ 4).
 * - `console=ttyS0` routes printk and /dev/console to the UART.
 * - `earlyprintk=serial,ttyS0,115200` prints from the first instructions of setup, before the console driver.
 * - `noxsave nosmap`: the nested kvm_pvm hosts cannot emulate xsave/xrstor or clac/stac (see HOST-KVM.md);
 *   harmless elsewhere.
 * - `reboot=k`: `reboot` goes straight to the i8042 reset (no ACPI/EFI/BIOS attempts; there is no firmware).
 * - `panic=-1`: reboot at once on panic instead of hanging, so a crashed guest ends the VM.
 */
export const REFERENCE_GUEST_CMDLINE = 'console=ttyS0 earlyprintk=serial,ttyS0,115200 noxsave nosmap reboot=k panic=-1';

/** Options /init reads from the kernel command line (guest/initramfs/init documents them). */
export interface InitOptions {
  /** `nodevmm.rootdisk=`: mount this ext4 device on /mnt. */
  rootdisk?: string;
  /** `nodevmm.then=`: what /init does after setup (default: a shell). */
  then?: 'shell' | 'poweroff' | 'reboot';
  /**
   * `nodevmm.net=dhcp`: bring every ethN up and run udhcpc on each in the background. Each lease is applied
   * (address/prefix, default route, /etc/resolv.conf) and announced with a DHCP_BOUND_LINE_PREFIX line.
   */
  net?: 'dhcp';
}

/**
 * When a DHCP lease is applied the guest prints
 * `nodevmm-init: <ifname> <address>/<prefix> router <gateway|none> dns <a,b,...|none>`.
 */
export const DHCP_BOUND_LINE = /^nodevmm-init: (eth\d+) (\d+\.\d+\.\d+\.\d+)\/(\d+) router (\S+) dns (\S+)\r?$/m;

/** Kernel command-line options /init understands. */
export function initCmdline(options: InitOptions): string {
  const words: string[] = [];
  if (options.rootdisk !== undefined) {
    if (!/^\/dev\/[A-Za-z0-9._/-]+$/.test(options.rootdisk)) {
      throw new RangeError(`initCmdline: rootdisk must be a /dev path without spaces, got ${JSON.stringify(options.rootdisk)}`);
    }
    words.push(`nodevmm.rootdisk=${options.rootdisk}`);
  }
  if (options.then !== undefined) words.push(`nodevmm.then=${options.then}`);
  if (options.net !== undefined) {
    if (options.net !== 'dhcp') throw new RangeError(`initCmdline: net must be 'dhcp', got ${JSON.stringify(options.net)}`);
    words.push('nodevmm.net=dhcp');
  }
  return words.join(' ');
}
