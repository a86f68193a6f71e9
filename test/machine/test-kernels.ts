/**
 * Tiny multiboot v1 kernels assembled by hand (ELF32, 32-bit protected-mode code): print a string on COM1
 * (polling LSR.THRE before each byte, as a real driver must) and end with a code written to isa-debug-exit.
 */
import { makeElf, makeMultibootHeader } from '../loader/images.js';

export const KERNEL_LOAD = 0x10_0000;

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** The code, then the NUL-terminated message. */
export function printAndExitCode(message: string, exitCode: number, base = KERNEL_LOAD): Uint8Array {
  const code = (msgAddr: number): number[] => [
    0xbe, ...u32(msgAddr), // mov esi, msg
    // next:
    0x66, 0xba, 0xfd, 0x03, // mov dx, 0x3fd (LSR)
    0xec, // wait: in al, dx
    0xa8, 0x20, // test al, 0x20 (THRE)
    0x74, 0xfb, // jz wait
    0xac, // lodsb
    0x84, 0xc0, // test al, al
    0x74, 0x07, // jz done
    0x66, 0xba, 0xf8, 0x03, // mov dx, 0x3f8 (THR)
    0xee, // out dx, al
    0xeb, 0xeb, // jmp next
    // done:
    0xb8, ...u32(exitCode), // mov eax, code
    0xe7, 0xf4, // out 0xf4, eax
    0xf4, // hlt
    0xeb, 0xfd, // jmp hlt
  ];
  const length = code(0).length;
  return Uint8Array.from([...code(base + length), ...Buffer.from(message, 'latin1'), 0]);
}

/** A spinning kernel: prints `message`, then loops forever incrementing a counter at `counterAddr` (for lifecycle tests). */
export function printAndSpin(message: string, counterAddr: number, base = KERNEL_LOAD): Uint8Array {
  const code = (msgAddr: number): number[] => [
    0xbe, ...u32(msgAddr),
    0x66, 0xba, 0xfd, 0x03, 0xec, 0xa8, 0x20, 0x74, 0xfb, 0xac, 0x84, 0xc0, 0x74, 0x07, 0x66, 0xba, 0xf8, 0x03, 0xee,
    0xeb, 0xeb,
    // done: spin: inc dword [counterAddr]; jmp spin
    0xff, 0x05, ...u32(counterAddr), // inc dword [abs]
    0xeb, 0xf8, // jmp spin (-8)
  ];
  const length = code(0).length;
  return Uint8Array.from([...code(base + length), ...Buffer.from(message, 'latin1'), 0]);
}

export function multibootElf(code: Uint8Array, base = KERNEL_LOAD): Uint8Array {
  return makeElf({
    elfClass: 32,
    entry: BigInt(base),
    segments: [{ paddr: base, data: code }],
    extra: makeMultibootHeader({ flags: 0 }),
  });
}
