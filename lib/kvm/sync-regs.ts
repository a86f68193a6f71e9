/**
 * Registers at the last exit without ioctls (KVM_CAP_SYNC_REGS): with kvm_run.kvm_valid_regs set, KVM copies the
 * general and special registers into the kvm_run page at every exit to userspace. Completing a failed emulation
 * needs both; KVM_GET_REGS + KVM_GET_SREGS cost ~9 + ~14 µs on kvm_pvm, the copy nothing measurable (a PIO exit
 * round trip: 8.5 µs with or without it). Measured with a clac loop completed by hand: 30-42 µs per completion
 * with the two ioctls plus KVM_SET_REGS, 11-15 µs with all three through kvm_run.
 *
 * Read-only on purpose: registers written through kvm_run (kvm_dirty_regs) are applied at the next KVM_RUN even
 * when someone set them by ioctl in between (a machine reset after a stop), so writes stay on KVM_SET_REGS.
 *
 * It touches only the x86_64 uapi fields after the exit union, which RunLayout does not describe.
 */
import { Cap } from './constants.js';
import { decodeRegs, decodeSregs, REGS_SIZE, SREGS_SIZE, type Regs, type Sregs } from './structs.js';
import type { KvmVcpu } from './vcpu.js';

const KVM_SYNC_X86_REGS = 1;
const KVM_SYNC_X86_SREGS = 2;
const WANTED = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
// struct kvm_run on x86_64: a 32-byte header and a 256-byte exit union, then kvm_valid_regs, kvm_dirty_regs and
// s.regs (struct kvm_sync_regs: kvm_regs, kvm_sregs, kvm_vcpu_events).
const VALID_REGS = 288;
const SYNC_REGS = 304;
const SYNC_SREGS = SYNC_REGS + REGS_SIZE;

export class SyncedRegisters {
  private constructor(private readonly bytes: Uint8Array) {}

  /** Turns the copy on for `vcpu` (before its first KVM_RUN); undefined when this KVM cannot. */
  static enable(vcpu: KvmVcpu): SyncedRegisters | undefined {
    let supported: number;
    try {
      supported = vcpu.vm.checkExtension(Cap.SYNC_REGS);
    } catch {
      return undefined;
    }
    const bytes = vcpu.page.bytes;
    if ((supported & WANTED) !== WANTED || bytes.length < SYNC_SREGS + SREGS_SIZE) return undefined;
    const view = vcpu.page.view;
    view.setBigUint64(VALID_REGS, view.getBigUint64(VALID_REGS, true) | BigInt(WANTED), true);
    return new SyncedRegisters(bytes);
  }

  /** kvm_regs as of the last exit. */
  regs(): Regs {
    return decodeRegs(this.bytes.subarray(SYNC_REGS, SYNC_REGS + REGS_SIZE));
  }

  /** kvm_sregs as of the last exit. */
  sregs(): Sregs {
    return decodeSregs(this.bytes.subarray(SYNC_SREGS, SYNC_SREGS + SREGS_SIZE));
  }
}
