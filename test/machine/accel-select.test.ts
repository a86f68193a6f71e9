/** CPUID policy, GSI routing, and how --accel picks an accelerator (with the reason it prints). */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { baseCpuid, perVcpuCpuid } from '../../lib/accel/kvm/cpuid.js';
import { pcGsiRouting } from '../../lib/accel/kvm/kvm-accelerator.js';
import { kvmHostModule, probeKvmHost } from '../../lib/accel/probe.js';
import { AcceleratorUnavailableError, loadInterpreterFactory, selectAccelerator } from '../../lib/accel/select.js';
import type { CpuidEntry } from '../../lib/kvm/index.js';
import { Irqchip } from '../../lib/kvm/index.js';

const ALL = 0xffffffff;
const entry = (fn: number, index = 0): CpuidEntry => ({ function: fn, index, flags: 0, eax: ALL, ebx: ALL, ecx: ALL, edx: ALL });
const SUPPORTED = [entry(0), entry(1), entry(7), entry(0xb, 0), entry(0xb, 1), entry(0xd, 0), entry(0x4000_0000), entry(0x4000_0001)];
const find = (t: CpuidEntry[], fn: number, index = 0): CpuidEntry | undefined => t.find((e) => e.function === fn && e.index === index);

describe('CPUID policy', () => {
  it('hides what an emulating host cannot run at CPL0, and nothing more on a native host', () => {
    const pvm = baseCpuid(SUPPORTED, { emulatingHost: true, cpus: 1 });
    const l1 = find(pvm, 1)!;
    for (const bit of [13, 22, 23, 26, 27, 28]) expect(l1.ecx & (1 << bit), `leaf 1 ecx bit ${bit}`).toBe(0); // cx16 movbe popcnt xsave osxsave avx
    const l7 = find(pvm, 7)!;
    for (const bit of [5, 16, 20]) expect(l7.ebx & (1 << bit), `leaf 7 ebx bit ${bit}`).toBe(0); // avx2 avx512f smap
    expect(find(pvm, 0xd)).toBeUndefined();
    expect(find(pvm, 0x4000_0001)!.eax).toBe(0);
    expect(find(pvm, 0x4000_0000)!.eax).toBe(ALL); // the KVM signature stays: Linux still knows it is a KVM guest

    const native = baseCpuid(SUPPORTED, { emulatingHost: false, cpus: 1 });
    expect(find(native, 1)!.ecx).toBe((ALL & ~(1 << 3)) >>> 0); // only MONITOR/MWAIT goes
    expect(find(native, 7)!.ebx).toBe(ALL);
    expect(find(native, 0x4000_0001)!.eax).toBe(ALL);
  });

  it('gives each vCPU its APIC ID in leaf 1 and leaf 0xb', () => {
    const base = baseCpuid(SUPPORTED, { emulatingHost: false, cpus: 4 });
    for (const id of [0, 3]) {
      const t = perVcpuCpuid(base, id);
      expect(find(t, 1)!.ebx >>> 24).toBe(id);
      expect(find(t, 0xb, 0)!.edx).toBe(id);
      expect(find(t, 0xb, 1)!.edx).toBe(id);
    }
  });
});

describe('GSI routing', () => {
  it('sends the PIT (GSI 0) to IOAPIC pin 2 as the MP table says, and GSI 2 only to the 8259 cascade', () => {
    const routes = pcGsiRouting();
    const ioapic = routes.filter((r) => r.type === 'irqchip' && r.irqchip === Irqchip.IOAPIC);
    expect(ioapic.find((r) => r.gsi === 0)).toMatchObject({ pin: 2 });
    expect(ioapic.find((r) => r.gsi === 2)).toBeUndefined();
    expect(ioapic.find((r) => r.gsi === 4)).toMatchObject({ pin: 4 });
    expect(routes.filter((r) => r.gsi === 9)).toHaveLength(2); // PIC slave pin 1 and IOAPIC pin 9
  });
});

const interpPresent = existsSync(fileURLToPath(new URL('../../lib/accel/interp/index.ts', import.meta.url)));

describe('accelerator selection', () => {
  it('reports the interpreter accelerator as missing only when lib/accel/interp is absent', async () => {
    const f = await loadInterpreterFactory();
    if (interpPresent) expect(typeof f).toBe('function');
    else expect(f).toBe('the interpreter accelerator (lib/accel/interp) is not part of this build yet');
  });

  it('--accel auto explains its choice from the host probe', async () => {
    const host = probeKvmHost();
    console.log(`probe: ${host.summary}`);
    expect(host.module).toBe(kvmHostModule());
    if (host.kvm.usable) expect(host.summary).toContain(host.module);
    try {
      const { accelerator, reason } = await selectAccelerator('auto');
      accelerator.close();
      console.log(`auto: ${reason}`);
      if (host.module === 'kvm_pvm' || !host.kvm.usable) expect(accelerator.name).toBe('interp');
      expect(reason).toContain(host.summary);
    } catch (e) {
      // Only acceptable while the interpreter accelerator does not exist yet.
      expect(interpPresent).toBe(false);
      expect(e).toBeInstanceOf(AcceleratorUnavailableError);
      expect((e as Error).message).toContain(host.summary);
      expect((e as Error).message).toContain('not part of this build yet');
      console.log(`auto: ${(e as Error).message}`);
    }
  });
});

describe('--accel kvm without a usable /dev/kvm', () => {
  it('fails with what was wrong and what to do', async () => {
    const err = await selectAccelerator('kvm', { kvmPath: '/nonexistent/kvm' }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(AcceleratorUnavailableError);
    const message = (err as Error).message;
    expect(message).toMatch(/^--accel kvm: /);
    expect(message).toContain('/nonexistent/kvm');
    expect(message).toContain('--accel interp');
    expect(message).not.toContain('\n');
  });
});
