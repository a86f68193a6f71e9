/** Recognising and parsing a bzImage's setup header (Linux x86 boot protocol, Documentation/arch/x86/boot.rst). */

import * as H from './boot-params.js';
import { LoaderError } from './errors.js';
import { ImageReader } from './image-reader.js';

/** 2.06 added cmdline_size; older kernels predate everything we rely on. */
export const MIN_BOOT_PROTOCOL = 0x0206;
const SECTOR = 512;

export interface BzImageHeader {
  /** Protocol version, e.g. 0x020f for 2.15. */
  version: number;
  setupSects: number;
  /** Bytes before the protected-mode code: (setup_sects + 1) * 512. */
  setupSize: number;
  /** Bytes of protected-mode code: syssize * 16. */
  payloadSize: number;
  loadflags: number;
  /** 0 for protocol < 2.12. */
  xloadflags: number;
  relocatable: boolean;
  kernelAlignment: number;
  initrdAddrMax: number;
  /** Max command line length excluding the terminating NUL. */
  cmdlineSize: number;
  /** 0 for protocol < 2.10. */
  prefAddress: number;
  /** Memory the kernel needs from its load address while it decompresses; 0 for protocol < 2.10. */
  initSize: number;
  /** The setup header bytes as in the file, from 0x1f1 to its declared end. */
  headerBytes: Uint8Array;
}

/** True when the file carries a boot sector with the "HdrS" setup header. */
export function isBzImage(bytes: Uint8Array): boolean {
  if (bytes.length < H.HDR_HEADER + 4) return false;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return dv.getUint16(H.HDR_BOOT_FLAG, true) === H.BOOT_FLAG_MAGIC && dv.getUint32(H.HDR_HEADER, true) === H.HDR_MAGIC;
}

export function formatVersion(v: number): string {
  return `${v >> 8}.${(v & 0xff).toString().padStart(2, '0')}`;
}

/** Parses and validates the header; the caller has checked isBzImage(). */
export function parseBzImage(bytes: Uint8Array, path: string): BzImageHeader {
  const r = new ImageReader(bytes, path, 'bzImage');
  const version = r.u16(H.HDR_VERSION, 'the boot protocol version');
  if (version < MIN_BOOT_PROTOCOL) {
    throw new LoaderError(
      `${path}: Linux boot protocol ${formatVersion(version)} is too old; nodevmm needs ${formatVersion(MIN_BOOT_PROTOCOL)} or newer (kernel 2.6.22+)`,
      path,
      'version',
    );
  }
  const setupSects = r.u8(H.HDR_SETUP_SECTS, 'setup_sects') || 4;
  const setupSize = (setupSects + 1) * SECTOR;
  const payloadSize = r.u32(H.HDR_SYSSIZE, 'syssize') * 16;
  if (payloadSize === 0) throw new LoaderError(`${path}: bzImage header says the kernel is empty (syssize 0)`, path, 'kernel');
  const expected = setupSize + payloadSize;
  if (bytes.length < expected) {
    throw new LoaderError(
      `${path}: truncated bzImage: the header says ${expected} bytes (${setupSize} setup + ${payloadSize} kernel), the file has ${bytes.length}`,
      path,
      'kernel',
    );
  }
  // The header ends where the jump at 0x200 (EB xx) lands: 0x202 + xx.
  const headerEnd = Math.min(H.HDR_JUMP + 2 + r.u8(H.HDR_JUMP + 1, 'the setup jump'), H.HDR_LIMIT);
  const field = (offset: number, minVersion: number, read: () => number): number =>
    version >= minVersion && offset < headerEnd ? read() : 0;
  return {
    version,
    setupSects,
    setupSize,
    payloadSize,
    loadflags: r.u8(H.HDR_LOADFLAGS, 'loadflags'),
    xloadflags: field(H.HDR_XLOADFLAGS, 0x020c, () => r.u16(H.HDR_XLOADFLAGS, 'xloadflags')),
    relocatable: field(H.HDR_RELOCATABLE_KERNEL, 0x0205, () => r.u8(H.HDR_RELOCATABLE_KERNEL, 'relocatable_kernel')) !== 0,
    kernelAlignment: field(H.HDR_KERNEL_ALIGNMENT, 0x0205, () => r.u32(H.HDR_KERNEL_ALIGNMENT, 'kernel_alignment')),
    initrdAddrMax: r.u32(H.HDR_INITRD_ADDR_MAX, 'initrd_addr_max'),
    // A zero cmdline_size is treated as the pre-2.06 limit of 255 bytes.
    cmdlineSize: r.u32(H.HDR_CMDLINE_SIZE, 'cmdline_size') || 255,
    prefAddress: field(H.HDR_PREF_ADDRESS, 0x020a, () => r.u64(H.HDR_PREF_ADDRESS, 'pref_address')),
    initSize: field(H.HDR_INIT_SIZE, 0x020a, () => r.u32(H.HDR_INIT_SIZE, 'init_size')),
    headerBytes: r.slice(H.HDR_SETUP_SECTS, headerEnd - H.HDR_SETUP_SECTS, 'the setup header'),
  };
}
