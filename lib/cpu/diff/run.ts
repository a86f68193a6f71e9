/**
 * Runs a DiffCase on the reference (a KVM vCPU at CPL3, natively on kvm_pvm / VT-x / AMD-V) and on the
 * interpreter, from the same initial state, and captures the final state the same way on both sides.
 */
import { Kvm, type Fpu, type GuestRam, type KvmVcpu, type KvmVm } from '../../kvm/index.js';
import { Bus } from '../../machine/bus.js';
import { GuestMemory } from '../../machine/guest-memory.js';
import { Cpu } from '../cpu.js';
import type { KvmFpu } from '../simd/index.js';
import { importState, type RegsState } from '../state.js';
import type { DiffCase } from './generate.js';
import { buildImage, CODE, CODE_SIZE, DATA, DATA_SIZE, EXC_PORT, KSTACK_TOP, MARKER_PORT, RAM_SIZE, userSregs } from './layout.js';

/** How a case ended: at end marker `marker` (0-3, RIP = that marker), or with exception `vector` at RIP. */
export interface Outcome {
  end: { kind: 'marker'; marker: number } | { kind: 'exception'; vector: number; errorCode: number; cr2: bigint } | { kind: 'other'; detail: string };
  regs: RegsState;
  fpu: KvmFpu;
  data: Uint8Array;
}

const ZERO_REGS: RegsState = { rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: BigInt(DATA + 0x1000), rbp: 0n, r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n, rip: BigInt(CODE), rflags: 0x3202n };
function emptyFpu(): KvmFpu { return { fpr: new Uint8Array(128), fcw: 0x37f, fsw: 0, ftwx: 0, lastOpcode: 0, lastIp: 0, lastDp: 0, xmm: new Uint8Array(256), mxcsr: 0x1f80 }; }

const ERROR_CODE_VECTORS = new Set([8, 10, 11, 12, 13, 14, 17, 21, 29, 30]);

export function toKvm(f: KvmFpu): Fpu {
  return {
    fpr: Array.from({ length: 8 }, (_, i) => f.fpr.slice(i * 16, i * 16 + 16)), fcw: f.fcw, fsw: f.fsw, ftwx: f.ftwx,
    lastOpcode: f.lastOpcode, lastIp: BigInt(f.lastIp), lastDp: BigInt(f.lastDp),
    xmm: Array.from({ length: 16 }, (_, i) => f.xmm.slice(i * 16, i * 16 + 16)), mxcsr: f.mxcsr,
  };
}

/** FXSAVE layout: FCW 0, FSW 2, abridged FTW 4, FOP 6, FIP 8, FDP 16, MXCSR 24, ST0-7 at 32 (16 each), XMM0-15 at 160. */
function writeFxRegion(x: Uint8Array, f: KvmFpu): void {
  const v = new DataView(x.buffer, x.byteOffset);
  x.fill(0, 0, 512);
  v.setUint16(0, f.fcw, true); v.setUint16(2, f.fsw, true); x[4] = f.ftwx; v.setUint16(6, f.lastOpcode, true);
  v.setBigUint64(8, BigInt(f.lastIp), true); v.setBigUint64(16, BigInt(f.lastDp), true);
  v.setUint32(24, f.mxcsr, true); v.setUint32(28, 0xffff, true);
  for (let i = 0; i < 8; i++) x.set(f.fpr.subarray(i * 16, i * 16 + 10), 32 + i * 16);
  x.set(f.xmm, 160);
  x.fill(0, 512, 576);
  x[512] = 3; // XSTATE_BV: x87 | SSE
}

