/**
 * Multiboot v1 loader: an ELF32 image (or a raw image described by the header's a.out-kludge addresses),
 * entered in flat 32-bit protected mode with paging off, EAX = 0x2BADB002 and EBX = the multiboot info
 * structure. Like the Linux loader it is a pure function over GuestMemory.
 *
 * Boot data layout (all below 1 MiB; a kernel overlapping it is refused):
 *   0x7000 info structure, 0x7080 boot loader name, 0x7100 memory map, 0x7200 module list,
 *   0x20000 command line strings (kernel first, then one per module), MP table at 0x9fc00.
 * Following GRUB and QEMU, the kernel's command line starts with the kernel path.
 */

import type { BootCpuState } from '../boot/cpu-state.js';
import { buildMpTable, type MpTableInfo, writeMpTable } from '../boot/mptable.js';
import { setupProtectedModeEntry } from '../boot/protected-mode.js';
import type { GuestMemory } from '../guest-memory.js';
import {
  BOOT_GDT_ADDR, BOOT_STACK_POINTER, BOOT_TSS_ADDR, BOOT_TSS_SIZE, CMDLINE_ADDR, CMDLINE_MAX_SIZE, type E820Entry,
  e820Map, EBDA_START, HIGH_MEMORY_START, KiB, MPTABLE_ADDR, MULTIBOOT_INFO_ADDR,
} from '../layout.js';
import { isElf, loadElfSegments, parseElf, physicalEntry } from './elf.js';
import { hex, LoaderError, mib } from './errors.js';
import {
  MB_FLAG_AOUT_KLUDGE, MULTIBOOT_BOOTLOADER_MAGIC, type MultibootHeader, parseMultibootHeader,
} from './multiboot-header.js';
import { checkCpus, checkGuestMemory, PAGE_SIZE } from './placement.js';

export const MULTIBOOT_INFO_SIZE = 0x78;
export const MULTIBOOT_LOADER_NAME_ADDR = MULTIBOOT_INFO_ADDR + 0x80;
export const MULTIBOOT_MMAP_ADDR = MULTIBOOT_INFO_ADDR + 0x100;
export const MULTIBOOT_MODS_ADDR = MULTIBOOT_INFO_ADDR + 0x200;
export const MULTIBOOT_MMAP_ENTRY_SIZE = 24;
export const MULTIBOOT_MODULE_ENTRY_SIZE = 16;
export const MULTIBOOT_MAX_MODULES = (MULTIBOOT_INFO_ADDR + 0x1000 - MULTIBOOT_MODS_ADDR) / MULTIBOOT_MODULE_ENTRY_SIZE;
export const MULTIBOOT_LOADER_NAME = 'nodevmm';

// multiboot_info.flags bits
export const MBI_MEMORY = 1 << 0;
export const MBI_CMDLINE = 1 << 2;
export const MBI_MODS = 1 << 3;
export const MBI_MMAP = 1 << 6;
export const MBI_LOADER_NAME = 1 << 9;

// multiboot_info field offsets
export const MBI_FLAGS = 0;
export const MBI_MEM_LOWER = 4;
export const MBI_MEM_UPPER = 8;
export const MBI_CMDLINE_PTR = 16;
export const MBI_MODS_COUNT = 20;
export const MBI_MODS_ADDR = 24;
export const MBI_MMAP_LENGTH = 44;
export const MBI_MMAP_ADDR = 48;
export const MBI_LOADER_NAME_PTR = 64;

export interface MultibootModule {
  data: Uint8Array;
  path: string;
  /** The module's string; defaults to its path. */
  cmdline?: string;
}

export interface MultibootLoadOptions {
  kernel: Uint8Array;
  kernelPath: string;
  cmdline: string;
  memoryBytes: number;
  modules?: readonly MultibootModule[];
  cpus?: number;
  pci?: boolean;
  irq0ToPin2?: boolean;
}

export interface MultibootBootInfo {
  entry: BootCpuState;
  kernel: { start: number; end: number; entryPoint: number };
  infoAddress: number;
  modules: { address: number; size: number; cmdline: string }[];
  e820: E820Entry[];
  mpTable: MpTableInfo;
}

interface Range { start: number; end: number; what: string }

function overlaps(a: Range, b: { start: number; end: number }): boolean {
  return a.start < b.end && b.start < a.end;
}

interface KludgePlan { fileOffset: number; size: number; start: number; end: number; entry: number }

