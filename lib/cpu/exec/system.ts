/** System instructions: control/debug registers, descriptor tables, MSRs, CPUID, TSC, SYSCALL/SYSENTER, CLI/STI/HLT. */
import {
  CR0_PE, CR0_PG, CR0_TS, CR0_WP, CR4_PAE, CR4_PGE, CR4_PSE, CR4_SUPPORTED, CR4_TSD, CS, DS, EFER_LMA, EFER_LME, EFER_NXE,
  EFER_SCE, ES, F_AC, F_IF, F_IOPL, F_RF, F_VM, FS, GS, LDTR, MSR_APIC_BASE, MSR_CSTAR, MSR_EFER, MSR_FEATURE_CONTROL, MSR_FS_BASE,
  MSR_GS_BASE, MSR_KERNEL_GS_BASE, MSR_LSTAR, MSR_MCG_CAP, MSR_MCG_STATUS, MSR_MISC_ENABLE, MSR_MTRR_DEF_TYPE, MSR_MTRRCAP,
  MSR_PAT, MSR_BIOS_SIGN_ID, MSR_SFMASK, MSR_STAR, MSR_SYSENTER_CS, MSR_SYSENTER_EIP, MSR_SYSENTER_ESP, MSR_TSC, MSR_TSC_AUX,
  SA_DB, SA_G, SA_L, SS, TR,
} from '../constants.js';
import type { Cpu } from '../cpu.js';
import { cpuid } from '../cpuid.js';
import type { Insn } from '../decoder/decode.js';
import { LF_FLAGS, arithFlags } from '../flags.js';
import { rsp, setRsp } from '../interrupts.js';
import { canonicalNumber, isCanonical, numberToU64 } from '../msr.js';
import { descAttr, descLimit, loadDataSegment, loadSystemSegment, readDescriptor, setSegCache } from '../segments.js';
import { big, readE, writeE } from './operands.js';
import { def } from './registry.js';

function needCpl0(c: Cpu): void {
  if ((c.cr0 & CR0_PE) && c.cpl !== 0) c.gp(0);
}

// ---------------------------------------------------------------- control registers

export function writeCr0(c: Cpu, v: number): void {
  v = (v | 0x10) >>> 0; // ET is hardwired
  if (v & CR0_PG && !(v & CR0_PE)) c.gp(0);
  const old = c.cr0 >>> 0;
  if (v & CR0_PG && !(old & CR0_PG) && c.efer & EFER_LME) {
    if (!(c.cr4 & CR4_PAE)) c.gp(0);
    c.efer |= EFER_LMA;
  } else if (!(v & CR0_PG) && old & CR0_PG && c.efer & EFER_LMA) {
    if (c.mode === 64) c.gp(0);
    c.efer &= ~EFER_LMA;
  }
  c.cr0 = v | 0;
  if ((old ^ v) & (CR0_PG | CR0_PE | CR0_WP)) c.flushTlb(true);
  c.updateMode();
}

export function writeCr4(c: Cpu, v: number): void {
  if (v & ~CR4_SUPPORTED) c.gp(0);
  if (c.longMode && !(v & CR4_PAE)) c.gp(0);
  const old = c.cr4;
  c.cr4 = v;
  if ((old ^ v) & (CR4_PGE | CR4_PAE | CR4_PSE)) c.flushTlb(true);
}

export function writeCr3(c: Cpu, v: number): void {
  c.cr3 = v;
  c.flushTlb(false);
}

