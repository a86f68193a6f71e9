/** The KVM system handle (/dev/kvm), and probeKvm() for callers and tests that need to know if KVM is usable. */
import { existsSync } from 'node:fs';
import { KVM_API_VERSION } from './constants.js';
import { EventFd } from './eventfd.js';
import { explainOpenError, isSystemError } from './errors.js';
import { GuestRam } from './guest-ram.js';
import { loadNative, type NativeAddon, type NativeKvmSystem } from './native.js';
import { type CpuidEntry, decodeCpuid } from './structs.js';
import { KvmVm } from './vm.js';

export const DEFAULT_KVM_PATH = '/dev/kvm';

export class Kvm {
  private closed = false;
  private mmapSize: number | undefined;

  private constructor(
    private readonly addon: NativeAddon,
    readonly native: NativeKvmSystem,
    readonly path: string,
  ) {}

  /**
   * Opens the KVM device. Errors keep Node's code/errno/syscall/path; EACCES and ENOENT carry a message that
   * says what to do. Throws if the API version is not 12.
   */
  static open(path: string = DEFAULT_KVM_PATH): Kvm {
    const addon = loadNative();
    let native: NativeKvmSystem;
    try {
      native = new addon.KvmSystem(path);
    } catch (e) {
      throw isSystemError(e) ? explainOpenError(e, path) : e;
    }
    const kvm = new Kvm(addon, native, path);
    const version = kvm.apiVersion();
    if (version !== KVM_API_VERSION) {
      native.close();
      throw new Error(`${path}: KVM API version ${version}, nodevmm needs ${KVM_API_VERSION}`);
    }
    return kvm;
  }

  get fd(): number { return this.native.fd; }
  apiVersion(): number { return this.native.apiVersion(); }
  /** KVM_CHECK_EXTENSION on the system fd: 0 = unsupported, otherwise capability-specific. */
  checkExtension(cap: number): number { return this.native.checkExtension(cap); }

  /** Size of the kvm_run mapping of each vCPU. */
  get vcpuMmapSize(): number {
    this.mmapSize ??= this.native.vcpuMmapSize();
    return this.mmapSize;
  }

  /** KVM_GET_SUPPORTED_CPUID. */
  supportedCpuid(): CpuidEntry[] { return decodeCpuid(this.native.supportedCpuid()); }

  /** KVM_GET_MSR_INDEX_LIST: MSRs KVM can save/restore. */
  msrIndexList(): number[] { return [...this.native.msrIndexList()]; }

  /** KVM_CREATE_VM (type 0 = default x86 VM). */
  createVm(type = 0): KvmVm {
    return new KvmVm(this.addon, new this.addon.KvmVm(this.native, type), this.vcpuMmapSize);
  }

  /**
   * Guest RAM block of `size` bytes (page multiple, at most 4 GiB: one JS ArrayBuffer), demand-zero, not
   * charged until touched. Back larger guests with several blocks and memory slots.
   */
  allocateRam(size: number): GuestRam {
    return new GuestRam(new this.addon.GuestRam(size));
  }

  createEventFd(initialValue = 0, options: { nonblock?: boolean; semaphore?: boolean } = {}): EventFd {
    const E = this.addon.EventFd;
    return new EventFd(new E(initialValue, (options.nonblock ? E.NONBLOCK : 0) | (options.semaphore ? E.SEMAPHORE : 0)));
  }

  /** Closes the system fd; VMs created from it stay usable. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close();
  }
}

export interface KvmProbe {
  usable: boolean;
  /** Why not (or what was found, when usable). */
  reason: string;
  /**
   * True when the host KVM module is kvm_pvm (nested, page-table based: supervisor code is emulated,
   * some instructions fail with KVM_EXIT_INTERNAL_ERROR). False on VT-x/AMD-V or when unknown.
   */
  pvm: boolean;
}

/** Can this process use KVM? Opens the device and creates (and closes) a VM. Never throws. */
export function probeKvm(path: string = DEFAULT_KVM_PATH): KvmProbe {
  const pvm = existsSync('/sys/module/kvm_pvm');
  let kvm: Kvm | undefined;
  try {
    kvm = Kvm.open(path);
    const vm = kvm.createVm();
    vm.close();
    return { usable: true, reason: `${path}: KVM API ${kvm.apiVersion()}${pvm ? ' (kvm_pvm host)' : ''}`, pvm };
  } catch (e) {
    return { usable: false, reason: e instanceof Error ? e.message : String(e), pvm };
  } finally {
    kvm?.close();
  }
}
