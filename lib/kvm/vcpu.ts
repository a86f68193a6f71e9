/**
 * A KVM vCPU: register files, and the exit loop.
 *
 * Three run models, same handlers and results (bench/exit-roundtrip.ts measures them against raw C):
 *  - runInline(): KVM_RUN on the JS thread, interrupted whenever the event loop has work (I/O ready, a timer
 *    due, a time slice over). No hand-off per exit: the fastest (~1.1x raw C). One vCPU per JS thread.
 *  - runLoop(): a native thread per vCPU loops KVM_RUN and hands each exit to this object on the JS thread
 *    through a ThreadSafeFunction (optional adaptive spin/poll, see setTuning). Any number of vCPUs; each exit
 *    costs two thread switches, which on a loaded host is expensive (~2x raw C at load 12 on 2 cores).
 *  - runSync(): KVM_RUN on the calling thread, blocking it (for worker threads that own their devices).
 * Switching one vCPU between threads (runLoop <-> runInline/runSync) makes KVM re-home it; cheap on recent
 * kernels, a synchronize_rcu() on older ones, so keep a vCPU on one model.
 *
 * IO and MMIO exits with a handler are completed inline (the read value is written into kvm_run before
 * re-entry) without allocating; the first exit without a handler ends the run and is returned, so the machine
 * layer decides policy for HLT, SHUTDOWN, INTERNAL_ERROR, ...
 */
import { constants } from 'node:os';
import { ExitReason, IoDirection } from './constants.js';
import { check, KvmError } from './errors.js';
import { RunPage, type VcpuExit } from './exits.js';
import type { NativeAddon, NativeKvmVcpu, RunLayout, VcpuIoctlName } from './native.js';
import {
  type CpuidEntry, DEBUG_REGS_SIZE, type DebugRegs, decodeCpuid, decodeDebugRegs, decodeFpu, decodeMsrs, decodeRegs,
  decodeSregs, decodeVcpuEvents, decodeXcrs, encodeCpuid, encodeDebugRegs, encodeFpu, encodeMsrs, encodeRegs,
  encodeSregs, encodeVcpuEvents, encodeXcrs, type Fpu, FPU_SIZE, type MsrEntry, type Regs, REGS_SIZE, type Sregs,
  SREGS_SIZE, type Translation, TRANSLATION_SIZE, VCPU_EVENTS_SIZE, type VcpuEvents, type Xcr, XCRS_SIZE,
} from './structs.js';
import type { KvmVm } from './vm.js';

/** Port I/O handler; lib/machine/bus.ts `Bus` ('pio') fits. Sizes are 1, 2 or 4. */
export interface PioHandler {
  read(port: number, size: number): number;
  write(port: number, size: number, value: number): void;
}

/** MMIO handler; lib/machine/bus.ts `Bus` ('mmio') fits. Accesses other than 1/2/4 bytes use readBytes/writeBytes when present. */
export interface MmioHandler {
  read(address: number, size: number): number;
  write(address: number, size: number, value: number): void;
  readBytes?(address: number, out: Uint8Array): void;
  writeBytes?(address: number, data: Uint8Array): void;
}

export interface ExitHandlers {
  pio?: PioHandler;
  mmio?: MmioHandler;
}

/** runLoop() outcome: a KVM exit the loop did not handle, or 'closed' when the vCPU was closed while running. */
export type RunResult = VcpuExit | { reason: 'closed' };

const CONTINUE = 0;
const PARK = 1;
const EINTR = constants.errno.EINTR;

interface PendingRun {
  handlers: ExitHandlers;
  resolve(exit: RunResult): void;
  reject(error: unknown): void;
}

export class KvmVcpu {
  /** Typed access to this vCPU's kvm_run page. */
  readonly page: RunPage;
  private readonly layout: RunLayout;
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  private readonly ioctls: NativeAddon['vcpuIoctls'];
  private threadStarted = false;
  private pending: PendingRun | undefined;
  /** The pending run is runInline (JS thread) rather than runLoop (run thread). */
  private inline = false;
  private stopRequested = false;
  /** How many times runInline gave the event loop a turn (diagnostics). */
  inlineYields = 0;
  private closed = false;
  private readonly regsBuf = new Uint8Array(REGS_SIZE);
  private readonly sregsBuf = new Uint8Array(SREGS_SIZE);

