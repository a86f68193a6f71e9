/** Synthesizes kernel images for the loader tests: bzImage, ELF32/ELF64 and multiboot images. */

export interface BzImageSpec {
  version?: number;
  setupSects?: number;
  payload?: Uint8Array;
  loadflags?: number;
  xloadflags?: number;
  relocatable?: boolean;
  kernelAlignment?: number;
  prefAddress?: number;
  initSize?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  /** Override syssize (paragraphs) to fake a truncated or inconsistent file. */
  syssize?: number;
  /** Cut the file to this many bytes. */
  truncateTo?: number;
}

/** A recognisable payload: byte i = (i * 7 + 3) & 0xff. */
export function pattern(length: number, seed = 3): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

export function makeBzImage(spec: BzImageSpec = {}): Uint8Array {
  const setupSects = spec.setupSects ?? 4;
  const setupSize = ((setupSects || 4) + 1) * 512;
  const payload = spec.payload ?? pattern(0x3000);
  const paddedPayload = Math.ceil(payload.length / 16) * 16;
  const file = new Uint8Array(setupSize + paddedPayload);
  const dv = new DataView(file.buffer);
  // Recognisable setup code bytes so tests can tell them from the payload.
  file.fill(0xcc, 0, setupSize);
  file.fill(0, 0x1f1, 0x290);
  file[0x1f1] = setupSects;
  dv.setUint32(0x1f4, spec.syssize ?? paddedPayload / 16, true);
  dv.setUint16(0x1fa, 0xfffd, true); // vid_mode as a kernel ships it ("ask")
  dv.setUint16(0x1fe, 0xaa55, true);
  file[0x200] = 0xeb; // jmp short to the end of the header (0x26c)
  file[0x201] = 0x6a;
  dv.setUint32(0x202, 0x53726448, true); // "HdrS"
  dv.setUint16(0x206, spec.version ?? 0x020f, true);
  dv.setUint16(0x20e, 0x1234, true); // kernel_version pointer: copied verbatim
  file[0x211] = spec.loadflags ?? 0x01;
  dv.setUint32(0x214, 0x100000, true);
  dv.setUint32(0x22c, spec.initrdAddrMax ?? 0x7fffffff, true);
  dv.setUint32(0x230, spec.kernelAlignment ?? 0x200000, true);
  file[0x234] = spec.relocatable === false ? 0 : 1;
  file[0x235] = 21;
  dv.setUint16(0x236, spec.xloadflags ?? 0x1, true);
  dv.setUint32(0x238, spec.cmdlineSize ?? 2047, true);
  dv.setBigUint64(0x258, BigInt(spec.prefAddress ?? 0x1000000), true);
  dv.setUint32(0x260, spec.initSize ?? 0x400000, true);
  file.set(payload, setupSize);
  return spec.truncateTo === undefined ? file : file.slice(0, spec.truncateTo);
}

export interface ElfSegmentSpec {
  paddr: number;
  vaddr?: bigint;
  data: Uint8Array;
  memsz?: number;
}

export interface ElfSpec {
  elfClass: 32 | 64;
  machine?: number;
  entry: bigint;
  segments: ElfSegmentSpec[];
  /** Bytes placed right after the program headers (e.g. a multiboot header), inside the first 8 KiB. */
  extra?: Uint8Array;
  /** Add a PT_NOTE before the loads, which the loader must skip. */
  withNote?: boolean;
}

export function makeElf(spec: ElfSpec): Uint8Array {
  const is64 = spec.elfClass === 64;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const phdrs = (spec.withNote ? 1 : 0) + spec.segments.length;
  const extraAt = ehsize + phdrs * phentsize;
  let dataAt = Math.ceil((extraAt + (spec.extra?.length ?? 0)) / 16) * 16;
  const offsets = spec.segments.map((s) => {
    const o = dataAt;
    dataAt += Math.ceil(s.data.length / 16) * 16;
    return o;
  });
  const file = new Uint8Array(dataAt);
  const dv = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, 1, 1]);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, spec.machine ?? (is64 ? 62 : 3), true);
  dv.setUint32(20, 1, true);
  if (is64) {
    dv.setBigUint64(0x18, spec.entry, true);
    dv.setBigUint64(0x20, BigInt(ehsize), true);
    dv.setUint16(0x34, ehsize, true);
    dv.setUint16(0x36, phentsize, true);
    dv.setUint16(0x38, phdrs, true);
  } else {
    dv.setUint32(0x18, Number(spec.entry), true);
    dv.setUint32(0x1c, ehsize, true);
    dv.setUint16(0x28, ehsize, true);
    dv.setUint16(0x2a, phentsize, true);
    dv.setUint16(0x2c, phdrs, true);
  }
  let ph = ehsize;
  if (spec.withNote) {
    dv.setUint32(ph, 4, true); // PT_NOTE
    ph += phentsize;
  }
  spec.segments.forEach((s, i) => {
    const vaddr = s.vaddr ?? BigInt(s.paddr);
    const memsz = s.memsz ?? s.data.length;
    dv.setUint32(ph, 1, true); // PT_LOAD
    if (is64) {
      dv.setUint32(ph + 4, 7, true);
      dv.setBigUint64(ph + 8, BigInt(offsets[i]!), true);
      dv.setBigUint64(ph + 16, vaddr, true);
      dv.setBigUint64(ph + 24, BigInt(s.paddr), true);
      dv.setBigUint64(ph + 32, BigInt(s.data.length), true);
      dv.setBigUint64(ph + 40, BigInt(memsz), true);
      dv.setBigUint64(ph + 48, 0x1000n, true);
    } else {
      dv.setUint32(ph + 4, offsets[i]!, true);
      dv.setUint32(ph + 8, Number(vaddr), true);
      dv.setUint32(ph + 12, s.paddr, true);
      dv.setUint32(ph + 16, s.data.length, true);
      dv.setUint32(ph + 20, memsz, true);
      dv.setUint32(ph + 24, 7, true);
      dv.setUint32(ph + 28, 0x1000, true);
    }
    file.set(s.data, offsets[i]!);
    ph += phentsize;
  });
  if (spec.extra) file.set(spec.extra, extraAt);
  return file;
}

export interface MultibootHeaderSpec {
  flags: number;
  /** Override the checksum (to test a bad one). */
  checksum?: number;
  aout?: { headerAddr: number; loadAddr: number; loadEndAddr: number; bssEndAddr: number; entryAddr: number };
}

export function makeMultibootHeader(spec: MultibootHeaderSpec): Uint8Array {
  const out = new Uint8Array(spec.aout ? 32 : 12);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, 0x1badb002, true);
  dv.setUint32(4, spec.flags >>> 0, true);
  dv.setUint32(8, spec.checksum ?? (-(0x1badb002 + spec.flags) >>> 0), true);
  if (spec.aout) {
    dv.setUint32(12, spec.aout.headerAddr, true);
    dv.setUint32(16, spec.aout.loadAddr, true);
    dv.setUint32(20, spec.aout.loadEndAddr, true);
    dv.setUint32(24, spec.aout.bssEndAddr, true);
    dv.setUint32(28, spec.aout.entryAddr, true);
  }
  return out;
}

/** Fast byte-array equality (vitest's deep equality walks large arrays element by element). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
