/** Guests in each CPU mode doing port I/O, MMIO and RAM accesses, against the real /dev/kvm. */
import { afterEach, expect, it } from 'vitest';
import { u16, u32, u64 } from './asm.js';
import { createTestVm, describeKvm, enterLongMode, enterProtectedMode, enterRealMode, load, Recorder, type TestVm } from './harness.js';

describeKvm('KVM guests in real, protected and long mode', () => {
  let t: TestVm | undefined;
  afterEach(() => { t?.close(); t = undefined; });

  it('real mode: out + hlt reach the TS handler, then HLT is returned', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xba, ...u16(0x3f8), // mov dx, 0x3f8
      0xb0, 0x41,          // mov al, 'A'
      0xee,                // out dx, al
      0xf4,                // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    const pio = new Recorder();
    const exit = await vcpu.runLoop({ pio });
    expect(exit.reason).toBe('hlt');
    expect(pio.log).toEqual([{ kind: 'write', address: 0x3f8, size: 1, value: 0x41 }]);
    expect(vcpu.getRegs().rip).toBe(0x1007n); // after the 7 bytes of code
  });

  it('real mode: a PIO read is answered by TS and the guest stores it to RAM', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xba, ...u16(0x60),        // mov dx, 0x60
      0xed,                      // in ax, dx
      0xa3, ...u16(0x500),       // mov [0x500], ax
      0x66, 0xed,                // in eax, dx
      0x66, 0xa3, ...u16(0x504), // mov [0x504], eax
      0xec,                      // in al, dx
      0xa2, ...u16(0x508),       // mov [0x508], al
      0xf4,                      // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    const answers = [0xbeef, 0xdeadbeef, 0x7f];
    const sizes: number[] = [];
    const exit = await vcpu.runLoop({
      pio: { read: (port, size) => { expect(port).toBe(0x60); sizes.push(size); return answers.shift()!; }, write: () => {} },
    });
    expect(exit.reason).toBe('hlt');
    expect(sizes).toEqual([2, 4, 1]);
    const v = new DataView(t.ram.buffer);
    expect(v.getUint16(0x500, true)).toBe(0xbeef);
    expect(v.getUint32(0x504, true)).toBe(0xdeadbeef);
    expect(v.getUint8(0x508)).toBe(0x7f);
  });

  it('real mode: TS writes are visible to the guest and guest writes to the TS ArrayBuffer', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    new DataView(t.ram.buffer).setUint16(0x700, 0x1234, true); // written by TS before the run
    load(t.ram, 0x1000, [
      0xa1, ...u16(0x700),         // mov ax, [0x700]
      0xba, ...u16(0x99),          // mov dx, 0x99
      0xef,                        // out dx, ax       (reports what the guest read)
      0xc7, 0x06, ...u16(0x702), ...u16(0x55aa), // mov word [0x702], 0x55aa
      0xf4,                        // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    const pio = new Recorder();
    expect((await vcpu.runLoop({ pio })).reason).toBe('hlt');
    expect(pio.log).toEqual([{ kind: 'write', address: 0x99, size: 2, value: 0x1234 }]);
    expect(new DataView(t.ram.buffer).getUint16(0x702, true)).toBe(0x55aa);
  });

  it('32-bit protected mode: 32-bit out, MMIO write and read on an unbacked address', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xb8, ...u32(0xc0ffee11),             // mov eax, 0xc0ffee11
      0x66, 0xba, ...u16(0x510),            // mov dx, 0x510
      0xef,                                 // out dx, eax
      0xc7, 0x05, ...u32(0xd0000000), ...u32(0x12345678), // mov dword [0xd0000000], 0x12345678
      0xa1, ...u32(0xd0000010),             // mov eax, [0xd0000010]
      0xa3, ...u32(0x600),                  // mov [0x600], eax
      0xf4,                                 // hlt
    ]);
    enterProtectedMode(vcpu, t.ram, 0x1000);
    const pio = new Recorder();
    const mmio = new Recorder(new Map([[0xd0000010, 0xcafef00d]]));
    const exit = await vcpu.runLoop({ pio, mmio });
    expect(exit.reason).toBe('hlt');
    expect(pio.log).toEqual([{ kind: 'write', address: 0x510, size: 4, value: 0xc0ffee11 }]);
    expect(mmio.log).toEqual([
      { kind: 'write', address: 0xd0000000, size: 4, value: 0x12345678 },
      { kind: 'read', address: 0xd0000010, size: 4, value: 0xcafef00d },
    ]);
    expect(new DataView(t.ram.buffer).getUint32(0x600, true)).toBe(0xcafef00d);
    expect(vcpu.getSregs().cs.db).toBe(1);
  });

  it('an MMIO exit without a handler is returned with its address and data', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xb8, ...u32(0xa1b2c3d4),  // mov eax, 0xa1b2c3d4
      0xa3, ...u32(0xe0001000),  // mov [0xe0001000], eax
      0xf4,                      // hlt
    ]);
    enterProtectedMode(vcpu, t.ram, 0x1000);
    const exit = await vcpu.runLoop({});
    expect(exit.reason).toBe('mmio');
    if (exit.reason !== 'mmio') return;
    expect(exit.address).toBe(0xe0001000);
    expect(exit.isWrite).toBe(true);
    expect(exit.length).toBe(4);
    expect([...exit.data]).toEqual([0xd4, 0xc3, 0xb2, 0xa1]);
    // Resuming completes the write; the guest then halts.
    expect((await vcpu.runLoop({})).reason).toBe('hlt');
  });

  it('64-bit long mode with paging at CPL0: 64-bit registers, RAM and an 8-byte MMIO write', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0x48, 0xb8, ...u64(0x1122334455667788n),   // movabs rax, 0x1122334455667788
      0x48, 0xa3, ...u64(0x2000n),               // mov [0x2000], rax
      0x48, 0xa3, ...u64(0xd0000000n),           // mov [0xd0000000], rax   (8-byte MMIO)
      0x66, 0xba, ...u16(0x64),                  // mov dx, 0x64
      0xee,                                      // out dx, al
      0xf4,                                      // hlt
    ]);
    enterLongMode(vcpu, t.ram, 0x1000, 0);
    const pio = new Recorder();
    const mmio = new Recorder();
    const exit = await vcpu.runLoop({ pio, mmio });
    expect(exit.reason).toBe('hlt');
    expect(new DataView(t.ram.buffer).getBigUint64(0x2000, true)).toBe(0x1122334455667788n);
    expect(mmio.wide).toEqual([0x1122334455667788n]);
    expect(pio.log).toEqual([{ kind: 'write', address: 0x64, size: 1, value: 0x88 }]);
    const s = vcpu.getSregs();
    expect(s.cs.l).toBe(1);
    expect(s.efer & 0x400n).toBe(0x400n); // LMA
  });

  it('64-bit long mode at CPL3: out (IOPL 3), RAM writes, and an unhandled MMIO exit', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xb9, ...u32(1000),                        // mov ecx, 1000
      0x48, 0x31, 0xc0,                          // xor rax, rax
      // loop:
      0x48, 0x01, 0xc8,                          // add rax, rcx
      0xff, 0xc9,                                // dec ecx
      0x75, 0xf9,                                // jnz loop
      0x48, 0xa3, ...u64(0x3000n),               // mov [0x3000], rax
      0x66, 0xba, ...u16(0x70),                  // mov dx, 0x70
      0xef,                                      // out dx, eax
      0xa3, ...u64(0xd0000000n),                 // mov [0xd0000000], eax  (no MMIO handler: returned)
    ]);
    enterLongMode(vcpu, t.ram, 0x1000, 3);
    const pio = new Recorder();
    const exit = await vcpu.runLoop({ pio });
    expect(exit.reason).toBe('mmio');
    if (exit.reason === 'mmio') expect(exit.address).toBe(0xd0000000);
    expect(new DataView(t.ram.buffer).getBigUint64(0x3000, true)).toBe(500500n);
    expect(pio.log).toEqual([{ kind: 'write', address: 0x70, size: 4, value: 500500 }]);
    expect(vcpu.getSregs().cs.dpl).toBe(3);
  });
});
