/**
 * Encoding and decoding of the KVM register-file structs (x86-64 layouts from the KVM API). 64-bit
 * architectural values are bigint; small fields (selectors, flags, limits) are numbers.
 */

export interface Regs {
  rax: bigint; rbx: bigint; rcx: bigint; rdx: bigint; rsi: bigint; rdi: bigint; rsp: bigint; rbp: bigint;
  r8: bigint; r9: bigint; r10: bigint; r11: bigint; r12: bigint; r13: bigint; r14: bigint; r15: bigint;
  rip: bigint; rflags: bigint;
}
/** Order of struct kvm_regs. */
export const REG_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
  'rip', 'rflags',
] as const satisfies readonly (keyof Regs)[];
export const REGS_SIZE = 144;

export function decodeRegs(b: Uint8Array): Regs {
  const v = new DataView(b.buffer, b.byteOffset, REGS_SIZE);
  const r = {} as Record<keyof Regs, bigint>;
  REG_NAMES.forEach((name, i) => { r[name] = v.getBigUint64(i * 8, true); });
  return r;
}

export function encodeRegs(r: Regs, out: Uint8Array = new Uint8Array(REGS_SIZE)): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset, REGS_SIZE);
  REG_NAMES.forEach((name, i) => v.setBigUint64(i * 8, BigInt.asUintN(64, r[name]), true));
  return out;
}

export interface Segment {
  base: bigint; limit: number; selector: number; type: number; present: number; dpl: number; db: number;
  s: number; l: number; g: number; avl: number; unusable: number;
}
export interface DescriptorTable { base: bigint; limit: number }
export interface Sregs {
  cs: Segment; ds: Segment; es: Segment; fs: Segment; gs: Segment; ss: Segment; tr: Segment; ldt: Segment;
  gdt: DescriptorTable; idt: DescriptorTable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint; efer: bigint; apicBase: bigint;
  /** Pending external interrupt bitmap (256 bits as 4 x u64); normally zero. */
  interruptBitmap: [bigint, bigint, bigint, bigint];
}
export const SREGS_SIZE = 312;
const SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
const CR_NAMES = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const;

function decodeSegment(v: DataView, o: number): Segment {
  return {
    base: v.getBigUint64(o, true), limit: v.getUint32(o + 8, true), selector: v.getUint16(o + 12, true),
    type: v.getUint8(o + 14), present: v.getUint8(o + 15), dpl: v.getUint8(o + 16), db: v.getUint8(o + 17),
    s: v.getUint8(o + 18), l: v.getUint8(o + 19), g: v.getUint8(o + 20), avl: v.getUint8(o + 21),
    unusable: v.getUint8(o + 22),
  };
}

function encodeSegment(v: DataView, o: number, s: Segment): void {
  v.setBigUint64(o, BigInt.asUintN(64, s.base), true);
  v.setUint32(o + 8, s.limit >>> 0, true);
  v.setUint16(o + 12, s.selector, true);
  v.setUint8(o + 14, s.type); v.setUint8(o + 15, s.present); v.setUint8(o + 16, s.dpl); v.setUint8(o + 17, s.db);
  v.setUint8(o + 18, s.s); v.setUint8(o + 19, s.l); v.setUint8(o + 20, s.g); v.setUint8(o + 21, s.avl);
  v.setUint8(o + 22, s.unusable); v.setUint8(o + 23, 0);
}

export function decodeSregs(b: Uint8Array): Sregs {
  const v = new DataView(b.buffer, b.byteOffset, SREGS_SIZE);
  const segs = SEGMENT_NAMES.map((_, i) => decodeSegment(v, i * 24));
  const crs = CR_NAMES.map((_, i) => v.getBigUint64(224 + i * 8, true));
  return {
    cs: segs[0]!, ds: segs[1]!, es: segs[2]!, fs: segs[3]!, gs: segs[4]!, ss: segs[5]!, tr: segs[6]!, ldt: segs[7]!,
    gdt: { base: v.getBigUint64(192, true), limit: v.getUint16(200, true) },
    idt: { base: v.getBigUint64(208, true), limit: v.getUint16(216, true) },
    cr0: crs[0]!, cr2: crs[1]!, cr3: crs[2]!, cr4: crs[3]!, cr8: crs[4]!, efer: crs[5]!, apicBase: crs[6]!,
    interruptBitmap: [0, 1, 2, 3].map((i) => v.getBigUint64(280 + i * 8, true)) as [bigint, bigint, bigint, bigint],
  };
}

