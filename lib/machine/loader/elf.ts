/**
 * ELF32/ELF64 little-endian x86 executables: header, PT_LOAD program headers, loading by physical address.
 * Used for vmlinux (64-bit and 32-bit) and for multiboot kernels.
 */

import type { GuestMemory } from '../guest-memory.js';
import { hex, LoaderError, mib } from './errors.js';
import { ImageReader } from './image-reader.js';

export const EM_386 = 3;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
const ET_EXEC = 2;
const ET_DYN = 3;

export interface ElfSegment {
  index: number;
  offset: number;
  /** Virtual address; a bigint because x86-64 kernels link at 0xffffffff8xxxxxxx. */
  vaddr: bigint;
  paddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfImage {
  elfClass: 32 | 64;
  machine: number;
  /** e_entry exactly as in the file (may be virtual). */
  entry: bigint;
  segments: ElfSegment[];
}

export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46;
}

export function parseElf(bytes: Uint8Array, path: string, what = 'ELF image'): ElfImage {
  const r = new ImageReader(bytes, path, what);
  const cls = r.u8(4, 'e_ident[EI_CLASS]');
  if (cls !== 1 && cls !== 2) throw new LoaderError(`${path}: unknown ELF class ${cls}`, path, 'kernel');
  if (r.u8(5, 'e_ident[EI_DATA]') !== 1) throw new LoaderError(`${path}: big-endian ELF is not an x86 image`, path, 'kernel');
  const elfClass = cls === 1 ? 32 : 64;
  const type = r.u16(16, 'e_type');
  if (type !== ET_EXEC && type !== ET_DYN) {
    throw new LoaderError(`${path}: ELF type ${type} is not an executable`, path, 'kernel');
  }
  const machine = r.u16(18, 'e_machine');
  const expected = elfClass === 64 ? EM_X86_64 : EM_386;
  if (machine !== expected) {
    throw new LoaderError(
      `${path}: ELF${elfClass} for machine ${machine}, expected ${expected} (${elfClass === 64 ? 'x86-64' : 'i386'})`,
      path,
      'kernel',
    );
  }
  const entry = elfClass === 64 ? r.u64big(0x18, 'e_entry') : BigInt(r.u32(0x18, 'e_entry'));
  const phoff = elfClass === 64 ? r.u64(0x20, 'e_phoff') : r.u32(0x1c, 'e_phoff');
  const phentsize = r.u16(elfClass === 64 ? 0x36 : 0x2a, 'e_phentsize');
  const phnum = r.u16(elfClass === 64 ? 0x38 : 0x2c, 'e_phnum');
  const minEntSize = elfClass === 64 ? 56 : 32;
  if (phnum > 0 && phentsize < minEntSize) {
    throw new LoaderError(`${path}: e_phentsize ${phentsize} is smaller than ${minEntSize}`, path, 'kernel');
  }
  const segments: ElfSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    r.need(p, minEntSize, `program header ${i}`);
    if (r.u32(p, 'p_type') !== PT_LOAD) continue;
    const seg: ElfSegment =
      elfClass === 64
        ? { index: i, offset: r.u64(p + 8, 'p_offset'), vaddr: r.u64big(p + 16, 'p_vaddr'), paddr: r.u64(p + 24, 'p_paddr'), filesz: r.u64(p + 32, 'p_filesz'), memsz: r.u64(p + 40, 'p_memsz') }
        : { index: i, offset: r.u32(p + 4, 'p_offset'), vaddr: BigInt(r.u32(p + 8, 'p_vaddr')), paddr: r.u32(p + 12, 'p_paddr'), filesz: r.u32(p + 16, 'p_filesz'), memsz: r.u32(p + 20, 'p_memsz') };
    if (seg.filesz > seg.memsz) {
      throw new LoaderError(`${path}: segment ${i} has p_filesz ${seg.filesz} > p_memsz ${seg.memsz}`, path, 'kernel');
    }
    r.need(seg.offset, seg.filesz, `segment ${i} (p_offset ${hex(seg.offset)} + p_filesz ${seg.filesz})`);
    segments.push(seg);
  }
  if (segments.length === 0) throw new LoaderError(`${path}: ELF image has no PT_LOAD segments`, path, 'kernel');
  return { elfClass, machine, entry, segments };
}

/**
 * The physical entry address. x86 vmlinux and most multiboot kernels give a physical e_entry; when e_entry
 * lies only in a segment's virtual range it is translated through that segment's p_paddr.
 */
export function physicalEntry(elf: ElfImage, path: string): number {
  const e = elf.entry;
  const inPhys = elf.segments.some((s) => e >= BigInt(s.paddr) && e < BigInt(s.paddr + s.memsz));
  if (inPhys) return Number(e);
  const seg = elf.segments.find((s) => e >= s.vaddr && e < s.vaddr + BigInt(s.memsz));
  if (seg) return Number(e - seg.vaddr) + seg.paddr;
  throw new LoaderError(`${path}: entry point 0x${e.toString(16)} is not inside any PT_LOAD segment`, path, 'kernel');
}

export interface LoadedRange {
  start: number;
  end: number;
}

/** Copies every PT_LOAD to p_paddr and zeroes its bss; each must lie entirely in guest RAM. */
export function loadElfSegments(mem: GuestMemory, bytes: Uint8Array, elf: ElfImage, path: string): LoadedRange {
  let start = Number.POSITIVE_INFINITY;
  let end = 0;
  for (const s of elf.segments) {
    if (!mem.contains(s.paddr, s.memsz)) {
      throw new LoaderError(
        `${path}: segment ${s.index} [${hex(s.paddr)}, ${hex(s.paddr + s.memsz)}) lies outside guest RAM (${mib(mem.size)})`,
        path,
        'memory',
      );
    }
  }
  for (const s of elf.segments) {
    mem.write(s.paddr, bytes.subarray(s.offset, s.offset + s.filesz));
    mem.fill(s.paddr + s.filesz, s.memsz - s.filesz, 0);
    start = Math.min(start, s.paddr);
    end = Math.max(end, s.paddr + s.memsz);
  }
  return { start, end };
}
