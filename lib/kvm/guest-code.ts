/**
 * Finding the guest's current instruction: RIP -> linear (segmentation) -> physical (paging) -> bytes in
 * guest RAM. Used to report KVM_EXIT_INTERNAL_ERROR (e.g. an instruction KVM's emulator lacks) usefully.
 */
import type { GuestMemory } from '../machine/guest-memory.js';
import { Cr0, Cr4, Efer } from './constants.js';
import type { Sregs } from './structs.js';
import type { KvmVcpu } from './vcpu.js';

export type CpuMode = 'real' | 'protected' | 'long' | 'compat';

export function cpuMode(sregs: Sregs): CpuMode {
  if (!(sregs.cr0 & BigInt(Cr0.PE))) return 'real';
  if (sregs.efer & BigInt(Efer.LMA)) return sregs.cs.l ? 'long' : 'compat';
  return 'protected';
}

/** Linear address of CS:RIP. */
export function linearRip(rip: bigint, sregs: Sregs): bigint {
  const mode = cpuMode(sregs);
  if (mode === 'long') return rip;
  if (mode === 'real') return (sregs.cs.base + (rip & 0xffffn)) & 0xfffffn;
  return (sregs.cs.base + rip) & 0xffffffffn;
}

const PAGE_MASK = 0x000f_ffff_ffff_f000n;

/**
 * Walks the guest page tables in RAM (4-level, PAE or 2-level, by CR4/EFER) for `linear`. Returns the physical
 * address, or undefined when a table entry is not present or a table lies outside RAM. No permission checks.
 */
export function walkPageTables(memory: GuestMemory, sregs: Sregs, linear: bigint): number | undefined {
  if (!(sregs.cr0 & BigInt(Cr0.PG))) return Number(linear & 0xffffffffn);
  const read64 = (addr: bigint): bigint | undefined => {
    const a = Number(addr);
    if (!memory.contains(a, 8)) return undefined;
    const b = memory.view(a, 8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  };
  const pae = (sregs.cr4 & BigInt(Cr4.PAE)) !== 0n;
  if (!pae) {
    const pdeAddr = (sregs.cr3 & 0xfffff000n) + ((linear >> 22n) & 0x3ffn) * 4n;
    const pde = read64(pdeAddr);
    if (pde === undefined || !(pde & 1n)) return undefined;
    const pde32 = pde & 0xffffffffn;
    if (pde32 & 0x80n && sregs.cr4 & BigInt(Cr4.PSE)) return Number((pde32 & 0xffc00000n) | (linear & 0x3fffffn));
    const pte = read64((pde32 & 0xfffff000n) + ((linear >> 12n) & 0x3ffn) * 4n);
    if (pte === undefined || !(pte & 1n)) return undefined;
    return Number(((pte & 0xffffffffn) & 0xfffff000n) | (linear & 0xfffn));
  }
  const long = (sregs.efer & BigInt(Efer.LMA)) !== 0n;
  // Levels from the top: shift of the index, and whether a large page may end the walk there.
  const levels: [number, boolean][] = long ? [[39, false], [30, true], [21, true], [12, false]] : [[30, false], [21, true], [12, false]];
  let table = long ? sregs.cr3 & PAGE_MASK : sregs.cr3 & 0xffffffe0n;
  for (let i = 0; i < levels.length; i++) {
    const [shift, large] = levels[i]!;
    const bits = !long && i === 0 ? 0x3n : 0x1ffn;
    const entry = read64(table + ((linear >> BigInt(shift)) & bits) * 8n);
    if (entry === undefined || !(entry & 1n)) return undefined;
    const isLeaf = i === levels.length - 1 || (large && (entry & 0x80n) !== 0n);
    if (isLeaf) {
      const pageMask = (1n << BigInt(shift)) - 1n;
      return Number((entry & PAGE_MASK & ~pageMask) | (linear & pageMask));
    }
    table = entry & PAGE_MASK;
  }
  return undefined;
}

export interface InstructionAt {
  mode: CpuMode;
  rip: bigint;
  linear: bigint;
  /** Physical address of the first byte, when mapped. */
  physical: number | undefined;
  /** Up to 15 bytes from RIP, stopping early at an unmapped page or the end of RAM. */
  bytes: Uint8Array;
}

/** The bytes at the vCPU's CS:RIP (page tables walked in TS, falling back to KVM_TRANSLATE). */
export function instructionAt(vcpu: KvmVcpu, memory: GuestMemory, maxBytes = 15): InstructionAt {
  return instructionAtState(vcpu, memory, vcpu.getRegs().rip, vcpu.getSregs(), maxBytes);
}

/**
 * instructionAt for registers the caller already read (completing a failed emulation reads them anyway; reading
 * them again costs two ioctls, ~30 µs on kvm_pvm). One page at a time: an instruction spans at most two. Every
 * address is checked against guest RAM.
 */
export function instructionAtState(vcpu: KvmVcpu, memory: GuestMemory, rip: bigint, sregs: Sregs, maxBytes = 15): InstructionAt {
  const linear = linearRip(rip, sregs);
  const toPhysical = (lin: bigint): number | undefined => {
    const walked = walkPageTables(memory, sregs, lin);
    if (walked !== undefined) return walked;
    try {
      const t = vcpu.translate(lin);
      return t.valid ? Number(t.physicalAddress) : undefined;
    } catch {
      return undefined;
    }
  };
  const out = new Uint8Array(maxBytes);
  let physical: number | undefined;
  let n = 0;
  while (n < maxBytes) {
    const lin = linear + BigInt(n);
    const pagePhys = toPhysical(lin & ~0xfffn);
    if (pagePhys === undefined) break;
    const offset = Number(lin & 0xfffn);
    const want = Math.min(maxBytes - n, 4096 - offset);
    const phys = pagePhys + offset;
    let have = want;
    while (have > 0 && !memory.contains(phys, have)) have--; // RAM may end inside the range
    if (have === 0) break;
    if (n === 0) physical = phys;
    out.set(memory.view(phys, have), n);
    n += have;
    if (have < want) break;
  }
  return { mode: cpuMode(sregs), rip, linear, physical, bytes: out.subarray(0, n) };
}