def('mov Ry,Cy', (c, i) => {
  needCpl0(c);
  const os = c.mode === 64 ? 8 : 4;
  let v: number;
  switch (i.reg) {
    case 0: v = c.cr0 >>> 0; break;
    case 2: v = c.cr2; break;
    case 3: v = c.cr3; break;
    case 4: v = c.cr4 >>> 0; break;
    case 8: v = c.cr8; break;
    default: return c.ud();
  }
  c.setReg(i.rm, os, v >>> 0 | 0, os === 8 ? Math.floor(v / 4294967296) | 0 : 0);
});
def('mov Cy,Ry', (c, i) => {
  needCpl0(c);
  const lo = c.lo[i.rm]!, hi = c.mode === 64 ? c.hi[i.rm]! : 0;
  switch (i.reg) {
    case 0: if (hi !== 0) c.gp(0); writeCr0(c, lo); break;
    case 2: c.cr2 = hi * 4294967296 + (lo >>> 0); break;
    case 3: writeCr3(c, (hi >>> 0) * 4294967296 + (lo >>> 0)); break;
    case 4: if (hi !== 0) c.gp(0); writeCr4(c, lo); break;
    case 8: c.cr8 = lo & 15; break;
    default: c.ud();
  }
  c.updateMode();
});
def('mov Ry,Dy', (c, i) => {
  needCpl0(c);
  const r = i.reg === 4 ? 6 : i.reg === 5 ? 7 : i.reg;
  if (r > 7) c.ud();
  const v = c.dr[r]!;
  c.setReg(i.rm, c.mode === 64 ? 8 : 4, v >>> 0 | 0, Math.floor(v / 4294967296) | 0);
});
def('mov Dy,Ry', (c, i) => {
  needCpl0(c);
  const r = i.reg === 4 ? 6 : i.reg === 5 ? 7 : i.reg;
  if (r > 7) c.ud();
  c.dr[r] = (c.mode === 64 ? c.hi[i.rm]! : 0) * 4294967296 + (c.lo[i.rm]! >>> 0);
  // Hardware breakpoints (DR7) are stored but not enforced.
});
def('clts', (c) => { needCpl0(c); c.cr0 &= ~CR0_TS; });
def('lmsw', (c, i) => {
  needCpl0(c);
  const v = readE(c, i, 2);
  writeCr0(c, (c.cr0 & ~0xe) | (v & 0xf) | (c.cr0 & CR0_PE));
});
def('smsw', (c, i) => { writeE(c, i, i.isMem ? 2 : i.os, c.cr0, 0, false); });

// ---------------------------------------------------------------- descriptor tables

function tableOperand(c: Cpu, i: Insn): [number, number] {
  const lin = c.linear(i, 10);
  const limit = c.read16(lin);
  let base: number;
  if (c.mode === 64) { const l = c.read32(lin + 2); const h = c.read32(lin + 6); base = h * 4294967296 + (l >>> 0); } else {
    base = c.read32(lin + 2) >>> 0;
    if (i.os === 2) base &= 0xffffff;
  }
  return [limit, base];
}
function storeTable(c: Cpu, i: Insn, limit: number, base: number): void {
  const lin = c.linear(i, 10);
  c.write16(lin, limit);
  c.write32(lin + 2, base >>> 0 | 0);
  if (c.mode === 64) c.write32(lin + 6, Math.floor(base / 4294967296) | 0);
}
def('lgdt', (c, i) => { needCpl0(c); const [l, b] = tableOperand(c, i); c.gdtLimit = l; c.gdtBase = b; });
def('lidt', (c, i) => { needCpl0(c); const [l, b] = tableOperand(c, i); c.idtLimit = l; c.idtBase = b; });
def('sgdt', (c, i) => storeTable(c, i, c.gdtLimit, c.gdtBase));
def('sidt', (c, i) => storeTable(c, i, c.idtLimit, c.idtBase));
def('lldt', (c, i) => { if (!(c.cr0 & CR0_PE)) c.ud(); needCpl0(c); loadSystemSegment(c, LDTR, readE(c, i, 2)); });
def('ltr', (c, i) => { if (!(c.cr0 & CR0_PE)) c.ud(); needCpl0(c); loadSystemSegment(c, TR, readE(c, i, 2)); });
def('sldt', (c, i) => { if (!(c.cr0 & CR0_PE)) c.ud(); writeE(c, i, i.isMem ? 2 : i.os, c.segSel[LDTR]!, 0, false); });
def('str', (c, i) => { if (!(c.cr0 & CR0_PE)) c.ud(); writeE(c, i, i.isMem ? 2 : i.os, c.segSel[TR]!, 0, false); });

