/**
 * The system-mode guests of system.test.ts (system-guests.ts: same sources, same start state, same interrupt
 * sequence) run on a real KVM vCPU and on the interpreter; the final GPRs, RIP, RFLAGS, CR0/CR2/CR3/CR4/EFER,
 * segment selectors and all of guest RAM must agree. A guest that hits a documented limitation of this host's KVM
 * (kvm_pvm, /work/shared/HOST-KVM.md) is detected from its KVM outcome and skipped with the reason printed; on a
 * VT-x/AMD-V host the same guest is compared in full.
 */
import { describe, expect, it } from 'vitest';
import { probeKvm } from '../../lib/kvm/index.js';
import { GUESTS } from './system-guests.js';
import { LONG_SETUP, REAL_SETUP, runOnInterpreter, runOnKvm, type FinalState } from './system-kvm-run.js';

const probe = probeKvm();
if (!probe.usable) console.warn(`[system-kvm skipped] KVM unusable: ${probe.reason}`);

const GPR = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
const SEL = ['es', 'cs', 'ss', 'ds', 'fs', 'gs', 'tr'];
/** Flags the guests leave defined: CF PF AF ZF SF TF IF DF OF, and RF. */
const FLAGS_COMPARED = 0x10fd5n;
const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/**
 * RF in a pushed RFLAGS image. Since the interpreter sets RF for fault-class exceptions (as the CPU does), the only
 * remaining difference is the #BP frame of an INT3 that kvm_pvm's emulator could not run: runOnKvm completes it by
 * injecting #BP through KVM, and that injected trap is pushed with RF=1 where the SDM (and the interpreter) push the
 * current RF (0). Such a RAM byte is the third byte of a pushed flags qword and differs only in bit 0, set by KVM.
 */
function isPushedRfDifference(a: FinalState, k: FinalState, i: number): boolean {
  return i % 8 === 2 && (a.ram[i]! ^ k.ram[i]!) === 1 && (k.ram[i]! & 1) === 1 && (k.ram[i - 2]! & 2) === 2;
}

function compare(a: FinalState, k: FinalState, ignoreGprs: readonly number[] = [], ignoreRip = false): { diffs: string[]; rfBytes: number } {
  const d: string[] = [];
  if (a.end !== k.end) d.push(`end: interpreter ${a.end}, KVM ${k.end}`);
  a.gprs.forEach((v, i) => { if (!ignoreGprs.includes(i) && v !== k.gprs[i]) d.push(`${GPR[i]}: ${hex(v)} vs ${hex(k.gprs[i]!)}`); });
  if (!ignoreRip && a.rip !== k.rip) d.push(`rip: ${hex(a.rip)} vs ${hex(k.rip)}`);
  if ((a.rflags & FLAGS_COMPARED) !== (k.rflags & FLAGS_COMPARED)) d.push(`rflags: ${hex(a.rflags)} vs ${hex(k.rflags)}`);
  for (const c of ['cr0', 'cr2', 'cr3', 'cr4', 'efer'] as const) if (a[c] !== k[c]) d.push(`${c}: ${hex(a[c])} vs ${hex(k[c])}`);
  a.selectors.forEach((v, i) => { if (v !== k.selectors[i]) d.push(`${SEL[i]}: ${hex(v)} vs ${hex(k.selectors[i]!)}`); });
  let rfBytes = 0;
  const ram: string[] = [];
  for (let i = 0; i < a.ram.length; i++) {
    if (a.ram[i] === k.ram[i]) continue;
    if (isPushedRfDifference(a, k, i)) { rfBytes++; continue; }
    ram.push(`[${hex(i)}] ${hex(a.ram[i]!)} vs ${hex(k.ram[i]!)}`);
  }
  if (ram.length) d.push(`ram: ${ram.length} bytes differ: ${ram.slice(0, 16).join(', ')}`);
  return { diffs: d, rfBytes };
}

type Artifact = (a: FinalState, k: FinalState) => string | undefined;

/** KVM_INTERNAL_ERROR left at an INT3 (kvm_pvm's emulator lacks it at CPL0; runOnKvm normally completes it). */
const int3NotEmulated: Artifact = (_a, k) =>
  k.end === 'internal-error' && k.ram[Number(k.rip)] === 0xcc
    ? `host limitation: kvm_pvm's emulator cannot run INT3 at CPL0 (KVM_EXIT_INTERNAL_ERROR at RIP ${hex(k.rip)})` : undefined;

