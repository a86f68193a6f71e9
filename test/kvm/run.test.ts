/** The exit loop's threading: event loop stays free, kick, close while running, SMP, handler errors. */
import { afterEach, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { u16 } from './asm.js';
import { createTestVm, describeKvm, enterRealMode, load, Recorder, type TestVm } from './harness.js';

const SPIN = [0xeb, 0xfe]; // jmp $

/** Counts setInterval ticks while `during` runs. */
async function countTicks<T>(during: () => Promise<T>): Promise<{ ticks: number; result: T }> {
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 5);
  try {
    const result = await during();
    return { ticks, result };
  } finally {
    clearInterval(timer);
  }
}

describeKvm('KVM run loop threading', () => {
  let t: TestVm | undefined;
  afterEach(() => { t?.close(); t = undefined; });

  it('the event loop keeps serving timers while the guest spins, and kick stops it', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, SPIN);
    enterRealMode(vcpu, 0x1000);
    const { ticks, result } = await countTicks(async () => {
      const run = vcpu.runLoop({});
      await sleep(150);
      expect(vcpu.isRunning).toBe(true);
      expect(vcpu.kick()).toBe(true);
      return run;
    });
    expect(result.reason).toBe('intr');
    expect(ticks).toBeGreaterThan(0);
    expect(vcpu.kick()).toBe(false); // parked now: nothing to kick
    expect(vcpu.getRegs().rip).toBe(0x1000n); // still on the jmp $
  });

  it('the event loop keeps serving timers while the guest halts in the kernel, and kick wakes it', async () => {
    t = createTestVm({ irqchip: true }); // with the in-kernel irqchip, HLT blocks inside KVM_RUN
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xfa,  // cli
      0xf4,  // hlt      (never woken: interrupts are off)
      0xeb, 0xfd, // jmp back to hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    const { ticks, result } = await countTicks(async () => {
      const run = vcpu.runLoop({});
      await sleep(150);
      vcpu.kick();
      return run;
    });
    expect(result.reason).toBe('intr');
    expect(ticks).toBeGreaterThan(0);
  });

  it('a kicked guest resumes where it stopped', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      // wait:
      0x80, 0x3e, ...u16(0x600), 0x00,  // cmp byte [0x600], 0
      0x74, 0xf9,                       // je wait
      0xba, ...u16(0x42),               // mov dx, 0x42
      0xee,                             // out dx, al
      0xf4,                             // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    const pio = new Recorder();
    const first = vcpu.runLoop({ pio });
    await sleep(50);
    vcpu.kick();
    expect((await first).reason).toBe('intr');
    t.ram.bytes[0x600] = 1; // release the guest
    expect((await vcpu.runLoop({ pio })).reason).toBe('hlt');
    expect(pio.log.map((a) => a.address)).toEqual([0x42]);
  });

  it('close() of a running vCPU kicks and joins its thread and settles runLoop with "closed"', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, SPIN);
    enterRealMode(vcpu, 0x1000);
    const run = vcpu.runLoop({});
    await sleep(30);
    vcpu.close();
    expect((await run).reason).toBe('closed');
    vcpu.close(); // idempotent
    await expect(vcpu.runLoop({})).rejects.toMatchObject({ code: 'EBADF' });
  });

  it('two vCPUs run at the same time (each waits for a flag only the other sets)', async () => {
    t = createTestVm();
    const a = t.createVcpu(0);
    const b = t.createVcpu(1);
    load(t.ram, 0x1000, [
      // vCPU 0: wait for [0x600] = 1 (set by vCPU 1), then set [0x601] = 1 and halt
      0x80, 0x3e, ...u16(0x600), 0x01,  // wait0: cmp byte [0x600], 1
      0x75, 0xf9,                       //        jne wait0
      0xc6, 0x06, ...u16(0x601), 0x01,  //        mov byte [0x601], 1
      0xf4,                             //        hlt
    ]);
    load(t.ram, 0x2000, [
      // vCPU 1: set [0x600] = 1, wait for [0x601] = 1, then halt
      0xc6, 0x06, ...u16(0x600), 0x01,  //        mov byte [0x600], 1
      0x80, 0x3e, ...u16(0x601), 0x01,  // wait1: cmp byte [0x601], 1
      0x75, 0xf9,                       //        jne wait1
      0xf4,                             //        hlt
    ]);
    enterRealMode(a, 0x1000);
    enterRealMode(b, 0x2000);
    const [ea, eb] = await Promise.all([a.runLoop({}), b.runLoop({})]);
    expect(ea.reason).toBe('hlt');
    expect(eb.reason).toBe('hlt');
    expect([t.ram.bytes[0x600], t.ram.bytes[0x601]]).toEqual([1, 1]);
  });

  it('a throwing handler rejects runLoop and leaves the vCPU usable', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xba, ...u16(0x3f8), // mov dx, 0x3f8
      0xee,                // out dx, al
      0xf4,                // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    await expect(vcpu.runLoop({ pio: { read: () => 0, write: () => { throw new Error('device broke'); } } })).rejects.toThrow('device broke');
    expect((await vcpu.runLoop({ pio: new Recorder() })).reason).toBe('hlt');
  });

  it('runSync runs the guest on the calling thread with the same dispatch', () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xba, ...u16(0x3f8), // mov dx, 0x3f8
      0xb0, 0x58,          // mov al, 'X'
      0xee,                // out dx, al
      0xf4,                // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    const pio = new Recorder();
    expect(vcpu.runSync({ pio }).reason).toBe('hlt');
    expect(pio.log).toEqual([{ kind: 'write', address: 0x3f8, size: 1, value: 0x58 }]);
  });
});
