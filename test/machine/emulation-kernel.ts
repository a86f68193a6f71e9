/**
 * A multiboot test kernel that executes, at CPL0 in 32-bit protected mode, the instructions emulating KVM hosts
 * (kvm_pvm) cannot emulate: popcnt (register and memory forms), stac/clac, and int3 through
 * an IDT it sets up. It stores each result at RESULTS, then DONE_MAGIC at RESULTS + 0x1c, and spins.
 * Like Linux, it uses stac/clac only when CPUID reports SMAP (recorded at RESULTS + 0x20), and then its #BP
 * handler starts with clac as Linux's exception entry does — so completing int3 is followed at once by
 * completing the handler's clac.
 */
import { BOOT_CS_SELECTOR } from '../../lib/machine/boot/gdt.js';
import { KERNEL_LOAD } from './test-kernels.js';

export const RESULTS = 0x8000;
export const DONE_MAGIC = 0xd0e;
const IDT = 0x6000;
const IDTR = 0x6100;

const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const movMemImm = (addr: number, imm: number): number[] => [0xc7, 0x05, ...u32(addr), ...u32(imm)];

export interface EmulationResults {
  popcntReg: number; // popcnt(0xF0F0) = 8
  popcntMemEarly: number; // popcnt(dword [RESULTS]) = popcnt(8) = 1
  flagsAfterStac: number; // AC (bit 18) set
  flagsAfterClac: number; // AC clear
  int3Handler: number; // 0xB9B9B9B9 written by the #BP handler
  afterInt3: number; // 1: execution continued after the handler's iret
  popcntMem: number; // popcnt(dword [RESULTS]) = popcnt(8) = 1
  done: number;
  smap: number; // 1 when CPUID.7.0:EBX.SMAP is set (stac/clac were executed)
}

/** Bytes of the results area readResults() needs. */
export const RESULTS_SIZE = 36;
const SMAP_FLAG = RESULTS + 32;

export function emulationKernel(base = KERNEL_LOAD): Uint8Array {
  const stacClac = [
    0x0f, 0x01, 0xcb, 0x9c, 0x58, 0xa3, ...u32(RESULTS + 8), // stac; pushfd; pop eax; mov [RESULTS+8], eax
    0x0f, 0x01, 0xca, 0x9c, 0x58, 0xa3, ...u32(RESULTS + 12), // clac; pushfd; pop eax; mov [RESULTS+12], eax
    ...movMemImm(SMAP_FLAG, 1),
  ];
  const main = (handler: number): number[] => [
    0xbb, ...u32(0xf0f0), // mov ebx, 0xF0F0
    0xf3, 0x0f, 0xb8, 0xc3, // popcnt eax, ebx
    0xa3, ...u32(RESULTS), // mov [RESULTS], eax
    // (movbe is not here: without MOVBE in the host's supported CPUID, KVM's emulator rightly raises #UD.)
    0xf3, 0x0f, 0xb8, 0x0d, ...u32(RESULTS), // popcnt ecx, [RESULTS]  (memory operand: popcnt(8) = 1)
    0x89, 0x0d, ...u32(RESULTS + 4), // mov [RESULTS+4], ecx
    0xb8, ...u32(7), 0x31, 0xc9, 0x0f, 0xa2, // mov eax, 7; xor ecx, ecx; cpuid
    0x0f, 0xba, 0xe3, 20, // bt ebx, 20 (SMAP)
    0x73, stacClac.length, // jnc past the stac/clac block
    ...stacClac,
    // IDT entry 3: 32-bit interrupt gate to the handler; IDTR = { 0x1f, IDT }.
    ...movMemImm(IDT + 24, ((BOOT_CS_SELECTOR << 16) | (handler & 0xffff)) >>> 0),
    ...movMemImm(IDT + 28, ((handler & 0xffff0000) | 0x8e00) >>> 0),
    0x66, 0xc7, 0x05, ...u32(IDTR), 0x1f, 0x00, // mov word [IDTR], 0x1f
    ...movMemImm(IDTR + 2, IDT),
    0x0f, 0x01, 0x1d, ...u32(IDTR), // lidt [IDTR]
    0xcc, // int3
    ...movMemImm(RESULTS + 20, 1),
    0xf3, 0x0f, 0xb8, 0x15, ...u32(RESULTS), // popcnt edx, [RESULTS]
    0x89, 0x15, ...u32(RESULTS + 24), // mov [RESULTS+24], edx
    ...movMemImm(RESULTS + 28, DONE_MAGIC),
    0xeb, 0xfe, // jmp $
  ];
  const handlerCode = [
    0xf6, 0x05, ...u32(SMAP_FLAG), 0x01, // test byte [SMAP_FLAG], 1
    0x74, 0x03, // jz +3
    0x0f, 0x01, 0xca, // clac (Linux's exception entry starts with it)
    ...movMemImm(RESULTS + 16, 0xb9b9b9b9),
    0xcf, // iretd
  ];
  const handler = base + main(0).length;
  return Uint8Array.from([...main(handler), ...handlerCode]);
}

export function readResults(view: DataView): EmulationResults {
  const at = (i: number): number => view.getUint32(i * 4, true);
  return {
    popcntReg: at(0), popcntMemEarly: at(1), flagsAfterStac: at(2), flagsAfterClac: at(3), int3Handler: at(4), afterInt3: at(5),
    popcntMem: at(6), done: at(7), smap: at(8),
  };
}