/** Shutdown with CR0.PG still clear: enabling paging outside long mode shuts a kvm_pvm VM down (HOST-KVM.md). */
const legacyPagingShutdown: Artifact = (a, k) =>
  k.end === 'shutdown' && a.end === 'hlt' && (k.cr0 & 0x80000000n) === 0n
    ? 'host limitation: kvm_pvm shuts the VM down when 32-bit/PAE paging is enabled outside long mode' : undefined;

/**
 * SYSCALL from native CPL3 into the emulated CPL0 kernel: kvm_pvm jumps to LSTAR still at CPL3 (HOST-KVM.md), so the
 * entry code runs in user mode and its SYSRETQ raises #GP(0). Detected from the #GP frame the guest's handler leaves
 * (R11 = its RSP after popping the error code, so [R11] is the faulting RIP): it points at a SYSRETQ (48 0F 07).
 */
const syscallBroken: Artifact = (_a, k) => {
  const frame = Number(k.gprs[11]!);
  if (k.end !== 'hlt' || frame <= 0 || frame + 8 > k.ram.length) return undefined;
  const faultRip = Number(new DataView(k.ram.buffer, k.ram.byteOffset).getBigUint64(frame, true));
  const isSysret = faultRip + 3 <= k.ram.length && k.ram[faultRip] === 0x48 && k.ram[faultRip + 1] === 0x0f && k.ram[faultRip + 2] === 0x07;
  return isSysret && k.gprs[8] === 0x2bn
    ? `host limitation: kvm_pvm enters the SYSCALL target (LSTAR) still at CPL3, so its SYSRETQ takes #GP at ${hex(faultRip)} from CPL3`
    : undefined;
};

interface Case {
  guest: keyof typeof GUESTS;
  interrupts?: number[];
  artifacts?: Artifact[];
  /** GPRs that legitimately differ (CPUID output: the interpreter's feature set vs the host's). */
  ignoreGprs?: number[];
  /**
   * RIP at a triple-fault shutdown: the interpreter stops at the INT3 whose delivery failed; on kvm_pvm the INT3 is
   * completed in userspace (system-kvm-run.ts) with RIP already past it, so KVM reports the next address.
   */
  ignoreRip?: boolean;
}

const CASES: Case[] = [
  { guest: 'modeSwitch' },
  { guest: 'realModeIvt' },
  { guest: 'pageFault' },
  { guest: 'cpl3Syscall', artifacts: [syscallBroken] },
  { guest: 'istExceptions', artifacts: [int3NotEmulated] },
  { guest: 'hltWake', interrupts: [0x40] },
  // The interpreter takes the pending vector at STI;HLT; on KVM (userspace irqchip) it is injected at the HLT stop.
  // Both end with the handler run once and the code after HLT done.
  { guest: 'stiHltPending', interrupts: [0x41] },
  { guest: 'paging32', artifacts: [legacyPagingShutdown] },
  { guest: 'compatFarCall' },
  { guest: 'paeNx', artifacts: [legacyPagingShutdown] },
  { guest: 'tripleFault', artifacts: [int3NotEmulated], ignoreRip: true },
  { guest: 'cpuid', ignoreGprs: [0, 1, 2, 3, 8, 9, 10] },
];

describe.skipIf(!probe.usable)(probe.usable ? 'system guests: interpreter vs KVM vCPU' : `system guests vs KVM (skipped: ${probe.reason})`, () => {
  for (const c of CASES) {
    it(`${c.guest}: same final state`, (ctx) => {
      const setup = c.guest === 'realModeIvt' ? REAL_SETUP : LONG_SETUP;
      const a = runOnInterpreter(GUESTS[c.guest], setup, c.interrupts);
      const k = runOnKvm(GUESTS[c.guest], setup, c.interrupts);
      for (const artifact of c.artifacts ?? []) {
        const reason = artifact(a, k);
        if (reason) { console.warn(`[system-kvm] ${c.guest} skipped: ${reason}`); ctx.skip(reason); return; }
      }
      expect(a.end).toMatch(/^(hlt|shutdown)$/);
      const { diffs, rfBytes } = compare(a, k, c.ignoreGprs, c.ignoreRip);
      if (rfBytes) console.warn(`[system-kvm] ${c.guest}: ${rfBytes} pushed RFLAGS image(s) differ only in RF (KVM-injected #BP after the INT3 emulation failure)`);
      if (rfBytes) expect(c.artifacts ?? []).toContain(int3NotEmulated);
      expect(diffs.join('\n')).toBe('');
    });
  }
});
