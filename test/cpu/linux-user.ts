/**
 * Test-only Linux user-mode runner: loads a static x86-64 ELF (e.g. Debian's busybox-static) into a
 * StandaloneMachine, builds the initial stack (argv, envp, auxv) and runs it at CPL3. SYSCALL enters a CPL0 stub
 * whose first byte is hooked: the host emulates the handful of system calls glibc start-up and simple applets need,
 * then the stub's SYSRETQ returns to user mode. This exercises the interpreter with real compiler/glibc code.
 */
import { readFileSync } from 'node:fs';
import { exportState, getRegister, importState, setRegister, StandaloneMachine } from '../../lib/cpu/index.js';

const STUB = 0xffff_ffff_8000_0000n;
const STACK_TOP = 0x7fff_fff0_0000n;
const STACK_SIZE = 0x40000;
const MMAP_BASE = 0x7f00_0000_0000n;

export interface LinuxRun {
  stdout: string;
  exitCode: number | null;
  instructions: number;
  syscalls: string[];
  stop: string;
}

export function runStaticElf(path: string, argv: string[], maxInstructions = 200_000_000): LinuxRun {
  const m = new StandaloneMachine(256 << 20, 4 << 20);
  const cpu = m.cpu;
  const elf = readFileSync(path);
  const dv = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const entry = dv.getBigUint64(24, true);
  const phoff = Number(dv.getBigUint64(32, true)), phentsize = dv.getUint16(54, true), phnum = dv.getUint16(56, true);
  let brk = 0n;
  let phdrAddr = 0n;
  for (let k = 0; k < phnum; k++) {
    const p = phoff + k * phentsize;
    const type = dv.getUint32(p, true);
    const off = Number(dv.getBigUint64(p + 8, true)), vaddr = dv.getBigUint64(p + 16, true);
    const filesz = Number(dv.getBigUint64(p + 32, true)), memsz = Number(dv.getBigUint64(p + 40, true));
    if (type === 6) phdrAddr = vaddr;
    if (type !== 1) continue;
    const start = vaddr & ~0xfffn, end = (vaddr + BigInt(memsz) + 0xfffn) & ~0xfffn;
    m.map(start, Number(end - start));
    m.writeVirtual(vaddr, new Uint8Array(elf.buffer, elf.byteOffset + off, filesz));
    if (off === 0) phdrAddr = vaddr + BigInt(phoff);
    if (end > brk) brk = end;
  }
  const brkStart = brk;
  let mmapNext = MMAP_BASE;
  m.map(STACK_TOP - BigInt(STACK_SIZE), STACK_SIZE);

  // Initial stack: argc, argv[], NULL, envp[], NULL, auxv, then strings and AT_RANDOM bytes.
  const strings: bigint[] = [];
  let sp = STACK_TOP - 0x100n;
  const pushString = (s: string): bigint => {
    const b = new TextEncoder().encode(s + '\0');
    sp -= BigInt(b.length);
    m.writeVirtual(sp, b);
    return sp;
  };
  for (const a of argv) strings.push(pushString(a));
  const env = [pushString('PATH=/bin'), pushString('HOME=/')];
  sp -= 16n;
  const random = sp;
  m.writeVirtual(random, new Uint8Array(16).map((_, k) => k * 37 + 1));
  sp &= ~15n;
  const auxv: Array<[number, bigint]> = [[3, phdrAddr], [4, 56n], [5, BigInt(phnum)], [6, 4096n], [9, entry], [25, random], [23, 0n], [11, 0n], [12, 0n], [13, 0n], [14, 0n], [16, 0n], [0, 0n]];
  const words: bigint[] = [BigInt(argv.length), ...strings, 0n, ...env, 0n, ...auxv.flatMap(([k, v]) => [BigInt(k), v])];
  if (words.length % 2) sp -= 8n;
  sp -= BigInt(words.length * 8);
  const buf = new Uint8Array(words.length * 8);
  const bdv = new DataView(buf.buffer);
  words.forEach((w, k) => bdv.setBigUint64(k * 8, w, true));
  m.writeVirtual(sp, buf);

  // Kernel side: GDT-less SYSCALL/SYSRET only need STAR/LSTAR; the stub is "sysretq" (48 0f 07).
  m.map(STUB, 0x1000, { write: false, exec: true, user: false });
  m.writeVirtual(STUB, new Uint8Array([0x48, 0x0f, 0x07]));
  const st = exportState(cpu);
  st.msrs.set(0xc0000081, (0x10n << 48n) | (0x08n << 32n));
  st.msrs.set(0xc0000082, STUB);
  st.msrs.set(0xc0000084, 0x700n);
  st.sregs.efer |= 1n; // SCE
  const user = { base: 0n, limit: 0xffffffff, type: 0xb, present: 1, dpl: 3, db: 0, s: 1, l: 1, g: 1, avl: 0, unusable: 0 };
  st.sregs.cs = { ...user, selector: 0x23 };
  st.sregs.ss = { ...user, selector: 0x1b, type: 3, l: 0, db: 1 };
  st.regs.rsp = sp;
  st.regs.rip = entry;
  st.regs.rdx = 0n;
  importState(cpu, st);
  cpu.exceptionsToHost = true;

  let stdout = '';
  let exitCode: number | null = null;
  const syscalls: string[] = [];
  const ENOSYS = -38n, EINVAL = -22n;
  // The run loop stops at the stub (run's `until`), the host handles the call, then execution continues at SYSRETQ.
  const handleSyscall = (c: typeof cpu): void => {
    {
      const nr = Number(getRegister(c, 'rax'));
      const a = [getRegister(c, 'rdi'), getRegister(c, 'rsi'), getRegister(c, 'rdx'), getRegister(c, 'r10'), getRegister(c, 'r8'), getRegister(c, 'r9')] as bigint[];
      syscalls.push(String(nr));
      let ret: bigint = ENOSYS;
      switch (nr) {
        case 1: case 20: { // write / writev
          if (nr === 1) { stdout += new TextDecoder().decode(m.readVirtual(a[1]!, Number(a[2]!))); ret = a[2]!; } else {
            let n = 0n;
            for (let k = 0n; k < a[2]!; k++) {
              const iov = m.readVirtual(a[1]! + k * 16n, 16); const idv = new DataView(iov.buffer);
              const base = idv.getBigUint64(0, true), len = idv.getBigUint64(8, true);
              stdout += new TextDecoder().decode(m.readVirtual(base, Number(len))); n += len;
            }
            ret = n;
          }
          break;
        }
        case 12: { // brk
          if (a[0]! > brk) { const end = (a[0]! + 0xfffn) & ~0xfffn; if (end > brk) m.map(brk, Number(end - brk)); brk = end; }
          ret = a[0] === 0n || a[0]! < brkStart ? brk : a[0]!;
          break;
        }
        case 9: { // mmap (anonymous only)
          const len = (a[1]! + 0xfffn) & ~0xfffn;
          if ((a[3]! & 0x20n) === 0n) { ret = -19n; break; }
          ret = mmapNext; m.map(mmapNext, Number(len)); mmapNext += len + 0x1000n;
          break;
        }
        case 10: case 11: case 13: case 14: case 28: ret = 0n; break; // mprotect, munmap, rt_sigaction, rt_sigprocmask, madvise
        case 158: // arch_prctl
          if (a[0] === 0x1002n) { setRegister(c, 'fs_base', a[1]!); ret = 0n; } else ret = EINVAL;
          break;
        case 218: ret = 1000n; break; // set_tid_address
        case 273: case 334: ret = ENOSYS; break; // set_robust_list, rseq
        case 302: ret = ENOSYS; break; // prlimit64
        case 39: case 102: case 104: case 107: case 108: case 110: ret = nr === 39 || nr === 110 ? 1000n : 0n; break; // getpid/getuid/getgid/geteuid/getegid/getppid
        case 16: ret = -25n; break; // ioctl → ENOTTY
        case 318: { const n = Number(a[1]!); m.writeVirtual(a[0]!, new Uint8Array(n).map((_, k) => (k * 13 + 7) & 0xff)); ret = a[1]!; break; } // getrandom
        case 60: case 231: exitCode = Number(a[0]! & 0xffn); ret = 0n; break;
        default: ret = ENOSYS;
      }
      setRegister(c, 'rax', BigInt.asUintN(64, ret));
    }
  };
  let stop = 'count';
  let executed = 0;
  while (executed < maxInstructions) {
    const before = cpu.icount;
    const r = cpu.run({ maxInstructions: Math.min(10_000_000, maxInstructions - executed), until: STUB });
    executed += cpu.icount - before;
    if (r.reason === 'until') {
      handleSyscall(cpu);
      if (exitCode !== null) { stop = 'exit'; break; }
      continue;
    }
    if (r.reason === 'count') continue;
    stop = r.reason === 'exception' ? `exception ${r.vector} (error ${r.errorCode}) at rip 0x${getRegister(cpu, 'rip').toString(16)} cr2 0x${getRegister(cpu, 'cr2').toString(16)}` : JSON.stringify(r);
    break;
  }
  return { stdout, exitCode, instructions: executed, syscalls, stop };
}
