/**
 * struct boot_params (the "zero page") of the Linux x86 boot protocol: field offsets and the writer.
 * Offsets are from Documentation/arch/x86/zero-page.rst and boot.rst.
 */

import type { GuestMemory } from '../guest-memory.js';
import type { E820Entry } from '../layout.js';

export const BOOT_PARAMS_SIZE = 4096;

// struct boot_params
export const BP_EXT_RAMDISK_IMAGE = 0x0c0;
export const BP_EXT_RAMDISK_SIZE = 0x0c4;
export const BP_EXT_CMD_LINE_PTR = 0x0c8;
export const BP_E820_ENTRIES = 0x1e8;
export const BP_SETUP_HEADER = 0x1f1;
export const BP_E820_TABLE = 0x2d0;
export const E820_ENTRY_SIZE = 20;
export const E820_MAX_ENTRIES = 128;

// struct setup_header (offsets within the zero page / the bzImage file)
export const HDR_SETUP_SECTS = 0x1f1;
export const HDR_SYSSIZE = 0x1f4;
export const HDR_VID_MODE = 0x1fa;
export const HDR_BOOT_FLAG = 0x1fe;
export const HDR_JUMP = 0x200;
export const HDR_HEADER = 0x202;
export const HDR_VERSION = 0x206;
export const HDR_TYPE_OF_LOADER = 0x210;
export const HDR_LOADFLAGS = 0x211;
export const HDR_CODE32_START = 0x214;
export const HDR_RAMDISK_IMAGE = 0x218;
export const HDR_RAMDISK_SIZE = 0x21c;
export const HDR_HEAP_END_PTR = 0x224;
export const HDR_CMD_LINE_PTR = 0x228;
export const HDR_INITRD_ADDR_MAX = 0x22c;
export const HDR_KERNEL_ALIGNMENT = 0x230;
export const HDR_RELOCATABLE_KERNEL = 0x234;
export const HDR_XLOADFLAGS = 0x236;
export const HDR_CMDLINE_SIZE = 0x238;
export const HDR_PREF_ADDRESS = 0x258;
export const HDR_INIT_SIZE = 0x260;
/** First offset after struct setup_header (edd_mbr_sig_buffer starts at 0x290). */
export const HDR_LIMIT = 0x290;

export const BOOT_FLAG_MAGIC = 0xaa55;
/** "HdrS" read as a little-endian u32. */
export const HDR_MAGIC = 0x5372_6448;

export const LOADFLAG_LOADED_HIGH = 0x01;
export const LOADFLAG_KEEP_SEGMENTS = 0x40;
export const LOADFLAG_CAN_USE_HEAP = 0x80;
export const XLF_KERNEL_64 = 0x1;
export const XLF_CAN_BE_LOADED_ABOVE_4G = 0x2;

/** 0xff: a boot loader with no assigned ID. */
export const LOADER_TYPE_UNDEFINED = 0xff;
/** vid_mode 0xffff: "normal" VGA text mode, i.e. do not ask the setup code to change modes. */
export const VID_MODE_NORMAL = 0xffff;
/**
 * heap_end_ptr is relative to the real-mode code at 0x200 past its start; the setup code never runs when we
 * enter in protected or long mode, so any value in the 64 KiB segment is consistent. 0xfe00 is the usual one.
 */
export const HEAP_END_PTR = 0xfe00;

export interface BootParamsInput {
  /** The image's setup header bytes (file offsets 0x1f1..), or undefined for an ELF kernel. */
  setupHeader?: Uint8Array;
  /** Boot protocol version written for ELF kernels, which have no header of their own. */
  protocolVersion: number;
  cmdlineAddress: number;
  cmdlineSize: number;
  ramdisk?: { address: number; size: number };
  e820: readonly E820Entry[];
  kernelLoadAddress: number;
  kernelAlignment: number;
  initrdAddrMax: number;
}

/** Writes a complete zero page at `address`. */
export function writeBootParams(mem: GuestMemory, address: number, p: BootParamsInput): void {
  mem.fill(address, BOOT_PARAMS_SIZE, 0);
  const at = (offset: number): number => address + offset;
  if (p.setupHeader) {
    mem.write(at(BP_SETUP_HEADER), p.setupHeader);
  } else {
    mem.writeU16(at(HDR_BOOT_FLAG), BOOT_FLAG_MAGIC);
    mem.writeU32(at(HDR_HEADER), HDR_MAGIC);
    mem.writeU16(at(HDR_VERSION), p.protocolVersion);
    mem.writeU32(at(HDR_KERNEL_ALIGNMENT), p.kernelAlignment);
    mem.writeU32(at(HDR_INITRD_ADDR_MAX), p.initrdAddrMax);
    mem.writeU32(at(HDR_CMDLINE_SIZE), p.cmdlineSize);
    mem.writeU8(at(HDR_LOADFLAGS), LOADFLAG_LOADED_HIGH);
  }
  mem.writeU16(at(HDR_VID_MODE), VID_MODE_NORMAL);
  mem.writeU8(at(HDR_TYPE_OF_LOADER), LOADER_TYPE_UNDEFINED);
  const loadflags = mem.readU8(at(HDR_LOADFLAGS));
  // Keep what the kernel declared (LOADED_HIGH); we may use the heap, and we do not ask it to keep our segments.
  mem.writeU8(at(HDR_LOADFLAGS), (loadflags | LOADFLAG_CAN_USE_HEAP) & ~LOADFLAG_KEEP_SEGMENTS);
  mem.writeU16(at(HDR_HEAP_END_PTR), HEAP_END_PTR);
  mem.writeU32(at(HDR_CODE32_START), p.kernelLoadAddress);
  writeSplit(mem, at(HDR_CMD_LINE_PTR), at(BP_EXT_CMD_LINE_PTR), p.cmdlineAddress);
  if (p.ramdisk) {
    writeSplit(mem, at(HDR_RAMDISK_IMAGE), at(BP_EXT_RAMDISK_IMAGE), p.ramdisk.address);
    writeSplit(mem, at(HDR_RAMDISK_SIZE), at(BP_EXT_RAMDISK_SIZE), p.ramdisk.size);
  } else {
    writeSplit(mem, at(HDR_RAMDISK_IMAGE), at(BP_EXT_RAMDISK_IMAGE), 0);
    writeSplit(mem, at(HDR_RAMDISK_SIZE), at(BP_EXT_RAMDISK_SIZE), 0);
  }
  if (p.e820.length > E820_MAX_ENTRIES) throw new RangeError(`${p.e820.length} e820 entries (max ${E820_MAX_ENTRIES})`);
  mem.writeU8(at(BP_E820_ENTRIES), p.e820.length);
  p.e820.forEach((e, i) => {
    const base = at(BP_E820_TABLE + i * E820_ENTRY_SIZE);
    mem.writeU64(base, BigInt(e.addr));
    mem.writeU64(base + 8, BigInt(e.size));
    mem.writeU32(base + 16, e.type);
  });
}

/** A 64-bit quantity split into a header u32 (low half) and its ext_ u32 (high half). */
function writeSplit(mem: GuestMemory, lowAddr: number, highAddr: number, value: number): void {
  mem.writeU32(lowAddr, value % 0x1_0000_0000);
  mem.writeU32(highAddr, Math.floor(value / 0x1_0000_0000));
}