export function encodeSregs(s: Sregs, out: Uint8Array = new Uint8Array(SREGS_SIZE)): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset, SREGS_SIZE);
  SEGMENT_NAMES.forEach((name, i) => encodeSegment(v, i * 24, s[name]));
  v.setBigUint64(192, BigInt.asUintN(64, s.gdt.base), true); v.setUint16(200, s.gdt.limit, true);
  v.setBigUint64(208, BigInt.asUintN(64, s.idt.base), true); v.setUint16(216, s.idt.limit, true);
  CR_NAMES.forEach((name, i) => v.setBigUint64(224 + i * 8, BigInt.asUintN(64, s[name]), true));
  s.interruptBitmap.forEach((w, i) => v.setBigUint64(280 + i * 8, BigInt.asUintN(64, w), true));
  return out;
}

export interface Fpu {
  /** 8 x87 registers, 16 bytes each (80-bit values, low 10 bytes significant). */
  fpr: Uint8Array[]; fcw: number; fsw: number; ftwx: number; lastOpcode: number; lastIp: bigint; lastDp: bigint;
  /** 16 XMM registers, 16 bytes each. */
  xmm: Uint8Array[]; mxcsr: number;
}
export const FPU_SIZE = 416;

export function decodeFpu(b: Uint8Array): Fpu {
  const v = new DataView(b.buffer, b.byteOffset, FPU_SIZE);
  return {
    fpr: Array.from({ length: 8 }, (_, i) => b.slice(i * 16, i * 16 + 16)),
    fcw: v.getUint16(128, true), fsw: v.getUint16(130, true), ftwx: v.getUint8(132), lastOpcode: v.getUint16(134, true),
    lastIp: v.getBigUint64(136, true), lastDp: v.getBigUint64(144, true),
    xmm: Array.from({ length: 16 }, (_, i) => b.slice(152 + i * 16, 168 + i * 16)),
    mxcsr: v.getUint32(408, true),
  };
}

export function encodeFpu(f: Fpu, out: Uint8Array = new Uint8Array(FPU_SIZE)): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset, FPU_SIZE);
  f.fpr.forEach((r, i) => out.set(r.subarray(0, 16), i * 16));
  v.setUint16(128, f.fcw, true); v.setUint16(130, f.fsw, true); v.setUint8(132, f.ftwx); v.setUint16(134, f.lastOpcode, true);
  v.setBigUint64(136, f.lastIp, true); v.setBigUint64(144, f.lastDp, true);
  f.xmm.forEach((r, i) => out.set(r.subarray(0, 16), 152 + i * 16));
  v.setUint32(408, f.mxcsr >>> 0, true);
  return out;
}

export interface VcpuEvents {
  exception: { injected: number; nr: number; hasErrorCode: number; pending: number; errorCode: number };
  interrupt: { injected: number; nr: number; soft: number; shadow: number };
  nmi: { injected: number; pending: number; masked: number };
  sipiVector: number;
  /** KVM_VCPUEVENT_VALID_* bits saying which optional fields to apply on set. */
  flags: number;
  smi: { smm: number; pending: number; smmInsideNmi: number; latchedInit: number };
  tripleFault: { pending: number };
  exceptionHasPayload: number;
  exceptionPayload: bigint;
}
export const VCPU_EVENTS_SIZE = 64;

export function decodeVcpuEvents(b: Uint8Array): VcpuEvents {
  const v = new DataView(b.buffer, b.byteOffset, VCPU_EVENTS_SIZE);
  const u8 = (o: number): number => v.getUint8(o);
  return {
    exception: { injected: u8(0), nr: u8(1), hasErrorCode: u8(2), pending: u8(3), errorCode: v.getUint32(4, true) },
    interrupt: { injected: u8(8), nr: u8(9), soft: u8(10), shadow: u8(11) },
    nmi: { injected: u8(12), pending: u8(13), masked: u8(14) },
    sipiVector: v.getUint32(16, true),
    flags: v.getUint32(20, true),
    smi: { smm: u8(24), pending: u8(25), smmInsideNmi: u8(26), latchedInit: u8(27) },
    tripleFault: { pending: u8(28) },
    exceptionHasPayload: u8(55),
    exceptionPayload: v.getBigUint64(56, true),
  };
}