  /** @internal use KvmVm.createVcpu */
  constructor(
    addon: NativeAddon,
    readonly native: NativeKvmVcpu,
    readonly id: number,
    readonly vm: KvmVm,
    private readonly onClose: () => void,
  ) {
    this.layout = addon.runLayout;
    this.page = new RunPage(native.run, addon.runLayout);
    this.view = this.page.view;
    this.bytes = this.page.bytes;
    this.ioctls = addon.vcpuIoctls;
  }

  get fd(): number { return this.native.fd; }
  get isClosed(): boolean { return this.closed; }
  /** True between runLoop() and its settlement. */
  get isRunning(): boolean { return this.pending !== undefined; }

  // ---- register files -------------------------------------------------------------------------------

  private ioctl(name: VcpuIoctlName, buffer?: Uint8Array): number {
    return check(this.native.ioctl(this.ioctls[name][0], buffer), `ioctl(KVM_${snake(name)})`);
  }

  getRegs(): Regs { this.ioctl('getRegs', this.regsBuf); return decodeRegs(this.regsBuf); }
  setRegs(regs: Regs): void { this.ioctl('setRegs', encodeRegs(regs, this.regsBuf)); }
  /** Fast path: the 18 registers of struct kvm_regs (rax..r15, rip, rflags) into a reusable array. */
  getRegsInto(out: BigUint64Array): void {
    if (out.length < 18) throw new RangeError('getRegsInto: need 18 elements');
    this.ioctl('getRegs', new Uint8Array(out.buffer, out.byteOffset, REGS_SIZE));
  }
  setRegsFrom(src: BigUint64Array): void {
    if (src.length < 18) throw new RangeError('setRegsFrom: need 18 elements');
    this.ioctl('setRegs', new Uint8Array(src.buffer, src.byteOffset, REGS_SIZE));
  }

  getSregs(): Sregs { this.ioctl('getSregs', this.sregsBuf); return decodeSregs(this.sregsBuf); }
  setSregs(sregs: Sregs): void { this.ioctl('setSregs', encodeSregs(sregs, this.sregsBuf)); }

  getFpu(): Fpu { const b = new Uint8Array(FPU_SIZE); this.ioctl('getFpu', b); return decodeFpu(b); }
  setFpu(fpu: Fpu): void { this.ioctl('setFpu', encodeFpu(fpu)); }

  /** Reads the given MSRs; throws if KVM cannot read one of them. */
  getMsrs(indices: readonly number[]): MsrEntry[] {
    const b = encodeMsrs(indices.map((index) => ({ index, value: 0n })));
    const n = this.ioctl('getMsrs', b);
    if (n !== indices.length) throw new KvmError(constants.errno.EINVAL, 'ioctl(KVM_GET_MSRS)', `MSR 0x${indices[n]?.toString(16)} is not readable`);
    return decodeMsrs(b, n);
  }
  getMsr(index: number): bigint { return this.getMsrs([index])[0]!.value; }

  setMsrs(entries: readonly MsrEntry[]): void {
    const n = this.ioctl('setMsrs', encodeMsrs(entries));
    if (n !== entries.length) throw new KvmError(constants.errno.EINVAL, 'ioctl(KVM_SET_MSRS)', `MSR 0x${entries[n]?.index.toString(16)} was rejected`);
  }

  setCpuid(entries: readonly CpuidEntry[]): void { this.ioctl('setCpuid2', encodeCpuid(entries)); }
  getCpuid(): CpuidEntry[] {
    const b = encodeCpuid([], 256);
    this.ioctl('getCpuid2', b);
    return decodeCpuid(b);
  }

  /** The 1024-byte LAPIC register page (struct kvm_lapic_state). */
  getLapic(): Uint8Array { const b = new Uint8Array(1024); this.ioctl('getLapic', b); return b; }
  setLapic(regs: Uint8Array): void { this.ioctl('setLapic', regs); }

  getVcpuEvents(): VcpuEvents { const b = new Uint8Array(VCPU_EVENTS_SIZE); this.ioctl('getVcpuEvents', b); return decodeVcpuEvents(b); }
  setVcpuEvents(events: VcpuEvents): void { this.ioctl('setVcpuEvents', encodeVcpuEvents(events)); }