/** Plans a load per the a.out kludge: a raw byte range of the file at load_addr, then bss up to bss_end_addr. */
function planKludge(mem: GuestMemory, bytes: Uint8Array, h: MultibootHeader, path: string): KludgePlan {
  const a = h.addresses!;
  if (a.headerAddr < a.loadAddr || h.offset < a.headerAddr - a.loadAddr) {
    throw new LoaderError(
      `${path}: multiboot header_addr ${hex(a.headerAddr)} and load_addr ${hex(a.loadAddr)} put the image start before the file start`,
      path,
      'kernel',
    );
  }
  const fileOffset = h.offset - (a.headerAddr - a.loadAddr);
  const size = a.loadEndAddr === 0 ? bytes.length - fileOffset : a.loadEndAddr - a.loadAddr;
  if (size < 0 || fileOffset + size > bytes.length) {
    throw new LoaderError(
      `${path}: multiboot load_end_addr ${hex(a.loadEndAddr)} asks for ${size} bytes from file offset ${fileOffset}; the file has ${bytes.length}`,
      path,
      'kernel',
    );
  }
  const end = a.bssEndAddr === 0 ? a.loadAddr + size : a.bssEndAddr;
  if (end < a.loadAddr + size) {
    throw new LoaderError(`${path}: multiboot bss_end_addr ${hex(a.bssEndAddr)} is below load_end_addr`, path, 'kernel');
  }
  if (!mem.contains(a.loadAddr, end - a.loadAddr)) {
    throw new LoaderError(
      `${path}: image [${hex(a.loadAddr)}, ${hex(end)}) lies outside guest RAM (${mib(mem.size)})`,
      path,
      'memory',
    );
  }
  return { fileOffset, size, start: a.loadAddr, end, entry: a.entryAddr };
}

function bootDataRanges(mpTableLength: number, stringsLength: number): Range[] {
  return [
    { start: BOOT_GDT_ADDR, end: BOOT_TSS_ADDR + BOOT_TSS_SIZE, what: 'GDT/IDT/TSS' },
    { start: MULTIBOOT_INFO_ADDR, end: MULTIBOOT_INFO_ADDR + 0x1000, what: 'multiboot information' },
    { start: BOOT_STACK_POINTER - 0x100, end: BOOT_STACK_POINTER, what: 'boot stack' },
    { start: CMDLINE_ADDR, end: CMDLINE_ADDR + stringsLength, what: 'command lines' },
    { start: MPTABLE_ADDR, end: MPTABLE_ADDR + mpTableLength, what: 'MP table' },
  ];
}

