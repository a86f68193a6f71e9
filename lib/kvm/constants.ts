/** KVM ABI constants used by nodevmm (values from the KVM API documentation / <linux/kvm.h>). */

export const KVM_API_VERSION = 12;

/** KVM_EXIT_* (kvm_run.exit_reason). */
export const ExitReason = {
  UNKNOWN: 0, EXCEPTION: 1, IO: 2, HYPERCALL: 3, DEBUG: 4, HLT: 5, MMIO: 6, IRQ_WINDOW_OPEN: 7, SHUTDOWN: 8,
  FAIL_ENTRY: 9, INTR: 10, SET_TPR: 11, TPR_ACCESS: 12, NMI: 16, INTERNAL_ERROR: 17, OSI: 18, PAPR_HCALL: 19,
  WATCHDOG: 21, EPR: 23, SYSTEM_EVENT: 24, IOAPIC_EOI: 26, HYPERV: 27, X86_RDMSR: 29, X86_WRMSR: 30,
  DIRTY_RING_FULL: 31, AP_RESET_HOLD: 32, X86_BUS_LOCK: 33, XEN: 34, NOTIFY: 37, MEMORY_FAULT: 39,
} as const;

export const IoDirection = { IN: 0, OUT: 1 } as const;

/** KVM_INTERNAL_ERROR_* (internal.suberror). */
export const InternalErrorSub = {
  EMULATION: 1, SIMUL_EX: 2, DELIVERY_EV: 3, UNEXPECTED_EXIT_REASON: 4,
} as const;
/** emulation_failure.flags bit: insn_size/insn_bytes are valid. */
export const EMULATION_FLAG_INSTRUCTION_BYTES = 1;

/** KVM_SYSTEM_EVENT_* (system_event.type). */
export const SystemEventType = { SHUTDOWN: 1, RESET: 2, CRASH: 3, WAKEUP: 4, SUSPEND: 5, SEV_TERM: 6 } as const;

/** KVM_CAP_* used here. */
export const Cap = {
  IRQCHIP: 0, HLT: 1, USER_MEMORY: 3, SET_TSS_ADDR: 4, EXT_CPUID: 7, NR_VCPUS: 9, NR_MEMSLOTS: 10, PIT: 11,
  SYNC_MMU: 16, IOMMU: 18, MP_STATE: 14, COALESCED_MMIO: 15, USER_NMI: 22, SET_GUEST_DEBUG: 23, IRQ_ROUTING: 25,
  SET_BOOT_CPU_ID: 34, IRQFD: 32, PIT2: 33, IOEVENTFD: 36, SET_IDENTITY_MAP_ADDR: 37, ADJUST_CLOCK: 39,
  VCPU_EVENTS: 41, PIT_STATE2: 35, XSAVE: 55, XCRS: 56, DEBUGREGS: 50, SIGNAL_MSI: 77, READONLY_MEM: 81,
  MAX_VCPUS: 66, IMMEDIATE_EXIT: 136, X86_DISABLE_EXITS: 143, MAX_VCPU_ID: 128, X86_USER_SPACE_MSR: 188,
  IRQFD_RESAMPLE: 82, TSC_DEADLINE_TIMER: 72, SYNC_REGS: 74, KVMCLOCK_CTRL: 76, SPLIT_IRQCHIP: 121,
} as const;

/** KVM_MEM_* flags of a user memory region. */
export const MemFlag = { LOG_DIRTY_PAGES: 1, READONLY: 2 } as const;

/** KVM_MP_STATE_*. */
export const MpState = { RUNNABLE: 0, UNINITIALIZED: 1, INIT_RECEIVED: 2, HALTED: 3, SIPI_RECEIVED: 4 } as const;

/** KVM_IRQFD_FLAG_* and KVM_IOEVENTFD_FLAG_*. */
export const IrqfdFlag = { DEASSIGN: 1, RESAMPLE: 2 } as const;
export const IoeventfdFlag = { DATAMATCH: 1, PIO: 2, DEASSIGN: 4 } as const;

/** KVM_IRQ_ROUTING_* entry types, and the in-kernel irqchip ids. */
export const IrqRoutingType = { IRQCHIP: 1, MSI: 2 } as const;
export const Irqchip = { PIC_MASTER: 0, PIC_SLAVE: 1, IOAPIC: 2 } as const;

/** KVM_PIT_SPEAKER_DUMMY for KVM_CREATE_PIT2. */
export const PIT_SPEAKER_DUMMY = 1;

/** KVM_GUESTDBG_* (x86). */
export const GuestDebug = {
  ENABLE: 0x1, SINGLESTEP: 0x2, USE_SW_BP: 0x10000, USE_HW_BP: 0x20000, INJECT_DB: 0x40000, INJECT_BP: 0x80000,
  BLOCKIRQ: 0x100000,
} as const;

/** KVM_VCPUEVENT_VALID_* flags for KVM_SET_VCPU_EVENTS. */
export const VcpuEventValid = { NMI_PENDING: 1, SIPI_VECTOR: 2, SHADOW: 4, SMM: 8, PAYLOAD: 0x10, TRIPLE_FAULT: 0x20 } as const;

/** MSR numbers nodevmm programs. */
export const Msr = {
  IA32_TSC: 0x10, IA32_APIC_BASE: 0x1b, IA32_SYSENTER_CS: 0x174, IA32_SYSENTER_ESP: 0x175, IA32_SYSENTER_EIP: 0x176,
  IA32_MISC_ENABLE: 0x1a0, IA32_PAT: 0x277, IA32_TSC_DEADLINE: 0x6e0, EFER: 0xc0000080, STAR: 0xc0000081,
  LSTAR: 0xc0000082, CSTAR: 0xc0000083, SFMASK: 0xc0000084, FS_BASE: 0xc0000100, GS_BASE: 0xc0000101,
  KERNEL_GS_BASE: 0xc0000102, TSC_AUX: 0xc0000103, KVM_SYSTEM_TIME_NEW: 0x4b564d01, KVM_WALL_CLOCK_NEW: 0x4b564d00,
} as const;

/** Control-register and EFER bits the tests and loaders use. */
export const Cr0 = { PE: 1, MP: 2, EM: 4, TS: 8, ET: 0x10, NE: 0x20, WP: 0x10000, AM: 0x40000, PG: 0x80000000 } as const;
export const Cr4 = { PSE: 0x10, PAE: 0x20, PGE: 0x80, OSFXSR: 0x200, OSXMMEXCPT: 0x400, OSXSAVE: 0x40000 } as const;
export const Efer = { SCE: 0x1, LME: 0x100, LMA: 0x400, NXE: 0x800 } as const;
