/** Object lifetimes (no fd leaks, idempotent close) and Node-style errors. */
import { readdirSync } from 'node:fs';
import { expect, it } from 'vitest';
import { Cap, Kvm, KvmError, probeKvm } from '../../lib/kvm/index.js';
import { explainOpenError } from '../../lib/kvm/errors.js';
import { createTestVm, describeKvm, enterRealMode, load } from './harness.js';

const openFds = (): number => readdirSync('/proc/self/fd').length;

describeKvm('KVM object lifetimes and errors', () => {
  it('100 create/run/close cycles leak no file descriptors', async () => {
    // Warm up once so lazily opened fds (e.g. the addon itself) are not counted.
    createTestVm().close();
    const before = openFds();
    for (let i = 0; i < 100; i++) {
      const t = createTestVm({ irqchip: i % 20 === 0 });
      const vcpu = t.createVcpu(0);
      const efd = t.kvm.createEventFd();
      load(t.ram, 0x1000, [0xf4]); // hlt
      enterRealMode(vcpu, 0x1000);
      if (i % 10 === 0) {
        // Also start (and join) a run thread in some cycles: without an irqchip the guest's HLT ends the run;
        // with one, HLT blocks in the kernel and close() must kick and join the running thread.
        const run = vcpu.runLoop({});
        if (i % 20 === 0) {
          vcpu.close();
          expect((await run).reason).toBe('closed');
        } else {
          expect((await run).reason).toBe('hlt');
        }
      }
      efd.close();
      t.close();
      t.close(); // idempotent
    }
    expect(openFds()).toBe(before);
  });

  it('with an in-kernel irqchip a halted guest stays in KVM_RUN until kicked', () => {
    const t = createTestVm({ irqchip: true });
    const vcpu = t.createVcpu(0);
    load(t.ram, 0x1000, [0xfa, 0xf4]); // cli; hlt
    enterRealMode(vcpu, 0x1000);
    const run = vcpu.runLoop({});
    setTimeout(() => vcpu.kick(), 20);
    return run.then((exit) => { expect(exit.reason).toBe('intr'); t.close(); });
  });

  it('opening a missing device fails with code/errno/syscall/path and a hint', () => {
    let err: unknown;
    try { Kvm.open('/nonexistent/kvm'); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'ENOENT', errno: -2, syscall: 'open', path: '/nonexistent/kvm' });
    expect((err as Error).message).toMatch(/load kvm_intel\/kvm_amd or use --accel interp/);
    const p = probeKvm('/nonexistent/kvm');
    expect(p.usable).toBe(false);
    expect(p.reason).toMatch(/ENOENT/);
  });

  it('opening something that is not KVM fails with the ioctl error', () => {
    expect(() => Kvm.open('/dev/null')).toThrow(expect.objectContaining({ code: 'ENOTTY', syscall: 'ioctl(KVM_GET_API_VERSION)' }));
  });

  it('kernel errors from vCPU ioctls are KvmErrors; closed objects report EBADF', () => {
    const t = createTestVm();
    const vcpu = t.createVcpu(0);
    expect(() => t.createVcpu(0)).toThrow(expect.objectContaining({ code: 'EEXIST', syscall: 'ioctl(KVM_CREATE_VCPU)' }));
    expect(() => vcpu.getMsrs([0xdeadbeef])).toThrow(KvmError);
    expect(t.vm.checkExtension(Cap.USER_MEMORY)).toBeGreaterThan(0);
    vcpu.close();
    let err: unknown;
    try { vcpu.getRegs(); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(KvmError);
    expect(err).toMatchObject({ code: 'EBADF', errno: -9, syscall: 'ioctl(KVM_GET_REGS)' });
    t.close();
    expect(() => t.vm.irqLine(1, true)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('register files round-trip through KVM', () => {
    const t = createTestVm({ irqchip: true });
    const vcpu = t.createVcpu(0);
    const regs = vcpu.getRegs();
    vcpu.setRegs({ ...regs, rax: 0x1234_5678_9abc_def0n, r15: 0xffff_ffff_ffff_fff0n, rip: 0x1000n });
    const back = vcpu.getRegs();
    expect(back.rax).toBe(0x1234_5678_9abc_def0n);
    expect(back.r15).toBe(0xffff_ffff_ffff_fff0n);
    const raw = new BigUint64Array(18);
    vcpu.getRegsInto(raw);
    expect(raw[0]).toBe(0x1234_5678_9abc_def0n);
    vcpu.setMsrs([{ index: 0xc0000102, value: 0xffff_8000_0000_1000n }]); // KERNEL_GS_BASE
    expect(vcpu.getMsr(0xc0000102)).toBe(0xffff_8000_0000_1000n);
    const ev = vcpu.getVcpuEvents();
    vcpu.setVcpuEvents(ev);
    expect(vcpu.getMpState()).toBe(0); // RUNNABLE (BSP)
    const lapic = vcpu.getLapic();
    expect(lapic.length).toBe(1024);
    vcpu.setLapic(lapic);
    const fpu = vcpu.getFpu();
    fpu.mxcsr = 0x1f80;
    fpu.xmm[3]!.fill(0xab);
    vcpu.setFpu(fpu);
    expect(vcpu.getFpu().xmm[3]![7]).toBe(0xab);
    const dr = vcpu.getDebugRegs();
    vcpu.setDebugRegs({ ...dr, db: [0x1000n, 0n, 0n, 0n] });
    expect(vcpu.getDebugRegs().db[0]).toBe(0x1000n);
    expect(vcpu.getCpuid().length).toBeGreaterThan(10);
    expect(t.kvm.msrIndexList().length).toBeGreaterThan(0);
    t.close();
  });

  it('EACCES on the device gets the kvm-group hint (error shape as thrown by the addon)', () => {
    // Root cannot be denied access here, so feed the translator an error shaped like the addon's.
    const e = Object.assign(new Error("EACCES: Permission denied, open '/dev/kvm'"), { code: 'EACCES', errno: -13, syscall: 'open', path: '/dev/kvm' });
    const out = explainOpenError(e, '/dev/kvm');
    expect(out.message).toMatch(/sudo usermod -aG kvm \$USER/);
    expect(out).toMatchObject({ code: 'EACCES', errno: -13, syscall: 'open' });
  });

  it('GuestRam rejects sizes that are not page multiples or exceed one ArrayBuffer', () => {
    const kvm = Kvm.open();
    expect(() => kvm.allocateRam(1000)).toThrow(/multiple of 4096/);
    expect(() => kvm.allocateRam(6 * 2 ** 30)).toThrow(/4 GiB per-block limit/);
    const big = kvm.allocateRam(4 * 2 ** 30); // MAP_NORESERVE: costs nothing until touched
    big.bytes[big.size - 1] = 1;
    expect(big.bytes[big.size - 1]).toBe(1);
    big.close();
    kvm.close();
  });
});
