/**
 * runInline: KVM_RUN on the JS thread, interrupted whenever the event loop has work. Slices are set to a minute
 * here so that every event-loop callback observed during a run must have come from the I/O watcher or the
 * timer deadline, not from a slice ending.
 */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterEach, expect, it } from 'vitest';
import { u16 } from './asm.js';
import { createTestVm, describeKvm, enterRealMode, load, Recorder, type TestVm } from './harness.js';

const LONG_SLICE_MS = 60_000;
const SPIN = [0xeb, 0xfe]; // jmp $

describeKvm('KVM runInline (exits handled on the JS thread)', () => {
  let t: TestVm | undefined;
  afterEach(() => { t?.close(); t = undefined; });

  it('handles IO exits and returns the first unhandled exit', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [
      0xba, ...u16(0x60), // mov dx, 0x60
      0xec,               // in al, dx
      0xa2, ...u16(0x500), // mov [0x500], al
      0xee,               // out dx, al
      0xf4,               // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    const pio = new Recorder(new Map([[0x60, 0x3c]]));
    expect((await vcpu.runInline({ pio }, LONG_SLICE_MS)).reason).toBe('hlt');
    expect(pio.log).toEqual([
      { kind: 'read', address: 0x60, size: 1, value: 0x3c },
      { kind: 'write', address: 0x60, size: 1, value: 0x3c },
    ]);
    expect(t.ram.bytes[0x500]).toBe(0x3c);
  });

  it('timers fire while the guest spins (kicked out at each timer deadline)', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, SPIN);
    enterRealMode(vcpu, 0x1000);
    let ticks = 0;
    let runningDuringTick = true;
    const timer = setInterval(() => {
      ticks++;
      runningDuringTick &&= vcpu.isRunning;
      if (ticks === 5) vcpu.kick();
    }, 10);
    const exit = await vcpu.runInline({}, LONG_SLICE_MS);
    clearInterval(timer);
    expect(exit.reason).toBe('intr');
    expect(ticks).toBeGreaterThanOrEqual(5);
    expect(runningDuringTick).toBe(true);
  });

  it('timers fire while the guest halts in the kernel', async () => {
    t = createTestVm({ irqchip: true });
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [0xfa, 0xf4, 0xeb, 0xfd]); // cli; hlt; jmp hlt
    enterRealMode(vcpu, 0x1000);
    let ticks = 0;
    const timer = setInterval(() => { if (++ticks === 3) vcpu.kick(); }, 10);
    const exit = await vcpu.runInline({}, LONG_SLICE_MS);
    clearInterval(timer);
    expect(exit.reason).toBe('intr');
    expect(ticks).toBeGreaterThanOrEqual(3);
  });

  it('socket I/O is served while the guest spins (the watcher kicks KVM_RUN)', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, SPIN);
    enterRealMode(vcpu, 0x1000);
    const received: string[] = [];
    const server = createServer((sock) => {
      sock.on('data', (d) => {
        received.push(d.toString());
        expect(vcpu.isRunning).toBe(true);
        vcpu.kick();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    // Another thread connects and writes while this thread is inside KVM_RUN.
    const worker = new Worker(
      `const net = require('node:net');
       const { workerData } = require('node:worker_threads');
       const c = net.connect(workerData, '127.0.0.1', () => c.end('ping'));`,
      { eval: true, workerData: (server.address() as AddressInfo).port },
    );
    const exit = await vcpu.runInline({}, LONG_SLICE_MS);
    await once(worker, 'exit');
    server.close();
    expect(exit.reason).toBe('intr');
    expect(received.join('')).toBe('ping');
  });

  it('close() while running inline settles with "closed"', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, SPIN);
    enterRealMode(vcpu, 0x1000);
    const run = vcpu.runInline({});
    setTimeout(() => vcpu.close(), 20);
    expect((await run).reason).toBe('closed');
  });

  it('a worker thread can run inline and exit cleanly (its loop handles are closed on teardown)', async () => {
    // Plain JS in the worker (no TS loader there): uses the addon directly, as lib/kvm does.
    const worker = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const addon = require('node-gyp-build')(workerData);
       const sys = new addon.KvmSystem('/dev/kvm');
       const vm = new addon.KvmVm(sys, 0);
       const vcpu = new addon.KvmVcpu(vm, 0, sys.vcpuMmapSize());
       // From the reset state the vCPU fetches at 0xfffffff0, where there is no memory: any exit will do.
       const r = vcpu.runInline(2000000);
       vcpu.yieldThen(() => {
         vcpu.runInline(-1);
         parentPort.postMessage(r);
         vcpu.close(); vm.close(); sys.close();
       });`,
      { eval: true, workerData: process.cwd() },
    );
    const [first] = (await once(worker, 'message')) as [number];
    const [code] = (await once(worker, 'exit')) as [number];
    expect(Number.isInteger(first)).toBe(true); // an exit (0), a yield (1) or a KVM error (-errno): all fine here
    expect(code).toBe(0);
  });

  it('two vCPUs inline on one thread take turns (time slices) until both finish', async () => {
    t = createTestVm();
    const a = t.createVcpu(0);
    const b = t.createVcpu(1);
    load(t.ram, 0x1000, [
      0x80, 0x3e, ...u16(0x600), 0x01,  // wait0: cmp byte [0x600], 1
      0x75, 0xf9,                       //        jne wait0
      0xc6, 0x06, ...u16(0x601), 0x01,  //        mov byte [0x601], 1
      0xf4,                             //        hlt
    ]);
    load(t.ram, 0x2000, [
      0xc6, 0x06, ...u16(0x600), 0x01,  //        mov byte [0x600], 1
      0x80, 0x3e, ...u16(0x601), 0x01,  // wait1: cmp byte [0x601], 1
      0x75, 0xf9,                       //        jne wait1
      0xf4,                             //        hlt
    ]);
    enterRealMode(a, 0x1000);
    enterRealMode(b, 0x2000);
    const [ea, eb] = await Promise.all([a.runInline({}, 5), b.runInline({}, 5)]);
    expect([ea.reason, eb.reason]).toEqual(['hlt', 'hlt']);
  });
});