export function encodeVcpuEvents(e: VcpuEvents, out: Uint8Array = new Uint8Array(VCPU_EVENTS_SIZE)): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset, VCPU_EVENTS_SIZE);
  out.fill(0, 0, VCPU_EVENTS_SIZE);
  v.setUint8(0, e.exception.injected); v.setUint8(1, e.exception.nr); v.setUint8(2, e.exception.hasErrorCode);
  v.setUint8(3, e.exception.pending); v.setUint32(4, e.exception.errorCode >>> 0, true);
  v.setUint8(8, e.interrupt.injected); v.setUint8(9, e.interrupt.nr); v.setUint8(10, e.interrupt.soft); v.setUint8(11, e.interrupt.shadow);
  v.setUint8(12, e.nmi.injected); v.setUint8(13, e.nmi.pending); v.setUint8(14, e.nmi.masked);
  v.setUint32(16, e.sipiVector >>> 0, true); v.setUint32(20, e.flags >>> 0, true);
  v.setUint8(24, e.smi.smm); v.setUint8(25, e.smi.pending); v.setUint8(26, e.smi.smmInsideNmi); v.setUint8(27, e.smi.latchedInit);
  v.setUint8(28, e.tripleFault.pending);
  v.setUint8(55, e.exceptionHasPayload); v.setBigUint64(56, e.exceptionPayload, true);
  return out;
}

export interface DebugRegs { db: [bigint, bigint, bigint, bigint]; dr6: bigint; dr7: bigint; flags: bigint }
export const DEBUG_REGS_SIZE = 128;

export function decodeDebugRegs(b: Uint8Array): DebugRegs {
  const v = new DataView(b.buffer, b.byteOffset, DEBUG_REGS_SIZE);
  return {
    db: [0, 1, 2, 3].map((i) => v.getBigUint64(i * 8, true)) as [bigint, bigint, bigint, bigint],
    dr6: v.getBigUint64(32, true), dr7: v.getBigUint64(40, true), flags: v.getBigUint64(48, true),
  };
}

export function encodeDebugRegs(d: DebugRegs, out: Uint8Array = new Uint8Array(DEBUG_REGS_SIZE)): Uint8Array {
  const v = new DataView(out.buffer, out.byteOffset, DEBUG_REGS_SIZE);
  out.fill(0, 0, DEBUG_REGS_SIZE);
  d.db.forEach((x, i) => v.setBigUint64(i * 8, x, true));
  v.setBigUint64(32, d.dr6, true); v.setBigUint64(40, d.dr7, true); v.setBigUint64(48, d.flags, true);
  return out;
}

export interface Xcr { xcr: number; value: bigint }
export const XCRS_SIZE = 392;
const MAX_XCRS = 16;

export function decodeXcrs(b: Uint8Array): Xcr[] {
  const v = new DataView(b.buffer, b.byteOffset, XCRS_SIZE);
  const n = Math.min(v.getUint32(0, true), MAX_XCRS);
  return Array.from({ length: n }, (_, i) => ({ xcr: v.getUint32(8 + i * 16, true), value: v.getBigUint64(16 + i * 16, true) }));
}

export function encodeXcrs(xcrs: readonly Xcr[]): Uint8Array {
  if (xcrs.length > MAX_XCRS) throw new RangeError(`at most ${MAX_XCRS} XCRs`);
  const out = new Uint8Array(XCRS_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, xcrs.length, true);
  xcrs.forEach((x, i) => { v.setUint32(8 + i * 16, x.xcr, true); v.setBigUint64(16 + i * 16, x.value, true); });
  return out;
}

export interface CpuidEntry {
  function: number; index: number;
  /** KVM_CPUID_FLAG_SIGNIFCANT_INDEX (1) etc. */
  flags: number;
  eax: number; ebx: number; ecx: number; edx: number;
}
const CPUID_ENTRY_SIZE = 40;

