/**
 * The native addon's shape, and its loader. This is the only module that touches the addon; every other
 * file in lib/kvm goes through these interfaces. Kernel errors on hot paths come back as negative errno
 * numbers (never thrown); constructors and setup calls throw Node-style errors (code/errno/syscall).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface NativeKvmSystem {
  readonly fd: number;
  apiVersion(): number;
  checkExtension(cap: number): number;
  vcpuMmapSize(): number;
  /** Raw struct kvm_cpuid2: 8-byte header, then 40-byte entries. */
  supportedCpuid(): Uint8Array;
  msrIndexList(): Uint32Array;
  close(): void;
}

export interface NativeGuestRam {
  readonly buffer: ArrayBuffer;
  readonly size: number;
  close(): void;
}

export interface NativeKvmVm {
  readonly fd: number;
  checkExtension(cap: number): number;
  enableCap(cap: number, arg0?: number | bigint, arg1?: number | bigint, arg2?: number | bigint, arg3?: number | bigint): void;
  setMemoryRegion(slot: number, flags: number, guestAddress: number, ram: NativeGuestRam | null, ramOffset: number, size: number): void;
  setTssAddr(address: number): void;
  setIdentityMapAddr(address: number): void;
  createIrqchip(): void;
  createPit2(flags: number): void;
  /** KVM_GET_IRQCHIP: the chip union (512 bytes) of chip 0/1 (PIC master/slave) or 2 (IOAPIC) into `out`. */
  getIrqchip(chipId: number, out: Uint8Array): void;
  /** KVM_SET_IRQCHIP from 512 bytes as getIrqchip returns them. */
  setIrqchip(chipId: number, state: Uint8Array): void;
  /** KVM_GET_PIT2: struct kvm_pit_state2 (112 bytes) into `out`. */
  getPit2(out: Uint8Array): void;
  /** KVM_SET_PIT2 from a struct kvm_pit_state2. */
  setPit2(state: Uint8Array): void;
  /** 0 or -errno. */
  irqLine(irq: number, level: boolean): number;
  irqfd(eventFd: number, gsi: number, flags: number, resampleFd: number): void;
  ioeventfd(address: number, length: number, eventFd: number, flags: number, datamatch: number | bigint): void;
  getDirtyLog(slot: number, bitmap: Uint8Array): void;
  getClock(out: Uint8Array): void;
  setClock(data: Uint8Array): void;
  /** >0 delivered, 0 blocked by the guest, -errno on failure. */
  signalMsi(addressLo: number, addressHi: number, data: number): number;
  setGsiRouting(table: Uint8Array): void;
  close(): void;
}

export type VcpuIoctlName =
  | 'getRegs' | 'setRegs' | 'getSregs' | 'setSregs' | 'getFpu' | 'setFpu' | 'getLapic' | 'setLapic'
  | 'getVcpuEvents' | 'setVcpuEvents' | 'getMpState' | 'setMpState' | 'getXcrs' | 'setXcrs'
  | 'getDebugRegs' | 'setDebugRegs' | 'getXsave' | 'setXsave' | 'translate' | 'setGuestDebug' | 'interrupt'
  | 'getMsrs' | 'setMsrs' | 'getCpuid2' | 'setCpuid2' | 'nmi';

export interface NativeKvmVcpu {
  readonly fd: number;
  /** The mmapped kvm_run area (kvm_run page, PIO data page, coalesced MMIO ring). */
  readonly run: ArrayBuffer;
  /** A whitelisted vCPU ioctl on `buffer`; result >= 0 or -errno. -EBUSY while the run thread is in KVM_RUN. */
  ioctl(kind: number, buffer?: Uint8Array): number;
  /** KVM_RUN on the calling thread: 0 or -errno (-EINTR when kicked). */
  runSync(): number;
  /**
   * KVM_RUN on the JS thread, bounded so its event loop keeps running: 0 = an exit is in kvm_run, 1 = yield
   * (let the event loop take a turn, then call again), -EINTR = kicked out for pending I/O or a timer (yield too),
   * other -errno = failure. `sliceNs` caps how long one stretch may keep the loop waiting; a negative value
   * ends the inline run (disarms its timer) and returns 0.
   */
  runInline(sliceNs?: number): number;
  /** Calls `resume` after one non-blocking event-loop turn (ready I/O and due timers processed). */
  yieldThen(resume: () => void): void;
  /** Creates the parked run thread; onExit(errno) runs on the JS thread after each KVM_RUN: 0 continue, 1 park. */
  startThread(onExit: (errno: number) => number): void;
  resume(): void;
  kick(): boolean;
  /** Run-thread spin before sleeping; JS-thread poll for the next exit; max back-to-back handling per event-loop turn (ns). */
  setSpin(spinNs: number, pollNs?: number, budgetNs?: number): void;
  close(): void;
}

