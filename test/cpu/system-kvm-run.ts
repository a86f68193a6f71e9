/**
 * Runs a system-mode guest (system-guests.ts) from the same initial state on the interpreter and on a KVM vCPU
 * and captures one comparable final state: GPRs, RIP, RFLAGS, control registers, EFER, selectors and all of RAM.
 */
import { Cpu } from '../../lib/cpu/cpu.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { Kvm, type KvmVcpu, type Regs } from '../../lib/kvm/index.js';
import { assemble, identityMap, reg64 } from './harness.js';
import { ORG } from './system-guests.js';

/** How system.test.ts builds the machine: realModeCpu (8 MiB, no page tables) or longCpu (16 MiB, identity map). */
export interface GuestSetup { memSize: number; identityMap: boolean }
export const REAL_SETUP: GuestSetup = { memSize: 8 << 20, identityMap: false };
export const LONG_SETUP: GuestSetup = { memSize: 16 << 20, identityMap: true };

export interface FinalState {
  /** Why the last run stopped: 'hlt', 'shutdown', or another KVM exit / interpreter stop reason. */
  end: string;
  gprs: bigint[];
  rip: bigint;
  rflags: bigint;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; efer: bigint;
  /** ES, CS, SS, DS, FS, GS, TR. */
  selectors: number[];
  ram: Uint8Array;
}

const GPR_NAMES = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;

function buildRam(code: Uint8Array, setup: GuestSetup, mem: GuestMemory): void {
  if (setup.identityMap) identityMap(mem);
  mem.write(ORG, code);
}

/**
 * `interrupts` are external vectors raised one per HLT stop (the interpreter's CpuInterruptSource; KVM_INTERRUPT on
 * KVM), each followed by another run to the next HLT — the way system.test.ts drives its interrupt guests.
 */
export function runOnInterpreter(source: string, setup: GuestSetup, interrupts: readonly number[] = []): FinalState {
  const mem = GuestMemory.ofSize(setup.memSize);
  buildRam(assemble(source, 16, ORG), setup, mem);
  const cpu = new Cpu({ memory: mem });
  cpu.segSel[1] = 0; cpu.segBase[1] = 0; cpu.rip = ORG;
  let pending: number | undefined;
  cpu.interrupts = { hasInterrupt: () => pending !== undefined, acknowledge: () => { const v = pending!; pending = undefined; return v; } };
  let end = cpu.run({ maxInstructions: 100_000 }).reason as string;
  for (const v of interrupts) {
    if (end !== 'hlt') break;
    pending = v;
    end = cpu.run({ maxInstructions: 100_000 }).reason as string;
  }
  return {
    end,
    gprs: GPR_NAMES.map((_, i) => reg64(cpu, i)),
    rip: BigInt(cpu.rip),
    rflags: BigInt(cpu.getFlags() >>> 0),
    cr0: BigInt(cpu.cr0 >>> 0), cr2: BigInt(cpu.cr2), cr3: BigInt(cpu.cr3), cr4: BigInt(cpu.cr4 >>> 0), efer: BigInt(cpu.efer >>> 0),
    selectors: [0, 1, 2, 3, 4, 5, 7].map((i) => cpu.segSel[i]!), // segSel[7] is TR
    ram: mem.view(0, setup.memSize).slice(),
  };
}

/** The interpreter's register state at the guest's first instruction (e.g. RDX holds the reset CPU signature). */
function interpreterStartRegs(): Regs {
  const cpu = new Cpu({ memory: GuestMemory.ofSize(0x1000) });
  const r: Record<string, bigint> = { rip: BigInt(ORG), rflags: BigInt(cpu.getFlags() >>> 0) };
  GPR_NAMES.forEach((n, i) => { r[n] = reg64(cpu, i); });
  return r as unknown as Regs;
}

/**
 * Runs to the next exit; an emulation failure at INT3 (kvm_pvm's in-kernel emulator lacks it at CPL0, HOST-KVM.md) is
 * completed the way the instruction defines it — RIP past the 0xCC, #BP injected as a trap — and the run resumed.
 * Only for guests whose code sits at linear = physical addresses (all of these: CS base 0, identity paging).
 */
function completeInt3(vcpu: KvmVcpu, mem: GuestMemory): string {
  for (;;) {
    const exit = vcpu.runSync();
    if (exit.reason !== 'internal-error') return exit.reason;
    const regs = vcpu.getRegs();
    if (mem.readU8(Number(regs.rip)) !== 0xcc) return exit.reason;
    vcpu.setRegs({ ...regs, rip: regs.rip + 1n });
    const ev = vcpu.getVcpuEvents();
    vcpu.setVcpuEvents({ ...ev, flags: 0, exception: { injected: 1, nr: 3, hasErrorCode: 0, pending: 0, errorCode: 0 } });
  }
}

/** The same guest on a fresh KVM VM (userspace interrupt controller: KVM_INTERRUPT at each HLT stop). */
export function runOnKvm(source: string, setup: GuestSetup, interrupts: readonly number[] = []): FinalState {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  const ram = kvm.allocateRam(setup.memSize);
  let vcpu: KvmVcpu | undefined;
  try {
    vm.setTssAddr(0xfffbd000);
    vm.setMemoryRegion({ slot: 0, guestAddress: 0, ram });
    buildRam(assemble(source, 16, ORG), setup, vm.guestMemory());
    vcpu = vm.createVcpu(0);
    vcpu.setCpuid(kvm.supportedCpuid()); // long mode, NX and SYSCALL need the CPUID bits
    const s = vcpu.getSregs();
    for (const name of ['cs', 'ds', 'es', 'fs', 'gs', 'ss'] as const) s[name] = { ...s[name], base: 0n, selector: 0, limit: 0xffff };
    s.cr0 = 0x60000010n; // the interpreter's reset CR0 (CD | NW | ET)
    vcpu.setSregs(s);
    vcpu.setRegs(interpreterStartRegs());
    const run = (): string => completeInt3(vcpu!, vm.guestMemory());
    let end = run();
    for (const v of interrupts) {
      if (end !== 'hlt') break;
      vcpu.interrupt(v);
      end = run();
    }
    const r = vcpu.getRegs() as unknown as Record<string, bigint>;
    const f = vcpu.getSregs();
    return {
      end,
      gprs: GPR_NAMES.map((n) => r[n]!),
      rip: r['rip']!,
      rflags: r['rflags']!,
      cr0: f.cr0, cr2: f.cr2, cr3: f.cr3, cr4: f.cr4, efer: f.efer,
      selectors: [f.es, f.cs, f.ss, f.ds, f.fs, f.gs, f.tr].map((x) => x.selector),
      ram: ram.bytes.slice(0, setup.memSize),
    };
  } finally {
    vcpu?.close();
    vm.close(); ram.close(); kvm.close();
  }
}
