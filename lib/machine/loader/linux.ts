/**
 * The Linux x86 boot protocol loader: bzImage (64-bit entry when XLF_KERNEL_64, else the 32-bit entry) and
 * ELF vmlinux (ELF64 → long mode, ELF32 → 32-bit protected mode). A pure function over GuestMemory: it
 * writes the kernel, initrd, command line, zero page, e820 map, GDT/IDT/TSS, page tables and MP table and
 * returns the boot vCPU state. Nothing here knows about KVM or the interpreter.
 */

import type { BootCpuState } from '../boot/cpu-state.js';
import { setupLongModeEntry } from '../boot/long-mode.js';
import { type MpTableInfo, writeMpTable } from '../boot/mptable.js';
import { setupProtectedModeEntry } from '../boot/protected-mode.js';
import type { GuestMemory } from '../guest-memory.js';
import {
  CMDLINE_ADDR, CMDLINE_MAX_SIZE, type E820Entry, e820Map, HIGH_MEMORY_START, KERNEL_LOAD_ADDR, ZERO_PAGE_ADDR,
} from '../layout.js';
import { writeBootParams } from './boot-params.js';
import { type BzImageHeader, isBzImage, parseBzImage } from './bzimage.js';
import { isElf, loadElfSegments, parseElf, physicalEntry } from './elf.js';
import { hex, LoaderError, mib } from './errors.js';
import { checkCpus, checkGuestMemory, encodeCmdline, placeInitrd } from './placement.js';
import * as H from './boot-params.js';

/** Offset of startup_64 from the start of a bzImage's protected-mode code. */
export const BZIMAGE_64BIT_ENTRY_OFFSET = 0x200;
/** x86 COMMAND_LINE_SIZE is 2048 including the NUL; an ELF kernel has no header to say otherwise. */
export const ELF_CMDLINE_LIMIT = 2047;
/** Protocol version we claim in the zero page of an ELF kernel (2.15, the current one). */
export const ELF_BOOT_PROTOCOL = 0x020f;
export const ELF_KERNEL_ALIGNMENT = 0x100_0000;
/** Pre-2.03 default and the i386 lowmem limit (896 MiB minus vmalloc room). */
export const DEFAULT_INITRD_ADDR_MAX = 0x37ff_ffff;
export const ELF64_INITRD_ADDR_MAX = 0x7fff_ffff;

export type LinuxImageFormat = 'bzImage' | 'elf64' | 'elf32';

export interface LinuxLoadOptions {
  kernel: Uint8Array;
  kernelPath: string;
  initrd?: Uint8Array;
  initrdPath?: string;
  cmdline: string;
  /** Guest RAM size; `mem` must back ramRegions(memoryBytes). */
  memoryBytes: number;
  /** vCPUs announced in the MP table (default 1). */
  cpus?: number;
  /** Announce a PCI bus in the MP table. */
  pci?: boolean;
  /** See MpTableOptions.irq0ToPin2 (default true). */
  irq0ToPin2?: boolean;
}

export interface LinuxBootInfo {
  /** Initial state of the boot vCPU. */
  entry: BootCpuState;
  format: LinuxImageFormat;
  /** Boot protocol version from the bzImage header, or the one we claim for ELF kernels. */
  protocolVersion: number;
  kernel: {
    /** Lowest address written. */
    start: number;
    /** End of the bytes written (including ELF bss). */
    end: number;
    /** End of all memory the kernel claims while booting (decompression buffer); the initrd goes above it. */
    reservedEnd: number;
  };
  initrd?: { address: number; size: number };
  cmdline: { address: number; length: number };
  bootParamsAddress: number;
  e820: E820Entry[];
  mpTable: MpTableInfo;
}

interface LoadedKernel {
  format: LinuxImageFormat;
  protocolVersion: number;
  start: number;
  end: number;
  reservedEnd: number;
  entryPoint: number;
  mode: 'long' | 'protected';
  cmdlineLimit: number;
  cmdlineLimitSource: string;
  initrdAddrMax: number;
  setupHeader?: Uint8Array;
  kernelAlignment: number;
}

function alignUp(v: number, a: number): number {
  return a > 0 ? Math.ceil(v / a) * a : v;
}

/** Picks the bzImage load address: pref_address when the kernel is relocatable and it fits, else 1 MiB. */
function bzImageLoadAddress(h: BzImageHeader, lowEnd: number): number {
  const need = Math.max(h.initSize, h.payloadSize);
  const pref = h.prefAddress;
  const aligned = h.kernelAlignment === 0 || pref % h.kernelAlignment === 0;
  if (h.relocatable && pref >= HIGH_MEMORY_START && aligned && pref + need <= lowEnd) return pref;
  return KERNEL_LOAD_ADDR;
}