/** LAR/LSL/VERR/VERW: descriptor visibility check; sets ZF. Returns the descriptor when accessible. */
function probeDescriptor(c: Cpu, sel: number, forLsl: boolean): { lo: number; hi: number; hi2: number } | null {
  if (!(c.cr0 & CR0_PE)) c.ud();
  if ((sel & 0xfffc) === 0) return null;
  let d;
  try { d = readDescriptor(c, sel); } catch { return null; }
  const attr = descAttr(d);
  const type = attr & 0xf;
  if (!(attr & 0x10)) {
    const ok = forLsl ? [1, 2, 3, 9, 11].includes(type) : [1, 2, 3, 4, 5, 9, 11, 12].includes(type);
    if (!ok) return null;
  }
  const dpl = (attr >> 5) & 3;
  const conformingCode = (attr & 0x1c) === 0x1c;
  if (!conformingCode && (dpl < c.cpl || dpl < (sel & 3))) return null;
  return d;
}
function setZf(c: Cpu, z: boolean): void {
  c.lf.aux = (arithFlags(c.lf) & ~0x40) | (z ? 0x40 : 0); c.lf.op = LF_FLAGS;
}
def('lar', (c, i) => {
  const d = probeDescriptor(c, readE(c, i, 2), false);
  setZf(c, d !== null);
  if (d) c.setReg(i.reg, i.os, d.hi & 0x00f0ff00, 0);
});
def('lsl', (c, i) => {
  const d = probeDescriptor(c, readE(c, i, 2), true);
  setZf(c, d !== null);
  if (d) c.setReg(i.reg, i.os, descLimit(d) | 0, 0);
});
def(['verr', 'verw'], (c, i) => {
  const d = probeDescriptor(c, readE(c, i, 2), false);
  let ok = d !== null && (d.hi & 0x1000) !== 0;
  if (ok && d) {
    const type = (d.hi >> 8) & 0xf;
    ok = i.mnemonic === 'verr' ? !(type & 8) || (type & 2) !== 0 : !(type & 8) && (type & 2) !== 0;
  }
  setZf(c, ok);
});

// ---------------------------------------------------------------- segment registers

def('mov Sw,Ew', (c, i) => {
  const seg = i.reg & 7;
  if (seg === CS || seg > 5) c.ud();
  loadDataSegment(c, seg, readE(c, i, 2));
  if (seg === SS) c.shadow = true;
});
def('mov Ev,Sw', (c, i) => {
  const seg = i.reg & 7;
  if (seg > 5) c.ud();
  writeE(c, i, i.isMem ? 2 : i.os, c.segSel[seg]!, 0, false);
});
for (const [name, seg] of [['les', ES], ['lds', DS], ['lss', SS], ['lfs', FS], ['lgs', GS]] as const) {
  def(name, (c, i) => {
    const os = i.os; const lin = c.linear(i, os + 2);
    const off = c.readMem(lin, os); const offHi = c.tHi;
    const sel = c.read16(lin + os);
    loadDataSegment(c, seg, sel);
    c.setReg(i.reg, os, off, offHi);
  });
}
def('swapgs', (c) => {
  needCpl0(c);
  const t = c.segBase[GS]!; c.segBase[GS] = c.msr.kernelGsBase; c.msr.kernelGsBase = t;
});

// ---------------------------------------------------------------- MSRs

function u64Of(c: Cpu): bigint { return big(c.lo[0]!, c.lo[2]!); }

export function readMsr(c: Cpu, index: number): bigint | undefined {
  const m = c.msr;
  if (c.platformMsrs && index === MSR_APIC_BASE) return c.platformMsrs.readMsr(index);
  switch (index) {
    case MSR_TSC: return BigInt.asUintN(64, c.readTsc());
    case MSR_APIC_BASE: return m.apicBase;
    case MSR_FEATURE_CONTROL: return 1n; // locked, VMX off
    case MSR_BIOS_SIGN_ID: return 0n;
    case MSR_MTRRCAP: return 0n; // MTRRs not advertised: no ranges, no fixed, no WC
    case MSR_MTRR_DEF_TYPE: return m.mtrrDefType;
    case MSR_MCG_CAP: case MSR_MCG_STATUS: return 0n;
    case MSR_SYSENTER_CS: return BigInt(m.sysenterCs);
    case MSR_SYSENTER_ESP: return numberToU64(m.sysenterEsp);
    case MSR_SYSENTER_EIP: return numberToU64(m.sysenterEip);
    case MSR_MISC_ENABLE: return m.miscEnable;
    case MSR_PAT: return m.pat;
    case MSR_EFER: return BigInt(c.efer >>> 0);
    case MSR_STAR: return m.star;
    case MSR_LSTAR: return numberToU64(m.lstar);
    case MSR_CSTAR: return numberToU64(m.cstar);
    case MSR_SFMASK: return BigInt(m.sfmask >>> 0);
    case MSR_FS_BASE: return numberToU64(c.segBase[FS]!);
    case MSR_GS_BASE: return numberToU64(c.segBase[GS]!);
    case MSR_KERNEL_GS_BASE: return numberToU64(m.kernelGsBase);
    case MSR_TSC_AUX: return BigInt(m.tscAux >>> 0);
    default: return c.platformMsrs?.readMsr(index);
  }
}