function readFxRegion(x: Uint8Array): KvmFpu {
  const v = new DataView(x.buffer, x.byteOffset);
  const fpr = new Uint8Array(128);
  // An x87 component in its init state (XSTATE_BV bit 0 clear) reads as FNINIT state.
  const x87 = (x[512]! & 1) !== 0;
  if (x87) for (let i = 0; i < 8; i++) fpr.set(x.subarray(32 + i * 16, 42 + i * 16), i * 16);
  const xmm = (x[512]! & 2) !== 0 ? x.slice(160, 416) : new Uint8Array(256);
  return {
    fpr, fcw: x87 ? v.getUint16(0, true) : 0x37f, fsw: x87 ? v.getUint16(2, true) : 0, ftwx: x87 ? x[4]! : 0,
    lastOpcode: x87 ? v.getUint16(6, true) : 0, lastIp: x87 ? Number(v.getBigUint64(8, true)) : 0, lastDp: x87 ? Number(v.getBigUint64(16, true)) : 0,
    xmm, mxcsr: v.getUint32(24, true),
  };
}

export function fromKvm(f: Fpu): KvmFpu {
  const fpr = new Uint8Array(128), xmm = new Uint8Array(256);
  f.fpr.forEach((r, i) => fpr.set(r, i * 16));
  f.xmm.forEach((r, i) => xmm.set(r, i * 16));
  return { fpr, fcw: f.fcw, fsw: f.fsw, ftwx: f.ftwx, lastOpcode: f.lastOpcode, lastIp: Number(f.lastIp), lastDp: Number(f.lastDp), xmm, mxcsr: f.mxcsr };
}

function loadCase(ram: Uint8Array, c: DiffCase): void {
  ram.fill(0xf4, CODE, CODE + CODE_SIZE); // HLT: #GP at CPL3 if control flow leaves the case
  ram.set(c.code, CODE);
  ram.set(c.data, DATA);
}

/** The reference: one VM, one vCPU, reused for every case (registers, FPU and RAM reset per case). */
export class KvmReference {
  private readonly kvm: Kvm;
  private readonly vm: KvmVm;
  private readonly ram: GuestRam;
  private readonly vcpu: KvmVcpu;
  private readonly sregs;
  private sregsDirty = true;
  private readonly xsave: Uint8Array;

  constructor() {
    this.kvm = Kvm.open();
    this.vm = this.kvm.createVm();
    this.vm.setTssAddr(0xfffbd000);
    this.ram = this.kvm.allocateRam(RAM_SIZE);
    this.vm.setMemoryRegion({ slot: 0, guestAddress: 0, ram: this.ram });
    this.vcpu = this.vm.createVcpu(0);
    this.vcpu.setCpuid(this.kvm.supportedCpuid());
    buildImage(this.ram.bytes);
    this.sregs = { ...this.vcpu.getSregs(), ...userSregs() };
    this.xsave = this.vcpu.getXsave();
    this.xsave.fill(0, 512);
    // Warm-up: the first entries after vCPU creation do not yet run with the FPU image set through KVM_SET_FPU.
    const nop: DiffCase = { seed: 0, code: new Uint8Array([0x90, 0xe6, MARKER_PORT]), insns: [], regs: { ...ZERO_REGS }, fpu: emptyFpu(), data: new Uint8Array(DATA_SIZE) };
    for (let i = 0; i < 3; i++) this.run(nop);
  }

