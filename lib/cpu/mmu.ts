/**
 * Page walks: none (paging off), 2-level 32-bit (with 4 MiB PSE pages), PAE (3-level) and 4-level long mode.
 * Sets Accessed/Dirty bits, computes the permissions the TLB caches, and raises #PF with CR2 and the error code.
 */
import {
  CR0_WP, CR4_PAE, CR4_PGE, CR4_PSE, EFER_NXE, PF, PFE_I, PFE_P, PFE_RSVD, PFE_U, PFE_W, T_GLOBAL, T_RS, T_RU, T_WS, T_WU, T_XS, T_XU,
} from './constants.js';
import type { Cpu } from './cpu.js';

const ALL = T_RS | T_WS | T_XS | T_RU | T_WU | T_XU;

/** Physical address width reported by CPUID 0x80000008. */
export const PHYS_BITS = 40;

function pageFault(cpu: Cpu, lin: number, access: number, user: boolean, present: boolean, rsvd: boolean): never {
  cpu.cr2 = lin;
  let code = (present ? PFE_P : 0) | (access === 1 ? PFE_W : 0) | (user ? PFE_U : 0) | (rsvd ? PFE_RSVD | PFE_P : 0);
  if (access === 2 && (cpu.efer & EFER_NXE)) code |= PFE_I;
  return cpu.raise(PF, code);
}

/**
 * Walk the page tables for `lin` and install the translation in the TLB, or raise #PF.
 * access: 0 read, 1 write, 2 execute. user: the access is made at CPL3 (not an implicit supervisor access).
 */
