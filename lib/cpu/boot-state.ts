/**
 * Load the accelerator-neutral boot state (lib/machine/boot BootCpuState: registers, hidden segment parts, control
 * registers, boot MSRs) into an interpreter CPU, the way the KVM accelerator turns it into kvm_regs/kvm_sregs.
 */
import type { BootCpuState, SegmentState as BootSegment } from '../machine/boot/cpu-state.js';
import type { Cpu } from './cpu.js';
import { exportState, importState, type SegmentState } from './state.js';

function seg(s: BootSegment): SegmentState {
  return {
    base: BigInt(s.base), limit: s.limit >>> 0, selector: s.selector, type: s.type, present: s.present ? 1 : 0, dpl: s.dpl,
    db: s.db ? 1 : 0, s: s.s ? 1 : 0, l: s.l ? 1 : 0, g: s.g ? 1 : 0, avl: s.avl ? 1 : 0, unusable: s.unusable ? 1 : 0,
  };
}

export function importBootState(cpu: Cpu, boot: BootCpuState): void {
  const st = exportState(cpu);
  const r = boot.regs;
  const b = (v: number): bigint => BigInt.asUintN(64, BigInt(v));
  st.regs = {
    rax: b(r.rax), rbx: b(r.rbx), rcx: b(r.rcx), rdx: b(r.rdx), rsi: b(r.rsi), rdi: b(r.rdi), rsp: b(r.rsp), rbp: b(r.rbp),
    r8: b(r.r8), r9: b(r.r9), r10: b(r.r10), r11: b(r.r11), r12: b(r.r12), r13: b(r.r13), r14: b(r.r14), r15: b(r.r15),
    rip: b(r.rip), rflags: b(r.rflags),
  };
  const s = boot.sregs;
  st.sregs = {
    cs: seg(s.cs), ds: seg(s.ds), es: seg(s.es), fs: seg(s.fs), gs: seg(s.gs), ss: seg(s.ss), tr: seg(s.tr), ldt: seg(s.ldt),
    gdt: { base: b(s.gdt.base), limit: s.gdt.limit }, idt: { base: b(s.idt.base), limit: s.idt.limit },
    cr0: b(s.cr0), cr2: b(s.cr2), cr3: b(s.cr3), cr4: b(s.cr4), cr8: 0n, efer: b(s.efer), apicBase: b(s.apicBase),
  };
  for (const m of boot.msrs) st.msrs.set(m.index, m.value);
  st.halted = false;
  importState(cpu, st);
}
