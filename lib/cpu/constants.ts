/** Architectural constants shared by the interpreter's modules. */

export const ES = 0, CS = 1, SS = 2, DS = 3, FS = 4, GS = 5, LDTR = 6, TR = 7;
export const SEG_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs', 'ldtr', 'tr'] as const;

export const GPR_NAMES = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;

// RFLAGS bits.
export const F_CF = 1 << 0, F_PF = 1 << 2, F_AF = 1 << 4, F_ZF = 1 << 6, F_SF = 1 << 7, F_TF = 1 << 8, F_IF = 1 << 9,
  F_DF = 1 << 10, F_OF = 1 << 11, F_IOPL = 3 << 12, F_NT = 1 << 14, F_RF = 1 << 16, F_VM = 1 << 17, F_AC = 1 << 18,
  F_VIF = 1 << 19, F_VIP = 1 << 20, F_ID = 1 << 21;
export const F_ARITH = F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF;

// CR0 / CR4 / EFER bits.
export const CR0_PE = 1, CR0_MP = 2, CR0_EM = 4, CR0_TS = 8, CR0_ET = 0x10, CR0_NE = 0x20, CR0_WP = 1 << 16, CR0_AM = 1 << 18,
  CR0_NW = 1 << 29, CR0_CD = 1 << 30, CR0_PG = 1 << 31;
export const CR4_VME = 1, CR4_PVI = 2, CR4_TSD = 4, CR4_DE = 8, CR4_PSE = 0x10, CR4_PAE = 0x20, CR4_MCE = 0x40, CR4_PGE = 0x80,
  CR4_PCE = 0x100, CR4_OSFXSR = 0x200, CR4_OSXMMEXCPT = 0x400, CR4_UMIP = 0x800, CR4_FSGSBASE = 0x10000;
/** CR4 bits this CPU accepts (anything else → #GP). */
export const CR4_SUPPORTED = CR4_VME | CR4_PVI | CR4_TSD | CR4_DE | CR4_PSE | CR4_PAE | CR4_MCE | CR4_PGE | CR4_PCE | CR4_OSFXSR | CR4_OSXMMEXCPT;
export const EFER_SCE = 1, EFER_LME = 1 << 8, EFER_LMA = 1 << 10, EFER_NXE = 1 << 11;

// Exception vectors.
export const DE = 0, DB = 1, NMI = 2, BP = 3, OF = 4, BR = 5, UD = 6, NM = 7, DF = 8, TS = 10, NP = 11, SSF = 12, GP = 13,
  PF = 14, MF = 16, AC = 17, MC = 18, XM = 19;

/** Page-fault error code bits. */
export const PFE_P = 1, PFE_W = 2, PFE_U = 4, PFE_RSVD = 8, PFE_I = 16;

/** Segment attribute word (VMX access-rights layout): type 0-3, S 4, DPL 5-6, P 7, AVL 12, L 13, D/B 14, G 15, unusable 16. */
export const SA_S = 1 << 4, SA_P = 1 << 7, SA_L = 1 << 13, SA_DB = 1 << 14, SA_G = 1 << 15, SA_UNUSABLE = 1 << 16;

// MSR numbers.
export const MSR_TSC = 0x10, MSR_APIC_BASE = 0x1b, MSR_FEATURE_CONTROL = 0x3a, MSR_BIOS_SIGN_ID = 0x8b, MSR_MTRRCAP = 0xfe,
  MSR_SYSENTER_CS = 0x174, MSR_SYSENTER_ESP = 0x175, MSR_SYSENTER_EIP = 0x176, MSR_MCG_CAP = 0x179, MSR_MCG_STATUS = 0x17a,
  MSR_MISC_ENABLE = 0x1a0, MSR_MTRR_DEF_TYPE = 0x2ff, MSR_PAT = 0x277, MSR_EFER = 0xc0000080, MSR_STAR = 0xc0000081,
  MSR_LSTAR = 0xc0000082, MSR_CSTAR = 0xc0000083, MSR_SFMASK = 0xc0000084, MSR_FS_BASE = 0xc0000100, MSR_GS_BASE = 0xc0000101,
  MSR_KERNEL_GS_BASE = 0xc0000102, MSR_TSC_AUX = 0xc0000103;

/** Software-TLB permission bits: read/write/execute for supervisor (S) and user (U), RAM-backed, global. */
export const T_RS = 1, T_WS = 2, T_XS = 4, T_RU = 8, T_WU = 16, T_XU = 32, T_RAM = 64, T_GLOBAL = 128;
