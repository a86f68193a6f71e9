/**
 * Guest physical memory map of a nodevmm machine (x86, no firmware).
 *
 * Low memory follows Firecracker's choices: everything the loader writes before the kernel runs (GDT, IDT,
 * TSS, zero page, boot stack, page tables, command line, MP table) sits below 640 KiB, and the kernel is
 * loaded at 1 MiB. A 32-bit MMIO hole [0xd0000000, 4 GiB) is never RAM: virtio-mmio devices, the IOAPIC and
 * the LAPIC live there. RAM beyond what fits below the hole continues at 4 GiB.
 *
 *   0x000000 - 0x0004ff  real-mode IVT + BIOS data area (left zero)
 *   0x000500             GDT (BOOT_GDT_MAX_ENTRIES entries)
 *   0x000540             IDT (one null gate)
 *   0x000580             TSS (104 bytes; TR must be usable for VM entry on VT-x)
 *   0x007000             zero page / struct boot_params (Linux) or multiboot info (multiboot)
 *   0x008ff0             initial stack pointer (grows down inside 0x8000..0x8fff)
 *   0x009000             PML4, 0xa000 PDPT, 0xb000.. page directories (up to 4)
 *   0x020000             kernel command line (up to CMDLINE_MAX_SIZE bytes incl. NUL)
 *   0x09fc00 - 0x0fffff  reserved: EBDA (MP floating pointer + MP config table) and the legacy BIOS area
 *   0x100000             kernel (64-bit and 32-bit protocols, multiboot kernels choose their own address)
 *   ...                  initrd at the top of RAM below the hole
 *   0xd0000000 - 4 GiB   MMIO hole, never RAM:
 *     0xd0000000 - 0xfebfffff  device window (virtio-mmio slots of 4 KiB, a PCI MMIO window)
 *     0xfec00000               IOAPIC
 *     0xfee00000               LAPIC
 *     0xfffbc000 - 0xfffbffff  KVM's identity-map page and TSS pages (VT-x needs them somewhere not RAM)
 *   4 GiB -              the rest of RAM, if any
 */

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

export const BOOT_GDT_ADDR = 0x500;
/** Room reserved for the GDT: 8 descriptors of 8 bytes (a 64-bit TSS descriptor takes two). */
export const BOOT_GDT_MAX_ENTRIES = 8;
export const BOOT_IDT_ADDR = 0x540;
export const BOOT_TSS_ADDR = 0x580;
/** Architectural minimum TSS size (32-bit and 64-bit TSS are both 104 bytes). */
export const BOOT_TSS_SIZE = 0x68;

export const ZERO_PAGE_ADDR = 0x7000;
export const MULTIBOOT_INFO_ADDR = 0x7000;
/** 16-byte aligned, below the page tables, above the zero page. */
export const BOOT_STACK_POINTER = 0x8ff0;

export const PML4_ADDR = 0x9000;
export const PDPT_ADDR = 0xa000;
/** First page directory; up to MAX_PAGE_DIRECTORIES follow contiguously (each maps 1 GiB). */
export const PD_ADDR = 0xb000;
export const MAX_PAGE_DIRECTORIES = 4;

export const CMDLINE_ADDR = 0x20000;
/** Our own room for the command line; a kernel's cmdline_size may be smaller. */
export const CMDLINE_MAX_SIZE = 0x10000;

/** Start of the Extended BIOS Data Area; also "the last KiB of base memory" Linux scans for "_MP_". */
export const EBDA_START = 0x9fc00;
export const MPTABLE_ADDR = EBDA_START;
/** End of the legacy BIOS area; the first byte of "high" memory. */
export const HIGH_MEMORY_START = 0x100000;
/** Where 64-bit and 32-bit Linux protocol kernels are loaded unless they prefer otherwise. */
export const KERNEL_LOAD_ADDR = HIGH_MEMORY_START;