  run(c: DiffCase): Outcome {
    const ram = this.ram.bytes;
    loadCase(ram, c);
    if (this.sregsDirty) { this.vcpu.setSregs(this.sregs); this.sregsDirty = false; }
    this.vcpu.setRegs(c.regs);
    // KVM_SET_FPU / KVM_GET_FPU ignore MXCSR (the kernel copies only x87 and XMM), so the FPU state goes through
    // KVM_SET_XSAVE / KVM_GET_XSAVE: the legacy FXSAVE region plus XSTATE_BV = x87 | SSE.
    writeFxRegion(this.xsave, c.fpu);
    this.vcpu.setXsave(this.xsave);
    const exit = this.vcpu.runSync();
    const regs = this.vcpu.getRegs();
    const fpu = readFxRegion(this.vcpu.getXsave());
    let end: Outcome['end'];
    if (exit.reason === 'io' && exit.direction === 'out' && exit.port >= MARKER_PORT && exit.port < MARKER_PORT + 4) {
      end = { kind: 'marker', marker: exit.port - MARKER_PORT };
      regs.rip = BigInt(CODE + c.code.length - 8 + 2 * end.marker);
    } else if (exit.reason === 'io' && exit.direction === 'out' && exit.port >= EXC_PORT && exit.port < EXC_PORT + 32) {
      const vector = exit.port - EXC_PORT;
      const v = new DataView(ram.buffer, ram.byteOffset);
      let sp = Number(regs.rsp);
      if (sp < KSTACK_TOP - 0x100 || sp > KSTACK_TOP) throw new Error(`kvm-diff: unexpected kernel RSP 0x${sp.toString(16)} in the exception stub`);
      let errorCode = 0;
      if (ERROR_CODE_VECTORS.has(vector)) { errorCode = Number(v.getBigUint64(sp, true)); sp += 8; }
      regs.rip = v.getBigUint64(sp, true);
      regs.rflags = v.getBigUint64(sp + 16, true);
      regs.rsp = v.getBigUint64(sp + 24, true);
      const s = this.vcpu.getSregs();
      end = { kind: 'exception', vector, errorCode, cr2: vector === 14 ? s.cr2 : 0n };
      this.sregsDirty = true;
    } else {
      end = { kind: 'other', detail: JSON.stringify(exit, (_k, x: unknown) => typeof x === 'bigint' ? `0x${x.toString(16)}` : x instanceof Uint8Array ? [...x] : x) };
      this.sregsDirty = true;
    }
    return { end, regs, fpu, data: ram.slice(DATA, DATA + DATA_SIZE) };
  }

  close(): void { this.vm.close(); this.ram.close(); this.kvm.close(); }
}

/** The interpreter side, same image, same per-case reset. */
export class InterpreterRun {
  private readonly ram = new Uint8Array(RAM_SIZE);
  private readonly cpu: Cpu;
  private marker = -1;

  constructor() {
    buildImage(this.ram);
    const pio = new Bus('pio');
    pio.register(MARKER_PORT, 4, {
      read: () => 0,
      write: (offset) => { this.marker = offset; this.cpu.requestStop('marker'); },
    }, 'kvm-diff end marker');
    this.cpu = new Cpu({ memory: new GuestMemory([{ guestAddress: 0, bytes: this.ram }]), pio });
    this.cpu.exceptionsToHost = true;
  }

  run(c: DiffCase): Outcome {
    loadCase(this.ram, c);
    this.marker = -1;
    importState(this.cpu, {
      regs: c.regs, sregs: userSregs(), fpu: c.fpu, msrs: new Map(), debugRegs: [], halted: false, interruptShadow: false, nmiPending: false,
    });
    this.cpu.cr2 = 0;
    const stop = this.cpu.run({ maxInstructions: 200_000 });
    const st = exportRegs(this.cpu);
    let end: Outcome['end'];
    if ((stop.reason === 'stop' || stop.reason === 'hook') && this.marker >= 0) {
      end = { kind: 'marker', marker: this.marker };
      st.rip = BigInt(CODE + c.code.length - 8 + 2 * this.marker);
    } else if (stop.reason === 'exception') {
      end = { kind: 'exception', vector: stop.vector, errorCode: stop.errorCode, cr2: stop.vector === 14 ? BigInt.asUintN(64, BigInt(this.cpu.cr2)) : 0n };
    } else end = { kind: 'other', detail: JSON.stringify(stop) };
    return { end, regs: st, fpu: exportFpu(this.cpu), data: this.ram.slice(DATA, DATA + DATA_SIZE) };
  }
}

import { exportState } from '../state.js';
function exportRegs(cpu: Cpu): RegsState { return exportState(cpu).regs; }
function exportFpu(cpu: Cpu): KvmFpu { return exportState(cpu).fpu; }