/** Returns false when the MSR does not exist or the value is invalid (→ #GP). */
export function writeMsr(c: Cpu, index: number, v: bigint): boolean {
  const m = c.msr;
  if (c.platformMsrs && index === MSR_APIC_BASE) return c.platformMsrs.writeMsr(index, v);
  const addr = (): number | undefined => (isCanonical(v) ? canonicalNumber(v) : undefined);
  switch (index) {
    case MSR_TSC: m.tscOffset = BigInt.asIntN(64, v) - c.tscSource(); return true;
    case MSR_APIC_BASE: if (m.apicBase === undefined) return false; m.apicBase = v; return true;
    case MSR_BIOS_SIGN_ID: return true;
    case MSR_MTRR_DEF_TYPE: m.mtrrDefType = v & 0xcffn; return true;
    case MSR_MCG_STATUS: return true;
    case MSR_SYSENTER_CS: m.sysenterCs = Number(v & 0xffffn); return true;
    case MSR_SYSENTER_ESP: { const a = addr(); if (a === undefined) return false; m.sysenterEsp = a; return true; }
    case MSR_SYSENTER_EIP: { const a = addr(); if (a === undefined) return false; m.sysenterEip = a; return true; }
    case MSR_MISC_ENABLE: m.miscEnable = v; return true;
    case MSR_PAT: m.pat = v; return true;
    case MSR_EFER: {
      const allowed = BigInt(EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE);
      if (v & ~allowed) return false;
      let nv = Number(v);
      if (c.cr0 & CR0_PG && ((nv ^ c.efer) & EFER_LME)) return false;
      nv = (nv & ~EFER_LMA) | (c.efer & EFER_LMA);
      if ((nv ^ c.efer) & EFER_NXE) c.flushTlb(true);
      c.efer = nv;
      c.updateMode();
      return true;
    }
    case MSR_STAR: m.star = v; return true;
    case MSR_LSTAR: { const a = addr(); if (a === undefined) return false; m.lstar = a; return true; }
    case MSR_CSTAR: { const a = addr(); if (a === undefined) return false; m.cstar = a; return true; }
    case MSR_SFMASK: m.sfmask = Number(v & 0xffffffffn); return true;
    case MSR_FS_BASE: { const a = addr(); if (a === undefined) return false; c.segBase[FS] = a; return true; }
    case MSR_GS_BASE: { const a = addr(); if (a === undefined) return false; c.segBase[GS] = a; return true; }
    case MSR_KERNEL_GS_BASE: { const a = addr(); if (a === undefined) return false; m.kernelGsBase = a; return true; }
    case MSR_TSC_AUX: m.tscAux = Number(v & 0xffffffffn); return true;
    default: return c.platformMsrs?.writeMsr(index, v) ?? false;
  }
}