/** struct kvm_cpuid2 bytes -> entries. */
export function decodeCpuid(b: Uint8Array): CpuidEntry[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = v.getUint32(0, true);
  if (8 + n * CPUID_ENTRY_SIZE > b.byteLength) throw new RangeError('kvm_cpuid2: entry count exceeds buffer');
  return Array.from({ length: n }, (_, i) => {
    const o = 8 + i * CPUID_ENTRY_SIZE;
    return {
      function: v.getUint32(o, true), index: v.getUint32(o + 4, true), flags: v.getUint32(o + 8, true),
      eax: v.getUint32(o + 12, true), ebx: v.getUint32(o + 16, true), ecx: v.getUint32(o + 20, true), edx: v.getUint32(o + 24, true),
    };
  });
}

/** entries -> struct kvm_cpuid2 bytes (or an empty one with room for `capacity` entries). */
export function encodeCpuid(entries: readonly CpuidEntry[], capacity = entries.length): Uint8Array {
  const out = new Uint8Array(8 + Math.max(capacity, entries.length) * CPUID_ENTRY_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, Math.max(capacity, entries.length), true);
  entries.forEach((e, i) => {
    const o = 8 + i * CPUID_ENTRY_SIZE;
    v.setUint32(o, e.function >>> 0, true); v.setUint32(o + 4, e.index >>> 0, true); v.setUint32(o + 8, e.flags >>> 0, true);
    v.setUint32(o + 12, e.eax >>> 0, true); v.setUint32(o + 16, e.ebx >>> 0, true);
    v.setUint32(o + 20, e.ecx >>> 0, true); v.setUint32(o + 24, e.edx >>> 0, true);
  });
  return out;
}

export interface MsrEntry { index: number; value: bigint }

/** struct kvm_msrs with the given indices (values zero, or `entries`' values). */
export function encodeMsrs(entries: readonly MsrEntry[]): Uint8Array {
  const out = new Uint8Array(8 + entries.length * 16);
  const v = new DataView(out.buffer);
  v.setUint32(0, entries.length, true);
  entries.forEach((e, i) => { v.setUint32(8 + i * 16, e.index >>> 0, true); v.setBigUint64(16 + i * 16, BigInt.asUintN(64, e.value), true); });
  return out;
}

export function decodeMsrs(b: Uint8Array, count: number): MsrEntry[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return Array.from({ length: count }, (_, i) => ({ index: v.getUint32(8 + i * 16, true), value: v.getBigUint64(16 + i * 16, true) }));
}

export interface Translation { physicalAddress: bigint; valid: boolean; writeable: boolean; usermode: boolean }
export const TRANSLATION_SIZE = 24;

export interface ClockData { clock: bigint; flags: number; realtime: bigint; hostTsc: bigint }
export const CLOCK_DATA_SIZE = 48;

/** One KVM_SET_GSI_ROUTING entry: a GSI routed to an irqchip pin or to an MSI message. */
export type GsiRoute =
  | { gsi: number; type: 'irqchip'; irqchip: number; pin: number }
  | { gsi: number; type: 'msi'; addressLo: number; addressHi: number; data: number };

/** struct kvm_irq_routing_entry: gsi, type, flags, pad, then a 32-byte union. */
const GSI_ROUTE_ENTRY_SIZE = 48;

export function encodeGsiRouting(routes: readonly GsiRoute[]): Uint8Array {
  const out = new Uint8Array(8 + routes.length * GSI_ROUTE_ENTRY_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, routes.length, true);
  routes.forEach((r, i) => {
    const o = 8 + i * GSI_ROUTE_ENTRY_SIZE;
    v.setUint32(o, r.gsi >>> 0, true);
    if (r.type === 'irqchip') {
      v.setUint32(o + 4, 1, true);
      v.setUint32(o + 16, r.irqchip >>> 0, true); v.setUint32(o + 20, r.pin >>> 0, true);
    } else {
      v.setUint32(o + 4, 2, true);
      v.setUint32(o + 16, r.addressLo >>> 0, true); v.setUint32(o + 20, r.addressHi >>> 0, true); v.setUint32(o + 24, r.data >>> 0, true);
    }
  });
  return out;
}