function loadBzImage(mem: GuestMemory, bytes: Uint8Array, path: string, lowEnd: number, memoryBytes: number): LoadedKernel {
  const h = parseBzImage(bytes, path);
  const load = bzImageLoadAddress(h, lowEnd);
  // The decompressor runs at max(load aligned up, LOAD_PHYSICAL_ADDR = pref_address) and needs init_size there.
  const runAt = Math.max(alignUp(load, h.kernelAlignment), h.prefAddress);
  const reservedEnd = Math.max(load + h.payloadSize, h.initSize > 0 ? runAt + h.initSize : 0);
  if (reservedEnd > lowEnd) {
    throw new LoaderError(
      `kernel ${path} needs guest memory up to ${hex(reservedEnd)} (${mib(reservedEnd)}) to decompress; the guest has ${mib(memoryBytes)}`,
      path,
      'memory',
    );
  }
  mem.write(load, bytes.subarray(h.setupSize, h.setupSize + h.payloadSize));
  const is64 = (h.xloadflags & H.XLF_KERNEL_64) !== 0;
  return {
    format: 'bzImage',
    protocolVersion: h.version,
    start: load,
    end: load + h.payloadSize,
    reservedEnd,
    entryPoint: is64 ? load + BZIMAGE_64BIT_ENTRY_OFFSET : load,
    mode: is64 ? 'long' : 'protected',
    cmdlineLimit: h.cmdlineSize,
    cmdlineLimitSource: `${path} (cmdline_size)`,
    initrdAddrMax: h.initrdAddrMax || DEFAULT_INITRD_ADDR_MAX,
    setupHeader: h.headerBytes,
    kernelAlignment: h.kernelAlignment,
  };
}

function loadVmlinux(mem: GuestMemory, bytes: Uint8Array, path: string): LoadedKernel {
  const elf = parseElf(bytes, path, 'ELF vmlinux');
  for (const s of elf.segments) {
    if (s.paddr < HIGH_MEMORY_START) {
      throw new LoaderError(
        `${path}: segment ${s.index} at ${hex(s.paddr)} is below 1 MiB, where the boot tables live; Linux kernels load at 1 MiB or above`,
        path,
        'kernel',
      );
    }
  }
  const range = loadElfSegments(mem, bytes, elf, path);
  const is64 = elf.elfClass === 64;
  return {
    format: is64 ? 'elf64' : 'elf32',
    protocolVersion: ELF_BOOT_PROTOCOL,
    start: range.start,
    end: range.end,
    reservedEnd: range.end,
    entryPoint: physicalEntry(elf, path),
    mode: is64 ? 'long' : 'protected',
    cmdlineLimit: ELF_CMDLINE_LIMIT,
    cmdlineLimitSource: 'the kernel (COMMAND_LINE_SIZE)',
    initrdAddrMax: is64 ? ELF64_INITRD_ADDR_MAX : DEFAULT_INITRD_ADDR_MAX,
    kernelAlignment: ELF_KERNEL_ALIGNMENT,
  };
}

/** Loads a Linux kernel (bzImage or ELF vmlinux) and everything it needs to boot. */
export function loadLinux(mem: GuestMemory, opts: LinuxLoadOptions): LinuxBootInfo {
  const lowEnd = checkGuestMemory(mem, opts.memoryBytes);
  const cpus = checkCpus(opts.cpus ?? 1);
  const path = opts.kernelPath;
  let k: LoadedKernel;
  if (isBzImage(opts.kernel)) k = loadBzImage(mem, opts.kernel, path, lowEnd, opts.memoryBytes);
  else if (isElf(opts.kernel)) k = loadVmlinux(mem, opts.kernel, path);
  else throw new LoaderError(`${path}: neither a bzImage nor an ELF vmlinux`, path, 'kernel');

  const cmdline = encodeCmdline(opts.cmdline, Math.min(k.cmdlineLimit, CMDLINE_MAX_SIZE - 1), k.cmdlineLimitSource);
  mem.write(CMDLINE_ADDR, cmdline);

  let initrd: { address: number; size: number } | undefined;
  if (opts.initrd) {
    const initrdPath = opts.initrdPath ?? 'initrd';
    initrd = placeInitrd(opts.initrd.length, {
      path: initrdPath,
      floor: k.reservedEnd,
      maxEnd: k.initrdAddrMax + 1,
      ramEnd: lowEnd,
      memoryBytes: opts.memoryBytes,
    });
    mem.write(initrd.address, opts.initrd);
  }

  const e820 = e820Map(opts.memoryBytes);
  writeBootParams(mem, ZERO_PAGE_ADDR, {
    ...(k.setupHeader ? { setupHeader: k.setupHeader } : {}),
    protocolVersion: k.protocolVersion,
    cmdlineAddress: CMDLINE_ADDR,
    cmdlineSize: k.cmdlineLimit,
    ...(initrd ? { ramdisk: initrd } : {}),
    e820,
    kernelLoadAddress: k.start,
    kernelAlignment: k.kernelAlignment,
    initrdAddrMax: k.initrdAddrMax,
  });
  const mpTable = writeMpTable(mem, {
    cpus,
    ...(opts.pci === undefined ? {} : { pci: opts.pci }),
    ...(opts.irq0ToPin2 === undefined ? {} : { irq0ToPin2: opts.irq0ToPin2 }),
  });
  const entry =
    k.mode === 'long'
      ? setupLongModeEntry(mem, { rip: k.entryPoint, rsi: ZERO_PAGE_ADDR, identityMapBytes: lowEnd })
      : setupProtectedModeEntry(mem, { eip: k.entryPoint, esi: ZERO_PAGE_ADDR });
  return {
    entry,
    format: k.format,
    protocolVersion: k.protocolVersion,
    kernel: { start: k.start, end: k.end, reservedEnd: k.reservedEnd },
    ...(initrd ? { initrd } : {}),
    cmdline: { address: CMDLINE_ADDR, length: cmdline.length - 1 },
    bootParamsAddress: ZERO_PAGE_ADDR,
    e820,
    mpTable,
  };
}