def('rdmsr', (c) => {
  needCpl0(c);
  const v = readMsr(c, c.lo[1]! >>> 0);
  if (v === undefined) return c.gp(0);
  c.setReg(0, 4, Number(v & 0xffffffffn), 0);
  c.setReg(2, 4, Number((v >> 32n) & 0xffffffffn), 0);
});
def('wrmsr', (c) => {
  needCpl0(c);
  if (!writeMsr(c, c.lo[1]! >>> 0, u64Of(c))) c.gp(0);
});
def('rdtsc', (c) => {
  if (c.cr4 & CR4_TSD && c.cpl !== 0 && c.cr0 & CR0_PE) c.gp(0);
  const t = BigInt.asUintN(64, c.readTsc());
  c.setReg(0, 4, Number(t & 0xffffffffn), 0); c.setReg(2, 4, Number(t >> 32n), 0);
});
def('rdtscp', (c) => {
  if (c.cr4 & CR4_TSD && c.cpl !== 0 && c.cr0 & CR0_PE) c.gp(0);
  const t = BigInt.asUintN(64, c.readTsc());
  c.setReg(0, 4, Number(t & 0xffffffffn), 0); c.setReg(2, 4, Number(t >> 32n), 0); c.setReg(1, 4, c.msr.tscAux, 0);
});
/**
 * CLAC/STAC exist only where CPUID reports SMAP (leaf 7 EBX bit 20) — the interpreter's own CPUID does not, so
 * they raise #UD there; a CPU given an external CPUID (stepExternal completing KVM's failed emulation) runs them.
 */
function smapFlagOp(c: Cpu, set: boolean): void {
  const builtIn = cpuid(c.cpuidConfig, 7, 0);
  const ebx = (c.cpuidFilter ? c.cpuidFilter(7, 0, builtIn) : builtIn)[1];
  if (!(ebx & (1 << 20)) || !(c.cr0 & CR0_PE) || c.flags & F_VM || c.cpl !== 0) c.ud();
  if (set) c.flags |= F_AC; else c.flags &= ~F_AC;
}
def('clac', (c) => smapFlagOp(c, false));
def('stac', (c) => smapFlagOp(c, true));
def('cpuid', (c) => {
  const leaf = c.lo[0]! >>> 0, subleaf = c.lo[1]! >>> 0;
  const builtIn = cpuid(c.cpuidConfig, leaf, subleaf);
  const [a, b, cx, d] = c.cpuidFilter ? c.cpuidFilter(leaf, subleaf, builtIn) : builtIn;
  c.setReg(0, 4, a, 0); c.setReg(3, 4, b, 0); c.setReg(1, 4, cx, 0); c.setReg(2, 4, d, 0);
});

// ---------------------------------------------------------------- fast system calls

def('syscall', (c) => {
  if (!c.longMode || !(c.efer & EFER_SCE)) c.ud();
  const star = c.msr.star;
  const sel = Number((star >> 32n) & 0xfffcn);
  const next = c.nextRip;
  if (c.mode === 64) {
    c.setReg(1, 8, next >>> 0 | 0, Math.floor(next / 4294967296) | 0);
  } else c.setReg(1, 8, next | 0, 0);
  const fl = c.getFlags() & ~F_RF;
  c.setReg(11, 8, fl, 0);
  setSegCache(c, CS, sel, 0, 0xffffffff, 0x9b | SA_L | SA_G);
  setSegCache(c, SS, sel + 8, 0, 0xffffffff, 0x93 | SA_DB | SA_G);
  c.setCpl(0);
  c.setFlags(fl & ~c.msr.sfmask & ~F_RF);
  c.updateMode();
  c.nextRip = c.mode === 64 ? c.msr.lstar : c.msr.cstar;
});
def('sysret', (c, i) => {
  if (!c.longMode || !(c.efer & EFER_SCE)) c.ud();
  needCpl0(c);
  const base = Number((c.msr.star >> 48n) & 0xffffn);
  let target: number;
  if (i.rex & 8) {
    target = c.hi[1]! * 4294967296 + (c.lo[1]! >>> 0);
    if (target < -0x800000000000 || target >= 0x800000000000) c.gp(0);
    setSegCache(c, CS, (base + 16) | 3, 0, 0xffffffff, 0xfb | SA_L | SA_G);
  } else {
    target = c.lo[1]! >>> 0;
    setSegCache(c, CS, base | 3, 0, 0xffffffff, 0xfb | SA_DB | SA_G);
  }
  setSegCache(c, SS, (base + 8) | 3, 0, 0xffffffff, 0xf3 | SA_DB | SA_G);
  c.setFlags((c.lo[11]! & 0x3c7fd7) | 2);
  c.setCpl(3);
  c.updateMode();
  c.nextRip = target;
});
def('sysenter', (c) => {
  if (!(c.cr0 & CR0_PE) || (c.msr.sysenterCs & 0xfffc) === 0) c.gp(0);
  const cs = c.msr.sysenterCs & 0xfffc;
  const long = c.longMode;
  setSegCache(c, CS, cs, 0, 0xffffffff, 0x9b | SA_G | (long ? SA_L : SA_DB));
  setSegCache(c, SS, cs + 8, 0, 0xffffffff, 0x93 | SA_DB | SA_G);
  c.flags &= ~(F_VM | F_IF | F_RF);
  c.setCpl(0);
  c.updateMode();
  if (long) setRsp(c, c.msr.sysenterEsp); else { c.lo[4] = c.msr.sysenterEsp | 0; }
  c.nextRip = long ? c.msr.sysenterEip : c.msr.sysenterEip >>> 0;
});
def('sysexit', (c, i) => {
  if (!(c.cr0 & CR0_PE) || (c.msr.sysenterCs & 0xfffc) === 0) c.gp(0);
  needCpl0(c);
  const cs = c.msr.sysenterCs & 0xfffc;
  const to64 = (i.rex & 8) !== 0;
  setSegCache(c, CS, (cs + (to64 ? 32 : 16)) | 3, 0, 0xffffffff, 0xfb | SA_G | (to64 ? SA_L : SA_DB));
  setSegCache(c, SS, (cs + (to64 ? 40 : 24)) | 3, 0, 0xffffffff, 0xf3 | SA_DB | SA_G);
  c.setCpl(3);
  c.updateMode();
  if (to64) { c.lo[4] = c.lo[1]!; c.hi[4] = c.hi[1]!; c.nextRip = c.hi[2]! * 4294967296 + (c.lo[2]! >>> 0); } else { c.lo[4] = c.lo[1]!; c.nextRip = c.lo[2]! >>> 0; }
  void rsp;
});

