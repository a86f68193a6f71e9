/** Running loader output on the real /dev/kvm in tests: BootCpuState → KVM registers, a one-slot VM. */
import { Kvm, probeKvm, type GuestRam, type KvmVcpu, type KvmVm, type Segment, type Sregs } from '../../lib/kvm/index.js';
import type { BootCpuState, SegmentState } from '../../lib/machine/boot/cpu-state.js';
import type { GuestMemory } from '../../lib/machine/guest-memory.js';
import { KVM_TSS_ADDR } from '../../lib/machine/layout.js';

export const probe = probeKvm();

function kvmSegment(s: SegmentState): Segment {
  return {
    base: BigInt(s.base), limit: s.limit, selector: s.selector, type: s.type, present: Number(s.present), dpl: s.dpl,
    db: Number(s.db), s: Number(s.s), l: Number(s.l), g: Number(s.g), avl: Number(s.avl), unusable: Number(s.unusable),
  };
}

/** What the KVM accelerator does with a BootCpuState (kept here so this test needs nothing but lib/kvm). */
export function applyBootState(vcpu: KvmVcpu, st: BootCpuState): void {
  const cur = vcpu.getSregs();
  const s = st.sregs;
  const sregs: Sregs = {
    ...cur,
    cs: kvmSegment(s.cs), ds: kvmSegment(s.ds), es: kvmSegment(s.es), fs: kvmSegment(s.fs), gs: kvmSegment(s.gs),
    ss: kvmSegment(s.ss), tr: kvmSegment(s.tr), ldt: kvmSegment(s.ldt),
    gdt: { base: BigInt(s.gdt.base), limit: s.gdt.limit }, idt: { base: BigInt(s.idt.base), limit: s.idt.limit },
    cr0: BigInt(s.cr0), cr2: BigInt(s.cr2), cr3: BigInt(s.cr3), cr4: BigInt(s.cr4), efer: BigInt(s.efer),
    apicBase: BigInt(s.apicBase),
  };
  vcpu.setSregs(sregs);
  const r = st.regs;
  vcpu.setRegs({
    rax: BigInt(r.rax), rbx: BigInt(r.rbx), rcx: BigInt(r.rcx), rdx: BigInt(r.rdx), rsi: BigInt(r.rsi), rdi: BigInt(r.rdi),
    rsp: BigInt(r.rsp), rbp: BigInt(r.rbp), r8: BigInt(r.r8), r9: BigInt(r.r9), r10: BigInt(r.r10), r11: BigInt(r.r11),
    r12: BigInt(r.r12), r13: BigInt(r.r13), r14: BigInt(r.r14), r15: BigInt(r.r15), rip: BigInt(r.rip), rflags: BigInt(r.rflags),
  });
  vcpu.setMsrs(st.msrs.map((m) => ({ index: m.index, value: m.value })));
}

export interface Machine { kvm: Kvm; vm: KvmVm; ram: GuestRam; mem: GuestMemory; vcpu: KvmVcpu }

/** One RAM slot at 0 and vCPU 0 with KVM's supported CPUID; `irqchip` adds the in-kernel PIC/IOAPIC/LAPIC. */
export function createMachine(memoryBytes: number, opts: { irqchip?: boolean } = {}): Machine {
  const kvm = Kvm.open();
  const vm = kvm.createVm();
  vm.setTssAddr(KVM_TSS_ADDR);
  if (opts.irqchip) vm.createIrqchip();
  const ram = kvm.allocateRam(memoryBytes);
  vm.setMemoryRegion({ slot: 0, guestAddress: 0, ram, logDirty: false });
  const vcpu = vm.createVcpu(0);
  vcpu.setCpuid(kvm.supportedCpuid());
  return { kvm, vm, ram, mem: vm.guestMemory(), vcpu };
}

export function closeMachine(m: Machine): void {
  m.vcpu.close();
  m.vm.close();
  m.ram.close();
  m.kvm.close();
}