export interface NativeEventFd {
  readonly fd: number;
  /** 0 or -errno. */
  write(increment?: number): number;
  /** counter (> 0) or -errno. */
  read(): number;
  /**
   * Calls `onSignal(counter)` on the JS thread (from the event loop, never blocking it) each time the counter
   * becomes non-zero, after reading (resetting) it; `onSignal(-errno)` if that read fails. Makes the fd
   * non-blocking. Throws if already watched or closed. Optional: addons built before it lack it.
   */
  watch?(onSignal: (counter: number) => void): void;
  /** Stops watch(); idempotent. close() implies it. */
  unwatch?(): void;
  close(): void;
}

/** What openTap() returns: the TAP's fd (blocking, close-on-exec) and the kernel's name for the interface. */
export interface NativeTapHandle {
  fd: number;
  ifname: string;
}

/**
 * A packet fd (a TAP: one frame per read and write) read from the JS thread's event loop (uv_poll, no libuv
 * pool thread). `new PacketFd(fd, maxFrameBytes)` takes ownership of `fd` (only if it does not throw) and makes
 * it non-blocking; maxFrameBytes is 14..1 MiB.
 */
export interface NativePacketFd {
  /** The fd, or -1 once closed. */
  readonly fd: number;
  /** Frames dropped because they were longer than maxFrameBytes. */
  readonly oversized: number;
  /**
   * Whenever the fd is readable, reads frames until EAGAIN (at most 64 per call) and calls
   * `onFrames(frames, error)` once on the JS thread. `error` is 0, or -errno when a read failed (-EPIPE: end of
   * stream); after an error the watcher has stopped (frames read before it are in `frames`) and start() may be
   * called again. The watcher does not keep the process alive. Throws if started already or closed.
   */
  start(onFrames: (frames: Buffer[], error: number) => void): void;
  /** A non-blocking write() of one frame: bytes written, or -errno (-EAGAIN/-ENOBUFS: queue full; -EBADF: closed). */
  send(frame: Uint8Array): number;
  /** Stops the watcher and closes the fd at once; idempotent; allowed from inside onFrames. */
  close(): void;
}

/** One echo reply read from a NativeIcmpSocket. */
export interface NativeIcmpReply {
  /** The replying host's IPv4 address (host byte order, as a number). */
  source: number;
  /** The ICMP message (header + data; a raw socket's IP header already stripped). */
  message: Buffer;
  /** The reply's IP TTL, or -1 when the kernel did not report it. */
  ttl: number;
}

export type IcmpSocketKind = 'dgram' | 'raw';

/**
 * An ICMP echo socket, non-blocking, read from the JS thread's event loop (uv_poll). `new IcmpSocket(kind)`:
 * 'dgram' is an unprivileged Linux ping socket (the caller's group must be in net.ipv4.ping_group_range; the
 * kernel replaces the echo identifier with the socket's own and passes only replies to it), 'raw' a SOCK_RAW
 * socket (needs CAP_NET_RAW; receives every echo reply the host gets, so the caller must match them), 'auto'
 * (default) tries dgram, then raw. Throws an Error naming each failure and what would allow it.
 */
export interface NativeIcmpSocket {
  readonly kind: IcmpSocketKind;
  /** The fd, or -1 once closed. */
  readonly fd: number;
  /** One sendto() of a whole ICMP message to `dstIPv4` (host byte order): bytes sent, or -errno. */
  send(dstIPv4: number, icmpMessage: Uint8Array): number;
  /**
   * Whenever the socket is readable, reads up to 64 echo replies and calls `onReplies(replies, error)` once on
   * the JS thread; error is 0, or -errno when the fd failed (the watcher has then stopped). Does not keep the
   * process alive. Throws if started already or closed.
   */
  start(onReplies: (replies: NativeIcmpReply[], error: number) => void): void;
  /** Stops the watcher and closes the socket; idempotent; allowed from inside onReplies. */
  close(): void;
}

/**
 * fallocate(2) on the libuv thread pool: resolves when done, rejects with a Node-style error (code
 * 'EOPNOTSUPP' when the filesystem cannot do `mode`, errno, syscall 'fallocate'). Throws synchronously
 * (TypeError/RangeError) on a bad argument: mode bits other than the three below, length 0, values above 2^53.
 */