// ---------------------------------------------------------------- interrupt flag, halt, caches, TLB

function iopl(c: Cpu): number { return (c.flags & F_IOPL) >> 12; }
def('cli', (c) => { if (c.cr0 & CR0_PE && c.cpl > iopl(c)) c.gp(0); c.flags &= ~F_IF; });
def('sti', (c) => {
  if (c.cr0 & CR0_PE && c.cpl > iopl(c)) c.gp(0);
  if (!(c.flags & F_IF)) { c.flags |= F_IF; c.shadow = true; }
});
def('hlt', (c) => { needCpl0(c); c.halted = true; });
def('invlpg', (c, i) => { needCpl0(c); c.invlpg(c.linear(i, 1)); });
def(['wbinvd', 'invd'], (c) => needCpl0(c));
def(['clflush', 'clflushopt'], (c, i) => { c.tlbLookup(c.linear(i, 1), 0); }); // translated like a read: #PF on a non-present page (no access, so no MMIO side effect)
def('ud2', (c) => c.ud());
def(['ud0', 'ud1'], (c) => c.ud());

void ES; void SA_DB; void setRsp;

// ---------------------------------------------------------------- legacy odds and ends

def('rdpmc', (c) => {
  if (c.cpl > 0 && c.cr0 & CR0_PE && !(c.cr4 & 0x100)) c.gp(0); // CR4.PCE
  if ((c.lo[1]! >>> 0) > 1) c.gp(0); // two general-purpose counters, never counting
  c.setReg(0, 4, 0, 0); c.setReg(2, 4, 0, 0);
});
def('arpl', (c, i) => {
  if (!(c.cr0 & CR0_PE)) c.ud();
  const d = readE(c, i, 2), s = c.getReg(i.reg, 2);
  const adjust = (d & 3) < (s & 3);
  if (adjust) writeE(c, i, 2, (d & ~3) | (s & 3), 0, true);
  c.lf.aux = (arithFlags(c.lf) & ~0x40) | (adjust ? 0x40 : 0); c.lf.op = LF_FLAGS;
});
def('bound', (c, i) => {
  const os = i.os; const lin = c.linear(i, os * 2);
  const sx = (v: number): number => (os === 2 ? (v << 16) >> 16 : v | 0);
  const lower = sx(c.readMem(lin, os)), upper = sx(c.readMem(lin + os, os));
  const v = sx(c.getReg(i.reg, os));
  if (v < lower || v > upper) c.raise(5); // #BR
});
