/** Finding and validating a multiboot v1 header (Multiboot Specification 0.6.96, section 3.1). */

import { hex, LoaderError } from './errors.js';

export const MULTIBOOT_HEADER_MAGIC = 0x1bad_b002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2bad_b002;
/** The header must lie entirely within the first 8192 bytes, 32-bit aligned. */
export const MULTIBOOT_SEARCH_LIMIT = 8192;

export const MB_FLAG_PAGE_ALIGN_MODULES = 1 << 0;
export const MB_FLAG_MEMORY_INFO = 1 << 1;
export const MB_FLAG_VIDEO_MODE = 1 << 2;
export const MB_FLAG_AOUT_KLUDGE = 1 << 16;
/** Bits 0-15 are requirements: a loader must refuse a kernel asking for one it does not honour. */
const REQUIRED_MASK = 0xffff;
const SUPPORTED_REQUIRED = MB_FLAG_PAGE_ALIGN_MODULES | MB_FLAG_MEMORY_INFO;

export interface MultibootHeader {
  /** File offset of the magic. */
  offset: number;
  flags: number;
  /** Present when flags bit 16 is set. */
  addresses?: {
    headerAddr: number;
    loadAddr: number;
    loadEndAddr: number;
    bssEndAddr: number;
    entryAddr: number;
  };
}

function u32(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16) | (bytes[offset + 3]! << 24)) >>> 0;
}

function magicOffsets(bytes: Uint8Array): number[] {
  const out: number[] = [];
  const limit = Math.min(bytes.length, MULTIBOOT_SEARCH_LIMIT) - 12;
  for (let off = 0; off <= limit; off += 4) if (u32(bytes, off) === MULTIBOOT_HEADER_MAGIC) out.push(off);
  return out;
}

/** True when the magic appears where a multiboot header may be (checksum not yet verified). */
export function hasMultibootMagic(bytes: Uint8Array): boolean {
  return magicOffsets(bytes).length > 0;
}

/** Finds the first header whose checksum is valid and checks its flags. */
export function parseMultibootHeader(bytes: Uint8Array, path: string): MultibootHeader {
  const candidates = magicOffsets(bytes);
  const offset = candidates.find((o) => ((u32(bytes, o) + u32(bytes, o + 4) + u32(bytes, o + 8)) >>> 0) === 0);
  if (offset === undefined) {
    if (candidates.length > 0) {
      const o = candidates[0]!;
      throw new LoaderError(
        `${path}: multiboot header at offset ${hex(o)} has a bad checksum (magic + flags + checksum = ${hex((u32(bytes, o) + u32(bytes, o + 4) + u32(bytes, o + 8)) >>> 0)}, must be 0)`,
        path,
        'kernel',
      );
    }
    throw new LoaderError(`${path}: no multiboot header (magic 0x1badb002) in the first 8192 bytes`, path, 'kernel');
  }
  const flags = u32(bytes, offset + 4);
  if (flags & MB_FLAG_VIDEO_MODE) {
    throw new LoaderError(
      `${path}: the multiboot header requires a video mode (flags bit 2); nodevmm has no framebuffer, only a serial console`,
      path,
      'kernel',
    );
  }
  const unsupported = flags & REQUIRED_MASK & ~SUPPORTED_REQUIRED;
  if (unsupported) {
    throw new LoaderError(`${path}: the multiboot header requires unsupported features (flags ${hex(unsupported)})`, path, 'kernel');
  }
  const header: MultibootHeader = { offset, flags };
  if (flags & MB_FLAG_AOUT_KLUDGE) {
    if (offset + 32 > bytes.length) {
      throw new LoaderError(`${path}: truncated multiboot header at offset ${hex(offset)} (address fields missing)`, path, 'kernel');
    }
    header.addresses = {
      headerAddr: u32(bytes, offset + 12),
      loadAddr: u32(bytes, offset + 16),
      loadEndAddr: u32(bytes, offset + 20),
      bssEndAddr: u32(bytes, offset + 24),
      entryAddr: u32(bytes, offset + 28),
    };
  }
  return header;
}