export const MMIO_HOLE_START = 0xd000_0000;
export const MMIO_HOLE_END = 0x1_0000_0000;
export const FOUR_GIB = 0x1_0000_0000;
export const IOAPIC_ADDR = 0xfec0_0000;
export const IOAPIC_SIZE = 0x1000;
export const LAPIC_ADDR = 0xfee0_0000;
export const LAPIC_SIZE = 0x1000;
/**
 * Where MMIO devices (virtio-mmio, a PCI MMIO window) are placed: from the start of the hole up to the IOAPIC.
 * Firecracker gives each virtio-mmio device 4 KiB from 0xd0000000; that is MMIO_DEVICE_SLOT_SIZE here.
 */
export const MMIO_DEVICE_WINDOW_START = MMIO_HOLE_START;
export const MMIO_DEVICE_WINDOW_END = IOAPIC_ADDR;
export const MMIO_DEVICE_SLOT_SIZE = 0x1000;
/**
 * KVM_SET_TSS_ADDR needs three pages of guest-physical space that are neither RAM nor MMIO on VT-x hosts, and
 * KVM_SET_IDENTITY_MAP_ADDR one page below them; both sit in the hole above the LAPIC (QEMU uses the same).
 */
export const KVM_IDENTITY_MAP_ADDR = 0xfffb_c000;
export const KVM_TSS_ADDR = 0xfffb_d000;
export const KVM_TSS_SIZE = 3 * 0x1000;

/** Smallest machine we build: room for tables, a small kernel and an initrd. */
export const MIN_MEMORY_BYTES = 16 * MiB;

export const E820_RAM = 1;
export const E820_RESERVED = 2;

export interface E820Entry {
  readonly addr: number;
  readonly size: number;
  readonly type: typeof E820_RAM | typeof E820_RESERVED;
}

export interface RamRegion {
  readonly guestAddress: number;
  readonly size: number;
}

export class LayoutError extends Error {
  readonly field = 'memory';
  constructor(message: string) {
    super(message);
    this.name = 'LayoutError';
  }
}

function checkMemoryBytes(memoryBytes: number): void {
  if (!Number.isSafeInteger(memoryBytes) || memoryBytes < MIN_MEMORY_BYTES || memoryBytes % MiB !== 0) {
    throw new LayoutError(
      `memory: ${memoryBytes} bytes is not a whole number of MiB of at least ${MIN_MEMORY_BYTES / MiB} MiB`,
    );
  }
}

/** RAM below the MMIO hole, in bytes (RAM starts at 0). */
export function lowRamEnd(memoryBytes: number): number {
  checkMemoryBytes(memoryBytes);
  return Math.min(memoryBytes, MMIO_HOLE_START);
}

/**
 * Where RAM must be mapped. The low region includes the reserved EBDA/BIOS range because the MP table lives
 * there and on real PCs it is backed by memory too; the e820 map tells the guest not to use it.
 */
export function ramRegions(memoryBytes: number): RamRegion[] {
  const low = lowRamEnd(memoryBytes);
  const regions: RamRegion[] = [{ guestAddress: 0, size: low }];
  if (memoryBytes > low) regions.push({ guestAddress: FOUR_GIB, size: memoryBytes - low });
  return regions;
}

/** The BIOS-style memory map handed to the guest (Linux boot_params.e820_table, multiboot mmap). */
export function e820Map(memoryBytes: number): E820Entry[] {
  const low = lowRamEnd(memoryBytes);
  const entries: E820Entry[] = [
    { addr: 0, size: EBDA_START, type: E820_RAM },
    { addr: EBDA_START, size: HIGH_MEMORY_START - EBDA_START, type: E820_RESERVED },
    { addr: HIGH_MEMORY_START, size: low - HIGH_MEMORY_START, type: E820_RAM },
  ];
  if (memoryBytes > low) entries.push({ addr: FOUR_GIB, size: memoryBytes - low, type: E820_RAM });
  return entries;
}
