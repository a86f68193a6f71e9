/**
 * Guest setup for real-/dev/kvm tests and benches: VM setup in each CPU mode (segment state, GDT,
 * identity page tables), and a recording PIO/MMIO handler.
 */
import { Kvm, probeKvm, type GuestRam, type KvmVcpu, type KvmVm, type Segment, type Sregs } from '../../lib/kvm/index.js';
import { Cr0, Cr4, Efer } from '../../lib/kvm/index.js';

export const probe = probeKvm();
if (!probe.usable) console.warn(`[kvm tests skipped] ${probe.reason}`);


export interface TestVm {
  kvm: Kvm;
  vm: KvmVm;
  ram: GuestRam;
  /** A vCPU with KVM's supported CPUID installed (long mode needs CPUID.LM). */
  createVcpu(id: number): KvmVcpu;
  close(): void;
}

/** A VM with one RAM slot [0, ramSize) and optionally the in-kernel irqchip. */
export function createTestVm(opts: { ramSize?: number; irqchip?: boolean; logDirty?: boolean } = {}): TestVm {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  vm.setTssAddr(0xfffbd000);
  if (opts.irqchip) vm.createIrqchip();
  const ram = kvm.allocateRam(opts.ramSize ?? 0x200000);
  vm.setMemoryRegion({ slot: 0, guestAddress: 0, ram, logDirty: opts.logDirty ?? false });
  const cpuid = kvm.supportedCpuid();
  return {
    kvm, vm, ram,
    createVcpu(id: number): KvmVcpu {
      const vcpu = vm.createVcpu(id);
      vcpu.setCpuid(cpuid);
      return vcpu;
    },
    close() { vm.close(); ram.close(); kvm.close(); },
  };
}

function seg(selector: number, type: number, extra: Partial<Segment> = {}): Segment {
  return { base: 0n, limit: 0xffffffff, selector, type, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0, ...extra };
}

/** Real mode, CS:IP = 0:entry. */
export function enterRealMode(vcpu: KvmVcpu, entry: number): void {
  const s = vcpu.getSregs();
  for (const name of ['cs', 'ds', 'es', 'fs', 'gs', 'ss'] as const) {
    s[name] = { ...s[name], base: 0n, selector: 0, limit: 0xffff };
  }
  vcpu.setSregs(s);
  vcpu.setRegs({ ...zeroRegs(), rip: BigInt(entry), rflags: 2n, rsp: 0x7000n });
}

export function zeroRegs(): { rax: bigint; rbx: bigint; rcx: bigint; rdx: bigint; rsi: bigint; rdi: bigint; rsp: bigint; rbp: bigint; r8: bigint; r9: bigint; r10: bigint; r11: bigint; r12: bigint; r13: bigint; r14: bigint; r15: bigint; rip: bigint; rflags: bigint } {
  return { rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n, r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n, rip: 0n, rflags: 2n };
}

const GDT = 0x500;
const PML4 = 0x9000;

/** Writes a flat GDT at 0x500: 0x08 code32, 0x10 data, 0x18 code64, 0x23 user data, 0x2b user code64. */
function writeGdt(ram: GuestRam): void {
  const v = new DataView(ram.buffer);
  const entries = [
    0n,
    0x00cf9a000000ffffn, // 0x08: 32-bit code, DPL0
    0x00cf92000000ffffn, // 0x10: data, DPL0
    0x00af9a000000ffffn, // 0x18: 64-bit code, DPL0
    0x00cff2000000ffffn, // 0x20: data, DPL3
    0x00affa000000ffffn, // 0x28: 64-bit code, DPL3
  ];
  entries.forEach((e, i) => v.setBigUint64(GDT + i * 8, e, true));
}

/** 32-bit flat protected mode (paging off), entry at `entry`, stack at 0x7000. */
export function enterProtectedMode(vcpu: KvmVcpu, ram: GuestRam, entry: number): void {
  writeGdt(ram);
  const s = vcpu.getSregs();
  s.gdt = { base: BigInt(GDT), limit: 6 * 8 - 1 };
  s.cs = seg(0x08, 0xb);
  for (const name of ['ds', 'es', 'fs', 'gs', 'ss'] as const) s[name] = seg(0x10, 0x3);
  s.cr0 = BigInt(Cr0.PE | Cr0.ET);
  vcpu.setSregs(s);
  vcpu.setRegs({ ...zeroRegs(), rip: BigInt(entry), rsp: 0x7000n, rflags: 2n });
}

/**
 * 64-bit long mode with paging: identity map of the first 4 GiB with 2 MiB pages (user-accessible), entry at
 * `entry`. cpl 3 runs the code in user mode (natively on kvm_pvm) with IOPL 3 so `out` is allowed.
 */
export function enterLongMode(vcpu: KvmVcpu, ram: GuestRam, entry: number, cpl: 0 | 3 = 0): void {
  writeGdt(ram);
  const v = new DataView(ram.buffer);
  const PDPT = PML4 + 0x1000;
  const PD = PML4 + 0x2000; // four page directories: 0x b000..0xefff
  const flags = 0x7n; // present, writable, user
  v.setBigUint64(PML4, BigInt(PDPT) | flags, true);
  for (let i = 0; i < 4; i++) v.setBigUint64(PDPT + i * 8, BigInt(PD + i * 0x1000) | flags, true);
  for (let i = 0; i < 4 * 512; i++) v.setBigUint64(PD + i * 8, (BigInt(i) << 21n) | 0x80n | flags, true);
  const s: Sregs = vcpu.getSregs();
  s.gdt = { base: BigInt(GDT), limit: 6 * 8 - 1 };
  const dpl = cpl;
  s.cs = seg(cpl === 3 ? 0x2b : 0x18, 0xb, { l: 1, db: 0, dpl });
  for (const name of ['ds', 'es', 'fs', 'gs', 'ss'] as const) s[name] = seg(cpl === 3 ? 0x23 : 0x10, 0x3, { dpl });
  s.cr3 = BigInt(PML4);
  s.cr4 = BigInt(Cr4.PAE);
  s.cr0 = BigInt((Cr0.PE | Cr0.ET | Cr0.PG | Cr0.WP) >>> 0); // >>> 0: PG is bit 31
  s.efer = BigInt(Efer.LME | Efer.LMA);
  vcpu.setSregs(s);
  vcpu.setRegs({ ...zeroRegs(), rip: BigInt(entry), rsp: 0x80000n, rflags: cpl === 3 ? 0x3002n : 2n });
}

export interface Access { kind: 'read' | 'write'; address: number; size: number; value: number }

/** Records accesses; reads answer from `reads` (address -> value) or 0. */
export class Recorder {
  readonly log: Access[] = [];
  constructor(private readonly reads: Map<number, number> = new Map()) {}
  read(address: number, size: number): number {
    const value = this.reads.get(address) ?? 0;
    this.log.push({ kind: 'read', address, size, value });
    return value;
  }
  write(address: number, size: number, value: number): void {
    this.log.push({ kind: 'write', address, size, value });
  }
  writeBytes(address: number, data: Uint8Array): void {
    let value = 0n;
    data.forEach((b, i) => { value |= BigInt(b) << BigInt(8 * i); });
    this.log.push({ kind: 'write', address, size: data.length, value: Number(value & 0xffffffffn) });
    this.wide.push(value);
  }
  readonly wide: bigint[] = [];
}

export function load(ram: GuestRam, address: number, code: Uint8Array | number[]): void {
  ram.bytes.set(code, address);
}