export function loadMultiboot(mem: GuestMemory, opts: MultibootLoadOptions): MultibootBootInfo {
  const lowEnd = checkGuestMemory(mem, opts.memoryBytes);
  const cpus = checkCpus(opts.cpus ?? 1);
  const path = opts.kernelPath;
  const modules = opts.modules ?? [];
  if (modules.length > MULTIBOOT_MAX_MODULES) {
    throw new LoaderError(`multiboot: ${modules.length} modules, at most ${MULTIBOOT_MAX_MODULES} supported`, undefined, 'modules');
  }
  const header = parseMultibootHeader(opts.kernel, path);

  // Strings: kernel command line first, then each module's string, all NUL-terminated.
  const enc = new TextEncoder();
  const kernelCmdline = opts.cmdline.length > 0 ? `${path} ${opts.cmdline}` : path;
  const strings = [kernelCmdline, ...modules.map((m) => m.cmdline ?? m.path)];
  if (strings.some((s) => s.includes('\0'))) {
    throw new LoaderError('cmdline: multiboot command lines must not contain NUL characters', undefined, 'cmdline');
  }
  const encoded = strings.map((s) => enc.encode(`${s}\0`));
  const stringsLength = encoded.reduce((n, b) => n + b.length, 0);
  if (stringsLength > CMDLINE_MAX_SIZE) {
    throw new LoaderError(
      `cmdline: the multiboot command lines take ${stringsLength} bytes; at most ${CMDLINE_MAX_SIZE} fit`,
      undefined,
      'cmdline',
    );
  }

  // Check the kernel's placement against our boot data before writing anything.
  const mpLength = buildMpTable({ cpus, pci: opts.pci ?? false }).bytes.length;
  const reserved = bootDataRanges(mpLength, stringsLength);
  let kernelRange: { start: number; end: number };
  let entryPoint: number;
  const check = (segs: Range[]): void => {
    for (const s of segs) {
      const hit = reserved.find((r) => overlaps(r, s));
      if (hit) {
        throw new LoaderError(
          `${path}: ${s.what} [${hex(s.start)}, ${hex(s.end)}) overlaps nodevmm's ${hit.what} at [${hex(hit.start)}, ${hex(hit.end)})`,
          path,
          'kernel',
        );
      }
    }
  };
  if (header.flags & MB_FLAG_AOUT_KLUDGE) {
    const k = planKludge(mem, opts.kernel, header, path);
    check([{ start: k.start, end: k.end, what: 'image' }]);
    mem.write(k.start, opts.kernel.subarray(k.fileOffset, k.fileOffset + k.size));
    mem.fill(k.start + k.size, k.end - (k.start + k.size), 0);
    kernelRange = { start: k.start, end: k.end };
    entryPoint = k.entry;
  } else {
    if (!isElf(opts.kernel)) {
      throw new LoaderError(`${path}: multiboot image is not ELF and its header has no load addresses (flags bit 16)`, path, 'kernel');
    }
    const elf = parseElf(opts.kernel, path, 'multiboot ELF image');
    if (elf.elfClass !== 32) {
      throw new LoaderError(`${path}: multiboot v1 kernels must be ELF32, this is ELF64`, path, 'kernel');
    }
    check(elf.segments.map((s) => ({ start: s.paddr, end: s.paddr + s.memsz, what: `segment ${s.index}` })));
    kernelRange = loadElfSegments(mem, opts.kernel, elf, path);
    entryPoint = physicalEntry(elf, path);
  }
  if (!mem.contains(entryPoint, 1)) {
    throw new LoaderError(`${path}: entry point ${hex(entryPoint)} is outside guest RAM`, path, 'kernel');
  }

  // Modules go page-aligned after the kernel (or from 1 MiB if the kernel sits lower).
  let next = Math.ceil(Math.max(kernelRange.end, HIGH_MEMORY_START) / PAGE_SIZE) * PAGE_SIZE;
  const placed = modules.map((m, i) => {
    const address = next;
    if (address + m.data.length > lowEnd) {
      throw new LoaderError(
        `module ${m.path} (${mib(m.data.length)}) does not fit in guest memory (${mib(opts.memoryBytes)})`,
        m.path,
        'modules',
      );
    }
    mem.write(address, m.data);
    next = Math.ceil((address + m.data.length) / PAGE_SIZE) * PAGE_SIZE;
    return { address, size: m.data.length, cmdline: strings[i + 1]! };
  });

  let s = CMDLINE_ADDR;
  const stringAddrs = encoded.map((b) => {
    const at = s;
    mem.write(at, b);
    s += b.length;
    return at;
  });

  const e820 = e820Map(opts.memoryBytes);
  const info = MULTIBOOT_INFO_ADDR;
  mem.fill(info, 0x1000, 0);
  mem.writeU32(info + MBI_FLAGS, MBI_MEMORY | MBI_CMDLINE | MBI_MODS | MBI_MMAP | MBI_LOADER_NAME);
  mem.writeU32(info + MBI_MEM_LOWER, EBDA_START / KiB);
  mem.writeU32(info + MBI_MEM_UPPER, (lowEnd - HIGH_MEMORY_START) / KiB);
  mem.writeU32(info + MBI_CMDLINE_PTR, stringAddrs[0]!);
  mem.writeU32(info + MBI_MODS_COUNT, placed.length);
  mem.writeU32(info + MBI_MODS_ADDR, MULTIBOOT_MODS_ADDR);
  placed.forEach((m, i) => {
    const e = MULTIBOOT_MODS_ADDR + i * MULTIBOOT_MODULE_ENTRY_SIZE;
    mem.writeU32(e, m.address);
    mem.writeU32(e + 4, m.address + m.size);
    mem.writeU32(e + 8, stringAddrs[i + 1]!);
  });
  e820.forEach((r, i) => {
    const e = MULTIBOOT_MMAP_ADDR + i * MULTIBOOT_MMAP_ENTRY_SIZE;
    // `size` counts the bytes after itself, so a reader advances by size + 4.
    mem.writeU32(e, MULTIBOOT_MMAP_ENTRY_SIZE - 4);
    mem.writeU64(e + 4, BigInt(r.addr));
    mem.writeU64(e + 12, BigInt(r.size));
    mem.writeU32(e + 20, r.type);
  });
  mem.writeU32(info + MBI_MMAP_LENGTH, e820.length * MULTIBOOT_MMAP_ENTRY_SIZE);
  mem.writeU32(info + MBI_MMAP_ADDR, MULTIBOOT_MMAP_ADDR);
  mem.write(MULTIBOOT_LOADER_NAME_ADDR, enc.encode(`${MULTIBOOT_LOADER_NAME}\0`));
  mem.writeU32(info + MBI_LOADER_NAME_PTR, MULTIBOOT_LOADER_NAME_ADDR);

  const mpTable = writeMpTable(mem, {
    cpus,
    ...(opts.pci === undefined ? {} : { pci: opts.pci }),
    ...(opts.irq0ToPin2 === undefined ? {} : { irq0ToPin2: opts.irq0ToPin2 }),
  });
  const entry = setupProtectedModeEntry(mem, { eip: entryPoint, eax: MULTIBOOT_BOOTLOADER_MAGIC, ebx: info });
  return {
    entry,
    kernel: { start: kernelRange.start, end: kernelRange.end, entryPoint },
    infoAddress: info,
    modules: placed,
    e820,
    mpTable,
  };
}