export interface NativeFallocate {
  (fd: number, mode: number, offset: number, length: number): Promise<void>;
  /** FALLOC_FL_KEEP_SIZE: never change the file's size. */
  readonly KEEP_SIZE: number;
  /** FALLOC_FL_PUNCH_HOLE (requires KEEP_SIZE): free the range's blocks; it then reads as zeros. */
  readonly PUNCH_HOLE: number;
  /** FALLOC_FL_ZERO_RANGE: make the range read as zeros, keeping it allocated (unwritten extents). */
  readonly ZERO_RANGE: number;
}

/** Byte offsets inside struct kvm_run, from the headers the addon was compiled against. */
export interface RunLayout {
  requestInterruptWindow: number; immediateExit: number; exitReason: number; readyForInterruptInjection: number;
  ifFlag: number; flags: number; cr8: number; apicBase: number; hwExitReason: number; failEntryReason: number;
  failEntryCpu: number; exException: number; exErrorCode: number; ioDirection: number; ioSize: number;
  ioPort: number; ioCount: number; ioDataOffset: number; debugException: number; debugPc: number;
  debugDr6: number; debugDr7: number; mmioPhysAddr: number; mmioData: number; mmioLen: number;
  mmioIsWrite: number; hypercallNr: number; hypercallArgs: number; hypercallRet: number;
  internalSuberror: number; internalNdata: number; internalData: number; emulationFlags: number;
  emulationInsnSize: number; emulationInsnBytes: number; systemEventType: number; systemEventNdata: number;
  systemEventData: number; msrError: number; msrReason: number; msrIndex: number; msrData: number;
  eoiVector: number; size: number;
}

export interface StructSizes {
  regs: number; sregs: number; segment: number; dtable: number; fpu: number; lapic: number; vcpuEvents: number;
  mpState: number; xcrs: number; debugRegs: number; xsave: number; translation: number; guestDebug: number;
  msrsHeader: number; msrEntry: number; cpuidHeader: number; cpuidEntry: number; clockData: number;
  irqRoutingHeader: number; irqRoutingEntry: number;
}

export interface NativeAddon {
  KvmSystem: new (path: string) => NativeKvmSystem;
  KvmVm: new (system: NativeKvmSystem, type?: number) => NativeKvmVm;
  KvmVcpu: new (vm: NativeKvmVm, id: number, mmapSize: number) => NativeKvmVcpu;
  GuestRam: new (size: number) => NativeGuestRam;
  EventFd: { new (initialValue?: number, flags?: number): NativeEventFd; readonly NONBLOCK: number; readonly SEMAPHORE: number };
  /**
   * Opens /dev/net/tun and attaches it to TAP `ifname` (IFF_TAP | IFF_NO_PI; '' lets the kernel pick tapN).
   * Throws Node-style errors (code/errno/syscall 'open' or 'ioctl'). Optional: addons built before it lack it.
   */
  openTap?: (ifname: string) => NativeTapHandle;
  /** Optional: addons built before it lack it. */
  fallocate?: NativeFallocate;
  /** Optional: addons built before it lack it. */
  PacketFd?: new (fd: number, maxFrameBytes: number) => NativePacketFd;
  /** Optional: addons built before it lack it. */
  IcmpSocket?: new (kind?: IcmpSocketKind | 'auto') => NativeIcmpSocket;
  vcpuIoctls: Record<VcpuIoctlName, [kind: number, structSize: number]>;
  runLayout: RunLayout;
  structSizes: StructSizes;
  kickSignal: number;
  napiVersion: number;
}

/** The package root: the nearest ancestor directory holding binding.gyp (works from lib/ and dist/lib/). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'binding.gyp')) && existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('nodevmm: cannot find the package root (binding.gyp) above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

let cached: NativeAddon | undefined;
let loadError: Error | undefined;

/** Loads the addon once (prebuilds/linux-x64 or build/Release, via node-gyp-build). Throws if it is not built. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  if (loadError) throw loadError;
  try {
    const require = createRequire(import.meta.url);
    const nodeGypBuild = require('node-gyp-build') as (root: string) => unknown;
    cached = nodeGypBuild(packageRoot()) as NativeAddon;
    return cached;
  } catch (e) {
    const cause = e instanceof Error ? e.message : String(e);
    loadError = new Error(`nodevmm native addon is not available (${cause}); build it with \`npm run build:native\``);
    throw loadError;
  }
}
