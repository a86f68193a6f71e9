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
  let page = -1n;
  let pagePhys: number | undefined;
  for (; n < maxBytes; n++) {
    const lin = linear + BigInt(n);
    if (lin >> 12n !== page) {
      page = lin >> 12n;
      pagePhys = toPhysical(page << 12n);
    }
    if (pagePhys === undefined) break;
    const phys = pagePhys + Number(lin & 0xfffn);
    if (!memory.contains(phys, 1)) break;
    out[n] = memory.view(phys, 1)[0]!;
  }
  return { mode: cpuMode(sregs), linear, bytes: out.subarray(0, n) };
}
