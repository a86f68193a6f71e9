/** BootCpuState (accelerator-neutral) → KVM register files. */
import type { Fpu, KvmVcpu, Regs, Segment, Sregs } from '../../kvm/index.js';
import type { BootCpuState, SegmentState } from '../../machine/boot/cpu-state.js';

function kvmSegment(s: SegmentState): Segment {
  return {
    base: BigInt(s.base), limit: s.limit >>> 0, selector: s.selector, type: s.type, present: Number(s.present), dpl: s.dpl,
    db: Number(s.db), s: Number(s.s), l: Number(s.l), g: Number(s.g), avl: Number(s.avl), unusable: Number(s.unusable),
  };
}

const u64 = (n: number): bigint => BigInt.asUintN(64, BigInt(n));

export function bootRegs(st: BootCpuState): Regs {
  const r = st.regs;
  return {
    rax: u64(r.rax), rbx: u64(r.rbx), rcx: u64(r.rcx), rdx: u64(r.rdx), rsi: u64(r.rsi), rdi: u64(r.rdi),
    rsp: u64(r.rsp), rbp: u64(r.rbp), r8: u64(r.r8), r9: u64(r.r9), r10: u64(r.r10), r11: u64(r.r11),
    r12: u64(r.r12), r13: u64(r.r13), r14: u64(r.r14), r15: u64(r.r15), rip: u64(r.rip), rflags: u64(r.rflags),
  };
}

export function bootSregs(current: Sregs, st: BootCpuState): Sregs {
  const s = st.sregs;
  return {
    ...current,
    cs: kvmSegment(s.cs), ds: kvmSegment(s.ds), es: kvmSegment(s.es), fs: kvmSegment(s.fs), gs: kvmSegment(s.gs),
    ss: kvmSegment(s.ss), tr: kvmSegment(s.tr), ldt: kvmSegment(s.ldt),
    gdt: { base: u64(s.gdt.base), limit: s.gdt.limit }, idt: { base: u64(s.idt.base), limit: s.idt.limit },
    cr0: u64(s.cr0), cr2: u64(s.cr2), cr3: u64(s.cr3), cr4: u64(s.cr4), efer: u64(s.efer), apicBase: u64(s.apicBase),
  };
}

/** x87 and SSE control words as after FNINIT / reset (Linux checks neither, but a test kernel may use the FPU). */
export function bootFpu(current: Fpu): Fpu {
  return { ...current, fcw: 0x37f, mxcsr: 0x1f80 };
}

/** Loads the boot state into a vCPU (registers, system registers, FPU control, boot MSRs). */
export function applyBootState(vcpu: KvmVcpu, st: BootCpuState): void {
  vcpu.setSregs(bootSregs(vcpu.getSregs(), st));
  vcpu.setRegs(bootRegs(st));
  vcpu.setFpu(bootFpu(vcpu.getFpu()));
  if (st.msrs.length > 0) vcpu.setMsrs(st.msrs.map((m) => ({ index: m.index, value: m.value })));
}