  /** KVM_MP_STATE_* (MpState). */
  getMpState(): number { const b = new Uint8Array(4); this.ioctl('getMpState', b); return new DataView(b.buffer).getUint32(0, true); }
  setMpState(state: number): void { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, state, true); this.ioctl('setMpState', b); }

  getXcrs(): Xcr[] { const b = new Uint8Array(XCRS_SIZE); this.ioctl('getXcrs', b); return decodeXcrs(b); }
  setXcrs(xcrs: readonly Xcr[]): void { this.ioctl('setXcrs', encodeXcrs(xcrs)); }

  getDebugRegs(): DebugRegs { const b = new Uint8Array(DEBUG_REGS_SIZE); this.ioctl('getDebugRegs', b); return decodeDebugRegs(b); }
  setDebugRegs(regs: DebugRegs): void { this.ioctl('setDebugRegs', encodeDebugRegs(regs)); }

  /** The 4096-byte XSAVE area (struct kvm_xsave). */
  getXsave(): Uint8Array { const b = new Uint8Array(4096); this.ioctl('getXsave', b); return b; }
  setXsave(area: Uint8Array): void { this.ioctl('setXsave', area); }

  /** KVM_TRANSLATE: guest linear address -> physical, through the vCPU's current paging mode. */
  translate(linear: bigint): Translation {
    const b = new Uint8Array(TRANSLATION_SIZE);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, BigInt.asUintN(64, linear), true);
    this.ioctl('translate', b);
    return { physicalAddress: v.getBigUint64(8, true), valid: b[16] !== 0, writeable: b[17] !== 0, usermode: b[18] !== 0 };
  }

  /** KVM_SET_GUEST_DEBUG: `control` is GuestDebug flags; `debugreg` are DR0-3, DR6, DR7 (others zero). */
  setGuestDebug(control: number, debugreg: readonly bigint[] = []): void {
    const b = new Uint8Array(72);
    const v = new DataView(b.buffer);
    v.setUint32(0, control, true);
    debugreg.slice(0, 8).forEach((x, i) => v.setBigUint64(8 + i * 8, x, true));
    this.ioctl('setGuestDebug', b);
  }

  /** KVM_INTERRUPT: queue an external interrupt (only without an in-kernel irqchip). */
  interrupt(vector: number): void { const b = new Uint8Array(4); b[0] = vector; this.ioctl('interrupt', b); }
  /** KVM_NMI: queue an NMI. */
  nmi(): void { this.ioctl('nmi'); }

  // ---- running --------------------------------------------------------------------------------------

  /**
   * Runs the guest on this vCPU's native thread until an exit that `handlers` do not cover. IO exits go to
   * handlers.pio, MMIO exits to handlers.mmio (reads are completed in kvm_run before re-entry). Resolves with
   * the unhandled exit; rejects if a handler throws (that exit stays unfinished) or KVM_RUN fails.
   * A kick() resolves with { reason: 'intr' }; close() with { reason: 'closed' }.
   */
  runLoop(handlers: ExitHandlers = {}): Promise<RunResult> {
    if (this.closed) return Promise.reject(new KvmError(constants.errno.EBADF, 'ioctl(KVM_RUN)', 'vCPU is closed'));
    if (this.pending) return Promise.reject(new Error(`vCPU ${this.id}: a run is already active`));
    if (!this.threadStarted) {
      this.native.startThread(this.onExit);
      this.threadStarted = true;
    }
    return new Promise<RunResult>((resolve, reject) => {
      this.pending = { handlers, resolve, reject };
      this.native.resume();
    });
  }

  /**
   * The synchronous variant: KVM_RUN on the calling thread (blocks it; meant for worker threads), same
   * dispatch and result. Cannot be kicked: an interrupted KVM_RUN (stray signal) is simply re-entered.
   */
  runSync(handlers: ExitHandlers = {}): VcpuExit {
    if (this.pending) throw new Error(`vCPU ${this.id}: a run is active`);
    for (;;) {
      const r = this.native.runSync();
      if (r === -EINTR) continue;
      check(r, 'ioctl(KVM_RUN)');
      if (!this.dispatch(handlers)) return this.page.decode();
    }
  }

  /**
   * Runs the guest with KVM_RUN on the JS thread itself — no thread hand-off per exit, so an exit costs about
   * what it costs a C program — while the event loop keeps running: KVM_RUN is interrupted when the loop has
   * I/O ready (a watcher thread polls libuv's backend fd), at the loop's next timer deadline, and after at most
   * `sliceMs` of continuous running; the loop then gets one non-blocking turn and the guest resumes.
   * One vCPU per JS thread can run this way at a time (use runLoop or a worker for the others). Same
   * handlers and results as runLoop; kick() from a handler or a callback ends it with { reason: 'intr' }.
   * `sliceMs` only bounds how long microtasks queued by handlers may wait (I/O and timers interrupt the guest
   * on their own); each forced turn costs a few hundred µs on kvm_pvm, hence the 10 ms default.
   */
  runInline(handlers: ExitHandlers = {}, sliceMs = 10): Promise<RunResult> {
    if (this.closed) return Promise.reject(new KvmError(constants.errno.EBADF, 'ioctl(KVM_RUN)', 'vCPU is closed'));
    if (this.pending) return Promise.reject(new Error(`vCPU ${this.id}: a run is already active`));
    const sliceNs = Math.max(0, Math.round(sliceMs * 1e6));
    return new Promise<RunResult>((resolve, reject) => {
      const p: PendingRun = { handlers, resolve, reject };
      this.pending = p;
      this.inline = true;
      this.stopRequested = false;
      const step = (): void => {
        try {
          for (;;) {
            if (this.pending !== p) return; // closed
            if (this.stopRequested) {
              this.stopRequested = false;
              this.settle().resolve({ reason: 'intr' });
              return;
            }
            const r = this.native.runInline(sliceNs);
            if (r === 1 || (r === -EINTR && !this.stopRequested)) {
              this.inlineYields++;
              this.native.yieldThen(step);
              return;
            }
            if (r === -EINTR) continue; // kicked: resolved as 'intr' above
            if (r < 0) {
              this.settle().reject(new KvmError(-r, 'ioctl(KVM_RUN)'));
              return;
            }
            const handled = this.dispatch(p.handlers);
            if (this.pending !== p) return;
            if (!handled) {
              this.settle().resolve(this.page.decode());
              return;
            }
          }
        } catch (e) {
          if (this.pending === p) this.settle().reject(e);
        }
      };
      step();
    });
  }

  /**
   * Makes an active runLoop()/runInline() return { reason: 'intr' } promptly (spinning or halted guest).
   * False if not running.
   */
  kick(): boolean {
    if (this.pending && this.inline) {
      this.stopRequested = true;
      return true;
    }
    return this.native.kick();
  }

  /**
   * runLoop hand-off tuning (nanoseconds; 0 disables; all off by default): `spinNs` the run thread busy-waits
   * for the JS verdict before sleeping on a futex; `pollNs` the JS thread waits for the next exit before
   * returning to the event loop; `budgetNs` the longest stretch of back-to-back exit handling before the event
   * loop gets a turn (default 2 ms). Both windows adapt (shrink when a wait does not pay off). Spinning helps
   * on an idle multi-core host and hurts on a loaded one (bench/exit-roundtrip.ts shows both).
   */
  setTuning(t: { spinNs?: number; pollNs?: number; budgetNs?: number }): void {
    this.tuning = { ...this.tuning, ...t };
    this.native.setSpin(this.tuning.spinNs, this.tuning.pollNs, this.tuning.budgetNs);
  }
  private tuning = { spinNs: 0, pollNs: 0, budgetNs: 2_000_000 };

  /** Decodes the last exit from kvm_run. */
  lastExit(): VcpuExit { return this.page.decode(); }

  /** Called on the JS thread after every KVM_RUN of the run thread. Must not throw. */
  private readonly onExit = (errno: number): number => {
    const p = this.pending;
    if (!p) return PARK;
    try {
      if (errno === 0) {
        const handled = this.dispatch(p.handlers);
        if (this.pending !== p) return PARK; // a handler closed this vCPU
        if (handled) return CONTINUE;
        this.settle().resolve(this.page.decode());
      } else if (errno === EINTR) {
        this.settle().resolve({ reason: 'intr' });
      } else {
        this.settle().reject(new KvmError(errno, 'ioctl(KVM_RUN)'));
      }
    } catch (e) {
      if (this.pending === p) this.settle().reject(e);
    }
    return PARK;
  };

  private settle(): PendingRun {
    const p = this.pending!;
    this.pending = undefined;
    if (this.inline && !this.closed) this.native.runInline(-1); // disarm the slice timer
    this.inline = false;
    return p;
  }

  /** Completes an IO/MMIO exit inline; false when the exit is not one the handlers cover. */
  private dispatch(h: ExitHandlers): boolean {
    const L = this.layout;
    const v = this.view;
    const reason = v.getUint32(L.exitReason, true);
    if (reason === ExitReason.IO) {
      const pio = h.pio;
      if (!pio) return false;
      const size = v.getUint8(L.ioSize);
      const port = v.getUint16(L.ioPort, true);
      const count = v.getUint32(L.ioCount, true);
      const offset = v.getUint32(L.ioDataOffset, true);
      if (offset + size * count > this.bytes.length || (size !== 1 && size !== 2 && size !== 4)) {
        throw new RangeError(`KVM_EXIT_IO: bad data area ${offset}+${size}x${count}`);
      }
      if (v.getUint8(L.ioDirection) === IoDirection.OUT) {
        for (let i = 0, o = offset; i < count; i++, o += size) {
          pio.write(port, size, size === 1 ? v.getUint8(o) : size === 2 ? v.getUint16(o, true) : v.getUint32(o, true));
        }
      } else {
        for (let i = 0, o = offset; i < count; i++, o += size) {
          const value = pio.read(port, size);
          if (size === 1) v.setUint8(o, value & 0xff);
          else if (size === 2) v.setUint16(o, value & 0xffff, true);
          else v.setUint32(o, value >>> 0, true);
        }
      }
      return true;
    }
    if (reason === ExitReason.MMIO) {
      const mmio = h.mmio;
      if (!mmio) return false;
      const address = this.page.mmioAddress;
      const len = v.getUint32(L.mmioLen, true);
      const o = L.mmioData;
      if (len < 1 || len > 8) throw new RangeError(`KVM_EXIT_MMIO: bad length ${len}`);
      const isWrite = v.getUint8(L.mmioIsWrite) !== 0;
      if (len === 1 || len === 2 || len === 4) {
        if (isWrite) mmio.write(address, len, len === 1 ? v.getUint8(o) : len === 2 ? v.getUint16(o, true) : v.getUint32(o, true));
        else {
          const value = mmio.read(address, len);
          if (len === 1) v.setUint8(o, value & 0xff);
          else if (len === 2) v.setUint16(o, value & 0xffff, true);
          else v.setUint32(o, value >>> 0, true);
        }
      } else {
        const data = this.bytes.subarray(o, o + len);
        if (isWrite) (mmio.writeBytes ? mmio.writeBytes(address, data) : splitWrite(mmio, address, data));
        else (mmio.readBytes ? mmio.readBytes(address, data) : splitRead(mmio, address, data));
      }
      return true;
    }
    return false;
  }

  /** Stops (kicks and joins) the run thread, settles a pending runLoop with { reason: 'closed' }, closes the fd. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
    if (this.pending) this.settle().resolve({ reason: 'closed' });
    this.onClose();
  }
}

function pieceSize(remaining: number): number {
  return remaining >= 4 ? 4 : remaining >= 2 ? 2 : 1;
}

function splitWrite(mmio: MmioHandler, address: number, data: Uint8Array): void {
  for (let i = 0; i < data.length;) {
    const size = pieceSize(data.length - i);
    let value = 0;
    for (let b = 0; b < size; b++) value |= data[i + b]! << (8 * b);
    mmio.write(address + i, size, value >>> 0);
    i += size;
  }
}

function splitRead(mmio: MmioHandler, address: number, out: Uint8Array): void {
  for (let i = 0; i < out.length;) {
    const size = pieceSize(out.length - i);
    const value = mmio.read(address + i, size);
    for (let b = 0; b < size; b++) out[i + b] = (value >>> (8 * b)) & 0xff;
    i += size;
  }
}

/** 'getVcpuEvents' -> 'GET_VCPU_EVENTS' for error messages. */
function snake(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}