export function translate(cpu: Cpu, lin: number, access: number, user: boolean): void {
  const vpn = Math.floor(lin / 4096);
  if (!cpu.paging) {
    cpu.tlbFill(vpn, vpn, ALL);
    return;
  }
  const mem = cpu.memory;
  const wp = (cpu.cr0 & CR0_WP) !== 0;
  const nxe = (cpu.efer & EFER_NXE) !== 0;
  const pge = (cpu.cr4 & CR4_PGE) !== 0;
  const read32 = (a: number): number => {
    if (!mem.contains(a, 4)) return pageFault(cpu, lin, access, user, false, true);
    return mem.readU32(a);
  };
  let rw = true, us = true, nx = false;

  if (!(cpu.cr4 & CR4_PAE)) {
    // 2-level 32-bit paging.
    const l = lin >>> 0;
    const pdeAddr = (cpu.cr3 & 0xfffff000) + ((l >>> 22) << 2);
    const pde = read32(pdeAddr);
    if (!(pde & 1)) return pageFault(cpu, lin, access, user, false, false);
    rw = (pde & 2) !== 0; us = (pde & 4) !== 0;
    if (pde & 0x80 && cpu.cr4 & CR4_PSE) {
      checkPerms(cpu, lin, access, user, rw, us, false, wp);
      const dirty = access === 1 || (pde & 0x40) !== 0;
      const upd = pde | 0x20 | (access === 1 ? 0x40 : 0);
      if (upd !== pde) mem.writeU32(pdeAddr, upd >>> 0);
      // PSE-36: bits 13-20 give physical address bits 32-39.
      const base = ((pde & 0xffc00000) >>> 0) + ((pde >>> 13) & 0xff) * 4294967296;
      const ppn = base / 4096 + ((l >>> 12) & 0x3ff);
      cpu.tlbFill(vpn, ppn, perms(rw, us, false, wp, dirty) | (pge && pde & 0x100 ? T_GLOBAL : 0));
      return;
    }
    if (!(pde & 0x20)) mem.writeU32(pdeAddr, (pde | 0x20) >>> 0);
    const pteAddr = ((pde & 0xfffff000) >>> 0) + (((l >>> 12) & 0x3ff) << 2);
    const pte = read32(pteAddr);
    if (!(pte & 1)) return pageFault(cpu, lin, access, user, false, false);
    rw = rw && (pte & 2) !== 0; us = us && (pte & 4) !== 0;
    checkPerms(cpu, lin, access, user, rw, us, false, wp);
    const upd = pte | 0x20 | (access === 1 ? 0x40 : 0);
    if (upd !== pte) mem.writeU32(pteAddr, upd >>> 0);
    const dirty = (upd & 0x40) !== 0;
    cpu.tlbFill(vpn, (pte >>> 12), perms(rw, us, false, wp, dirty) | (pge && pte & 0x100 ? T_GLOBAL : 0));
    return;
  }

  // PAE or 4-level: 64-bit entries.
  const long = cpu.longMode;
  let tableBase: number;
  let levels: number;
  if (long) { tableBase = cr3Base(cpu.cr3); levels = 4; } else {
    // PAE: CR3 points at 4 PDPTEs (32-byte aligned); read on each walk (real CPUs cache them at CR3 load).
    const l = lin >>> 0;
    const pdpteAddr = (cpu.cr3 & 0xffffffe0) + ((l >>> 30) << 3);
    const lo = read32(pdpteAddr), hi = read32(pdpteAddr + 4);
    if (!(lo & 1)) return pageFault(cpu, lin, access, user, false, false);
    tableBase = ((lo & 0xfffff000) >>> 0) + (hi & 0xfffff) * 4294967296;
    levels = 2;
  }
  // Index bits for each level: 4-level 39/30/21/12, PAE 21/12 after the PDPT.
  const l48 = lin < 0 ? lin + 281474976710656 : lin; // 48-bit unsigned view of the canonical address
  for (let level = levels; level >= 1; level--) {
    const shift = 12 + 9 * (level - 1);
    const idx = Math.floor(l48 / 2 ** shift) % 512;
    const eAddr = tableBase + idx * 8;
    const lo = read32(eAddr), hi = read32(eAddr + 4);
    if (!(lo & 1)) return pageFault(cpu, lin, access, user, false, false);
    if (hi & 0x80000000 && !nxe) return pageFault(cpu, lin, access, user, true, true);
    rw = rw && (lo & 2) !== 0; us = us && (lo & 4) !== 0; nx = nx || (nxe && (hi & 0x80000000) !== 0);
    const addr = ((lo & 0xfffff000) >>> 0) + (hi & 0xfffff) * 4294967296;
    const large = level > 1 && (lo & 0x80) !== 0;
    if (large && level === 4) return pageFault(cpu, lin, access, user, true, true);
    if (level === 1 || large) {
      checkPerms(cpu, lin, access, user, rw, us, nx, wp);
      const upd = lo | 0x20 | (access === 1 ? 0x40 : 0);
      if (upd !== lo) mem.writeU32(eAddr, upd >>> 0);
      const dirty = (upd & 0x40) !== 0;
      let ppn: number;
      if (large) {
        const pageBase = (addr - (addr % 2 ** shift)); // bit 12 (PAT) is not an address bit for large pages
        ppn = pageBase / 4096 + (Math.floor(l48 / 4096) % 2 ** (shift - 12));
      } else ppn = addr / 4096;
      cpu.tlbFill(vpn, ppn, perms(rw, us, nx, wp, dirty) | (pge && lo & 0x100 ? T_GLOBAL : 0));
      return;
    }
    if (!(lo & 0x20)) mem.writeU32(eAddr, (lo | 0x20) >>> 0);
    tableBase = addr;
  }
}

function cr3Base(cr3: number): number {
  return cr3 - (cr3 % 4096);
}

function checkPerms(cpu: Cpu, lin: number, access: number, user: boolean, rw: boolean, us: boolean, nx: boolean, wp: boolean): void {
  if (user && !us) pageFault(cpu, lin, access, user, true, false);
  if (access === 1 && !rw && (user || wp)) pageFault(cpu, lin, access, user, true, false);
  if (access === 2 && nx) pageFault(cpu, lin, access, user, true, false);
}

function perms(rw: boolean, us: boolean, nx: boolean, wp: boolean, dirty: boolean): number {
  let p = T_RS;
  if (!nx) p |= T_XS;
  if (dirty && (rw || !wp)) p |= T_WS;
  if (us) {
    p |= T_RU;
    if (!nx) p |= T_XU;
    if (dirty && rw) p |= T_WU;
  }
  return p;
}
