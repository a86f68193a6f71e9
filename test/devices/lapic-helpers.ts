/** Shared setup for the LAPIC, IOAPIC and router tests: a small SMP machine on real buses. */
import { Bus } from '../../lib/machine/bus.js';
import { InterruptRouter, type InterruptRouterOptions } from '../../lib/devices/interrupt-router.js';
import { ManualClock } from '../../lib/devices/platform-clock.js';

export const LAPIC = 0xfee0_0000;
export const IOAPIC = 0xfec0_0000;

export interface TestMachine {
  clock: ManualClock;
  router: InterruptRouter;
  mmio: Bus;
  pio: Bus;
  events: string[];
  /** A 32-bit LAPIC register access executed by vCPU `cpu`. */
  apicRead(cpu: number, reg: number): number;
  apicWrite(cpu: number, reg: number, value: number): void;
  ioapicRead(index: number): number;
  ioapicWrite(index: number, value: number): void;
  /** Software-enable every LAPIC (SVR = 0x1ff, spurious vector 0xff) like setup_local_APIC. */
  enableAll(): void;
  /**
   * Mask both 8259s, as Linux does once the IOAPIC is in use. At reset (like KVM's) the PIC has IMR 0 and the
   * BSP's LINT0 is ExtINT, so an ISA IRQ would otherwise also reach the BSP through the PIC.
   */
  maskPic(): void;
}

export function testMachine(cpuCount = 2, options: Partial<InterruptRouterOptions> = {}): TestMachine {
  const clock = new ManualClock(5_000);
  const router = new InterruptRouter({ cpuCount, clock, ...options });
  const mmio = new Bus('mmio');
  const pio = new Bus('pio');
  router.attach(pio, mmio);
  const events: string[] = [];
  router.onInit = (cpu) => events.push(`init ${cpu}`);
  router.onStartup = (cpu, vector) => events.push(`sipi ${cpu} 0x${vector.toString(16)}`);
  const m: TestMachine = {
    clock,
    router,
    mmio,
    pio,
    events,
    apicRead(cpu, reg) {
      router.lapicMmio.currentCpu = cpu;
      return mmio.read(LAPIC + reg, 4);
    },
    apicWrite(cpu, reg, value) {
      router.lapicMmio.currentCpu = cpu;
      mmio.write(LAPIC + reg, 4, value >>> 0);
    },
    ioapicRead(index) {
      mmio.write(IOAPIC, 4, index);
      return mmio.read(IOAPIC + 0x10, 4);
    },
    ioapicWrite(index, value) {
      mmio.write(IOAPIC, 4, index);
      mmio.write(IOAPIC + 0x10, 4, value >>> 0);
    },
    enableAll() {
      for (let cpu = 0; cpu < cpuCount; cpu++) m.apicWrite(cpu, 0xf0, 0x1ff);
    },
    maskPic() {
      pio.write(0x21, 1, 0xff);
      pio.write(0xa1, 1, 0xff);
    },
  };
  return m;
}
