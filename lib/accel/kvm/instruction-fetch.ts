/**
 * The bytes at CS:RIP for registers the caller already read (lib/kvm instructionAt reads them itself: two more
 * ioctls, ~30 µs on kvm_pvm, on every completed emulation). Page tables are walked in guest RAM, with KVM_TRANSLATE
 * as the fallback; every address is checked against guest RAM.
 */
import { cpuMode, linearRip, walkPageTables, type CpuMode, type KvmVcpu, type Sregs } from '../../kvm/index.js';
import type { GuestMemory } from '../../machine/guest-memory.js';

export interface FetchedInstruction {
  mode: CpuMode;
  linear: bigint;
  /** Up to 15 bytes from RIP, fewer when a page is unmapped or RAM ends. */
  bytes: Uint8Array;
}

export function fetchInstruction(vcpu: KvmVcpu, memory: GuestMemory, rip: bigint, sregs: Sregs, maxBytes = 15): FetchedInstruction {
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
  let n = 0;
  // One page at a time: at most two (an instruction is at most 15 bytes).
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
    out.set(memory.view(phys, have), n);
    n += have;
    if (have < want) break;
  }
  return { mode: cpuMode(sregs), linear, bytes: out.subarray(0, n) };
}
