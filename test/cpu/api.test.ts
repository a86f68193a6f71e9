/** Library API: standalone map/unmap, registers by name, hooks, state export/import and stepExternal. */
import { describe, expect, it } from 'vitest';
import { exportState, getRegister, importState, setRegister, StandaloneMachine, stepExternal } from '../../lib/cpu/index.js';
import { assemble } from './harness.js';

const CODE = 0x400000n, DATA = 0x600000n, STACK = 0x7ff000n;

function machine(src: string): StandaloneMachine {
  const m = new StandaloneMachine(32 << 20);
  m.map(CODE, 0x10000, { write: false, exec: true, user: true });
  m.map(DATA, 0x10000, { write: true, exec: false, user: true });
  m.map(STACK, 0x1000, { write: true, exec: false, user: true });
  m.writeVirtual(CODE, assemble(src, 64, Number(CODE)));
  setRegister(m.cpu, 'rip', CODE);
  setRegister(m.cpu, 'rsp', STACK + 0x1000n);
  return m;
}

describe('cpu API', () => {
  it('runs mapped code, reads/writes registers by name, stops at until', () => {
    const m = machine(`
  mov rax, 0x600000
  mov qword ptr [rax], 0x1234
  mov ebx, [rax]
  add bx, 1
  mov ah, 0x7f
end:
  nop
`);
    const end = CODE + 0x17n;
    const r = m.cpu.run({ until: end, maxInstructions: 100 });
    expect(r.reason).toBe('until');
    expect(getRegister(m.cpu, 'ebx')).toBe(0x1235);
    expect(getRegister(m.cpu, 'bx')).toBe(0x1235);
    expect(getRegister(m.cpu, 'ah')).toBe(0x7f);
    expect(getRegister(m.cpu, 'rax')).toBe(0x607f00n);
    expect(m.readVirtual(DATA, 2)).toEqual(new Uint8Array([0x34, 0x12]));
    setRegister(m.cpu, 'r9d', 0xffffffff);
    expect(getRegister(m.cpu, 'r9')).toBe(0xffffffffn);
  });

  it('reports page faults on non-writable, unmapped and non-executable memory to the host', () => {
    const m = machine('mov byte ptr [0x400000], 1');
    expect(m.cpu.run({ maxInstructions: 10 })).toEqual({ reason: 'exception', vector: 14, errorCode: 3 });
    expect(getRegister(m.cpu, 'cr2')).toBe(0x400000n);
    expect(getRegister(m.cpu, 'rip')).toBe(CODE);
    const m2 = machine('mov rax, [0x600000]');
    m2.unmap(DATA, 0x1000);
    expect(m2.cpu.run({ maxInstructions: 10 })).toEqual({ reason: 'exception', vector: 14, errorCode: 0 });
    expect(getRegister(m2.cpu, 'cr2')).toBe(0x600000n);
    const m3 = machine('jmp rax');
    setRegister(m3.cpu, 'rax', DATA);
    expect(m3.cpu.run({ maxInstructions: 10 })).toEqual({ reason: 'exception', vector: 14, errorCode: 0x11 });
    expect(getRegister(m3.cpu, 'cr2')).toBe(DATA);
  });

  it('code hooks stop execution; port hooks see I/O', () => {
    const m = machine(`
  mov dx, 0x3f8
  mov al, 0x41
  out dx, al
  in al, dx
  nop
  nop
`);
    const ports: string[] = [];
    m.cpu.portHook = (_c, kind, port, size, value) => { ports.push(`${kind} ${port.toString(16)} ${size} ${value.toString(16)}`); };
    m.cpu.codeHooks.push({ begin: Number(CODE) + 9, end: Number(CODE) + 10, fn: () => true });
    const r = m.cpu.run({ maxInstructions: 100 });
    expect(r.reason).toBe('hook');
    expect(ports).toEqual(['out 3f8 1 41', 'in 3f8 1 ff']);
  });

  it('exported state imported into a fresh CPU continues identically', () => {
    const src = `
  mov rcx, 50
  xor eax, eax
1: imul rax, rax, 7
  add rax, rcx
  ror rax, 3
  dec rcx
  jnz 1b
  hlt`;
    const a = machine(src);
    a.cpu.run({ maxInstructions: 60 });
    const state = exportState(a.cpu);
    const b = machine(src);
    importState(b.cpu, state);
    expect(a.cpu.run({ maxInstructions: 10_000 }).reason).toBe('hlt');
    expect(b.cpu.run({ maxInstructions: 10_000 }).reason).toBe('hlt');
    expect(getRegister(b.cpu, 'rax')).toBe(getRegister(a.cpu, 'rax'));
    expect(exportState(b.cpu).regs).toEqual(exportState(a.cpu).regs);
  });

  it('MOVBE runs only when the CPUID in effect advertises it (e.g. the KVM vCPU\'s, via cpuidFilter)', () => {
    const src = `
  mov rax, 0x1122334455667788
  movbe qword ptr [0x600000], rax
  movbe ebx, dword ptr [0x600000]
  movbe cx, word ptr [0x600006]
`;
    const a = machine(src);
    expect(a.cpu.run({ maxInstructions: 2 })).toEqual({ reason: 'exception', vector: 6, errorCode: -1 });
    const b = machine(src);
    b.cpu.cpuidFilter = (leaf, _sub, r) => (leaf === 1 ? [r[0], r[1], r[2] | (1 << 22), r[3]] : r);
    expect(b.cpu.run({ maxInstructions: 4 }).reason).toBe('count');
    expect(b.readVirtual(DATA, 8)).toEqual(new Uint8Array([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]));
    expect(getRegister(b.cpu, 'rbx')).toBe(0x11223344n);
    expect(getRegister(b.cpu, 'cx')).toBe(0x7788);
  });

  it('stepExternal executes exactly one instruction that KVM cannot emulate (popcnt, lock cmpxchg16b)', () => {
    const m = machine(`
  popcnt rbx, rax
  lock cmpxchg16b [rsi]
`);
    setRegister(m.cpu, 'rax', 0xf0f0n);
    setRegister(m.cpu, 'rsi', DATA);
    const s0 = exportState(m.cpu);
    const { state: s1, stop } = stepExternal(s0, m.memory);
    expect(stop.reason).toBe('count');
    expect(s1.regs.rbx).toBe(8n);
    expect(s1.regs.rip).toBe(CODE + 5n);
    // cmpxchg16b: memory is 0, RDX:RAX = 0:0xf0f0 → mismatch, loads RDX:RAX from memory, ZF = 0.
    const { state: s2 } = stepExternal(s1, m.memory);
    expect(s2.regs.rax).toBe(0n);
    expect(s2.regs.rflags & 0x40n).toBe(0n);
    expect(s2.regs.rip).toBe(CODE + 10n);
  });
});
