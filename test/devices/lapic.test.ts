import { describe, expect, it } from 'vitest';
import { MSR_IA32_APIC_BASE, MSR_IA32_TSC_DEADLINE, isLapicMsr } from '../../lib/devices/lapic.js';
import { PIT_HZ, TimerGroup, tscFromNs } from '../../lib/devices/platform-clock.js';
import { Pit8254 } from '../../lib/devices/pit8254.js';
import { irqLine } from '../../lib/machine/irq.js';
import { testMachine, type TestMachine } from './lapic-helpers.js';

const ID = 0x20;
const VERSION = 0x30;
const TPR = 0x80;
const PPR = 0xa0;
const EOI = 0xb0;
const LDR = 0xd0;
const DFR = 0xe0;
const SVR = 0xf0;
const ISR = 0x100;
const TMR = 0x180;
const IRR = 0x200;
const ESR = 0x280;
const ICR_LOW = 0x300;
const ICR_HIGH = 0x310;
const LVT_TIMER = 0x320;
const LVT_LINT0 = 0x350;
const LVT_LINT1 = 0x360;
const LVT_ERROR = 0x370;
const TMICT = 0x380;
const TMCCT = 0x390;
const TDCR = 0x3e0;

const PERIODIC = 1 << 17;
const TSC_DEADLINE = 2 << 17;
const MASKED = 1 << 16;

/** The accelerator's loop: run to each deadline, poll, take interrupts as a CPU with IF=1 would. */
function runAndTake(m: TestMachine, cpu: number, untilNs: number): { vector: number; at: number }[] {
  const lapic = m.router.forCpu(cpu);
  const taken: { vector: number; at: number }[] = [];
  for (;;) {
    const next = m.router.nextDeadlineNs();
    if (next === undefined || next > untilNs) break;
    m.clock.set(Math.max(m.clock.nowNs(), next));
    m.router.poll(m.clock.nowNs());
    while (lapic.hasInterrupt()) {
      taken.push({ vector: lapic.acknowledge(), at: m.clock.nowNs() });
      m.apicWrite(cpu, EOI, 0);
    }
  }
  m.clock.set(Math.max(m.clock.nowNs(), untilNs));
  m.router.poll(m.clock.nowNs());
  return taken;
}

function sendIpi(m: TestMachine, from: number, dest: number, low: number): void {
  m.apicWrite(from, ICR_HIGH, dest << 24);
  m.apicWrite(from, ICR_LOW, low);
}

describe('LAPIC registers', () => {
  it('reports ID, version 0x14 with six LVTs, and the reset state', () => {
    const m = testMachine(3);
    expect(m.apicRead(0, ID)).toBe(0);
    expect(m.apicRead(2, ID)).toBe(2 << 24);
    expect(m.apicRead(0, VERSION)).toBe(0x0005_0014);
    expect(m.apicRead(1, SVR)).toBe(0xff);
    expect(m.apicRead(1, DFR)).toBe(0xffffffff);
    expect(m.apicRead(1, LVT_TIMER)).toBe(MASKED);
    // BSP: virtual wire (LINT0 ExtINT, LINT1 NMI); APs: masked.
    expect(m.apicRead(0, LVT_LINT0)).toBe(0x700);
    expect(m.apicRead(0, LVT_LINT1)).toBe(0x400);
    expect(m.apicRead(1, LVT_LINT0)).toBe(MASKED);
    expect(m.router.forCpu(1).waitingForSipi).toBe(true);
    expect(m.router.forCpu(0).waitingForSipi).toBe(false);
  });

  it('drops fixed interrupts until software-enabled, and forces LVT masks while disabled', () => {
    const m = testMachine(2);
    sendIpi(m, 0, 1, 0x40);
    expect(m.router.forCpu(1).hasInterrupt()).toBe(false);
    m.apicWrite(1, LVT_TIMER, 0xec);
    expect(m.apicRead(1, LVT_TIMER)).toBe(MASKED | 0xec);
    m.apicWrite(1, SVR, 0x1ff);
    m.apicWrite(1, LVT_TIMER, 0xec);
    expect(m.apicRead(1, LVT_TIMER)).toBe(0xec);
    sendIpi(m, 0, 1, 0x40);
    expect(m.router.forCpu(1).hasInterrupt()).toBe(true);
    m.apicWrite(1, SVR, 0xff); // disable again: every LVT masked
    expect(m.apicRead(1, LVT_TIMER)).toBe(MASKED | 0xec);
  });

  it('takes the highest IRR vector above PPR, nests by priority class, and EOIs the highest ISR bit', () => {
    const m = testMachine(1);
    m.enableAll();
    const l = m.router.forCpu(0);
    sendIpi(m, 0, 0, 0x45);
    sendIpi(m, 0, 0, 0x91);
    expect(m.apicRead(0, IRR + 0x20)).toBe(1 << 5); // vector 0x45 is bit 5 of IRR word 2
    expect(l.acknowledge()).toBe(0x91);
    expect(m.apicRead(0, ISR + 0x40)).toBe(1 << 17);
    expect(m.apicRead(0, PPR)).toBe(0x90);
    expect(l.hasInterrupt()).toBe(false); // 0x45 is below the in-service class
    sendIpi(m, 0, 0, 0x95); // same class as in service: still blocked
    expect(l.hasInterrupt()).toBe(false);
    sendIpi(m, 0, 0, 0xa0);
    expect(l.acknowledge()).toBe(0xa0);
    m.apicWrite(0, EOI, 0);
    m.apicWrite(0, EOI, 0);
    expect(m.apicRead(0, PPR)).toBe(0);
    expect(l.acknowledge()).toBe(0x95);
    m.apicWrite(0, EOI, 0);
    expect(l.acknowledge()).toBe(0x45);
  });

  it('TPR masks lower priority classes', () => {
    const m = testMachine(1);
    m.enableAll();
    const l = m.router.forCpu(0);
    sendIpi(m, 0, 0, 0x45);
    m.apicWrite(0, TPR, 0x50);
    expect(m.apicRead(0, PPR)).toBe(0x50);
    expect(l.hasInterrupt()).toBe(false);
    m.apicWrite(0, TPR, 0x40); // same class: still masked
    expect(l.hasInterrupt()).toBe(false);
    m.apicWrite(0, TPR, 0x3f);
    expect(l.hasInterrupt()).toBe(true);
    expect(l.acknowledge()).toBe(0x45);
  });

  it('returns the spurious vector when the request vanished', () => {
    const m = testMachine(1);
    m.apicWrite(0, SVR, 0x1ef);
    m.apicWrite(0, LVT_LINT0, MASKED);
    expect(m.router.forCpu(0).acknowledge()).toBe(0xef);
  });

  it('records illegal vectors in ESR (readable after a write) and raises the error LVT', () => {
    const m = testMachine(2);
    m.enableAll();
    m.apicWrite(0, LVT_ERROR, 0xfe);
    sendIpi(m, 0, 1, 0x05); // illegal vector
    expect(m.apicRead(0, ESR)).toBe(0);
    m.apicWrite(0, ESR, 0);
    expect(m.apicRead(0, ESR)).toBe(0x20);
    expect(m.router.forCpu(0).acknowledge()).toBe(0xfe);
    m.router.deliver({ vector: 3, deliveryMode: 0, logical: false, destination: 1, level: true, levelTriggered: false, shorthand: 0, source: -1 });
    m.apicWrite(1, ESR, 0);
    expect(m.apicRead(1, ESR)).toBe(0x40);
  });

  it('ignores stores that are not aligned 32-bit, and reads sub-words', () => {
    const m = testMachine(1);
    m.router.lapicMmio.currentCpu = 0;
    m.mmio.write(LAPIC_BASE + TPR, 1, 0x77);
    expect(m.apicRead(0, TPR)).toBe(0);
    m.apicWrite(0, TPR, 0x34);
    expect(m.mmio.read(LAPIC_BASE + TPR, 1)).toBe(0x34);
    expect(m.mmio.read(LAPIC_BASE + VERSION + 2, 2)).toBe(5);
  });
});

const LAPIC_BASE = 0xfee0_0000;

describe('LAPIC timer', () => {
  it('one-shot: fires once at initial count x divisor, current count decrements to 0', () => {
    const m = testMachine(1);
    m.enableAll();
    m.apicWrite(0, TDCR, 0x0b); // divide by 1
    m.apicWrite(0, LVT_TIMER, 0xec);
    const start = m.clock.nowNs();
    m.apicWrite(0, TMICT, 1000);
    expect(m.router.nextDeadlineNs()).toBe(start + 1000);
    m.clock.advance(250);
    expect(m.apicRead(0, TMCCT)).toBe(750);
    expect(runAndTake(m, 0, start + 999)).toEqual([]);
    expect(runAndTake(m, 0, start + 100_000)).toEqual([{ vector: 0xec, at: start + 1000 }]);
    expect(m.apicRead(0, TMCCT)).toBe(0);
    expect(m.router.nextDeadlineNs()).toBeUndefined();
  });

  it('periodic with divide-by-16: one interrupt per period, counter reloads', () => {
    const m = testMachine(1);
    m.enableAll();
    m.apicWrite(0, TDCR, 0x03); // divide by 16
    m.apicWrite(0, LVT_TIMER, PERIODIC | 0xef);
    const start = m.clock.nowNs();
    m.apicWrite(0, TMICT, 100); // period 1600 ns
    m.clock.advance(160);
    expect(m.apicRead(0, TMCCT)).toBe(90);
    const taken = runAndTake(m, 0, start + 10 * 1600);
    expect(taken.map((t) => t.at)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((k) => start + k * 1600));
    m.clock.advance(1600 + 320);
    expect(m.apicRead(0, TMCCT)).toBe(80); // reloaded: the same phase one period later
    expect(taken.every((t) => t.vector === 0xef)).toBe(true);
    expect(m.router.nextDeadlineNs()).toBe(start + 12 * 1600);
  });

  it('decodes every divide configuration', () => {
    const m = testMachine(1);
    m.enableAll();
    m.apicWrite(0, LVT_TIMER, MASKED | 0xec);
    const table: [number, number][] = [[0x0, 2], [0x1, 4], [0x2, 8], [0x3, 16], [0x8, 32], [0x9, 64], [0xa, 128], [0xb, 1]];
    for (const [dcr, divisor] of table) {
      m.apicWrite(0, TDCR, dcr);
      expect(m.apicRead(0, TDCR)).toBe(dcr);
      m.apicWrite(0, TMICT, 1000);
      m.clock.advance(divisor * 10);
      expect(m.apicRead(0, TMCCT)).toBe(990);
    }
  });

  it('a masked timer keeps counting but interrupts nobody', () => {
    const m = testMachine(1);
    m.enableAll();
    m.apicWrite(0, TDCR, 0x0b);
    m.apicWrite(0, LVT_TIMER, MASKED | PERIODIC | 0xec);
    m.apicWrite(0, TMICT, 500);
    expect(m.router.nextDeadlineNs()).toBeUndefined();
    m.clock.advance(1200);
    m.router.poll(m.clock.nowNs());
    expect(m.router.forCpu(0).hasInterrupt()).toBe(false);
    expect(m.apicRead(0, TMCCT)).toBe(300);
  });

  it('TSC-deadline: fires when the TSC reaches IA32_TSC_DEADLINE, which then reads 0', () => {
    const m = testMachine(1);
    m.enableAll();
    const l = m.router.forCpu(0);
    // Outside TSC-deadline mode the MSR reads 0 and writes are ignored.
    expect(l.writeMsr(MSR_IA32_TSC_DEADLINE, 12345n)).toBe(true);
    expect(l.readMsr(MSR_IA32_TSC_DEADLINE)).toBe(0n);
    m.apicWrite(0, LVT_TIMER, TSC_DEADLINE | 0xec);
    m.apicWrite(0, TMICT, 1000); // ignored in this mode
    expect(m.router.nextDeadlineNs()).toBeUndefined();
    const deadline = tscFromNs(m.clock.nowNs()) + 50_000;
    expect(l.writeMsr(MSR_IA32_TSC_DEADLINE, BigInt(deadline))).toBe(true);
    expect(l.readMsr(MSR_IA32_TSC_DEADLINE)).toBe(BigInt(deadline));
    expect(m.apicRead(0, TMCCT)).toBe(0);
    const taken = runAndTake(m, 0, m.clock.nowNs() + 1_000_000);
    expect(taken).toHaveLength(1);
    expect(tscFromNs(taken[0]!.at)).toBe(deadline);
    expect(l.readMsr(MSR_IA32_TSC_DEADLINE)).toBe(0n);
    // A deadline already in the past fires at once.
    l.writeMsr(MSR_IA32_TSC_DEADLINE, 1n);
    expect(l.hasInterrupt()).toBe(true);
  });

  it('a TSC deadline beyond 2^53 stays readable but never arms', () => {
    const m = testMachine(1);
    m.enableAll();
    const l = m.router.forCpu(0);
    m.apicWrite(0, LVT_TIMER, TSC_DEADLINE | 0xec);
    l.writeMsr(MSR_IA32_TSC_DEADLINE, 0xffff_ffff_ffff_fff0n);
    expect(l.readMsr(MSR_IA32_TSC_DEADLINE)).toBe(0xffff_ffff_ffff_fff0n);
    expect(m.router.nextDeadlineNs()).toBeUndefined();
  });

  it('calibrate_APIC_clock against PIT ticks finds the 1 GHz bus', () => {
    const m = testMachine(1);
    m.enableAll();
    m.maskPic();
    const pit = new Pit8254({ clock: m.clock, irq0: irqLine(m.router, 0) });
    pit.attach(m.pio);
    m.ioapicWrite(0x10 + 2 * 2, 0x30); // IRQ 0 -> pin 2 -> vector 0x30
    m.pio.write(0x43, 1, 0x34);
    m.pio.write(0x40, 1, 11932 & 0xff); // HZ = 100
    m.pio.write(0x40, 1, 11932 >> 8);
    m.apicWrite(0, TDCR, 0x03); // APIC_DIVISOR 16
    m.apicWrite(0, LVT_TIMER, MASKED | 0xec);
    m.apicWrite(0, TMICT, 0xffffffff);
    const group = new TimerGroup();
    group.add(pit);
    group.add(m.router);
    const loops = 10; // LAPIC_CAL_LOOPS = HZ / 10
    const samples: number[] = [];
    const bsp = m.router.forCpu(0);
    while (samples.length <= loops) {
      const next = group.nextDeadlineNs()!;
      m.clock.set(next + 2_000); // the handler runs a little after the tick
      group.poll(m.clock.nowNs());
      if (!bsp.hasInterrupt()) continue;
      expect(bsp.acknowledge()).toBe(0x30);
      samples.push(m.apicRead(0, TMCCT));
      m.apicWrite(0, EOI, 0);
    }
    const delta = samples[0]! - samples[loops]!;
    const period = (delta * 16) / loops; // bus ticks per jiffy
    const hz = PIT_HZ / 11932;
    expect(Math.abs(period * hz - 1e9) / 1e9).toBeLessThan(1e-4);
  });

  it('changing the timer mode disarms the timer', () => {
    const m = testMachine(1);
    m.enableAll();
    m.apicWrite(0, LVT_TIMER, 0xec);
    m.apicWrite(0, TMICT, 1000);
    m.apicWrite(0, LVT_TIMER, PERIODIC | 0xec);
    expect(m.apicRead(0, TMICT)).toBe(0);
    expect(m.router.nextDeadlineNs()).toBeUndefined();
  });

  it('without TSC-deadline support the mode bit does not stick', () => {
    const m = testMachine(1, { tscDeadline: false });
    m.enableAll();
    m.apicWrite(0, LVT_TIMER, TSC_DEADLINE | 0xec);
    expect(m.apicRead(0, LVT_TIMER)).toBe(0xec);
  });

  it('a TimerGroup with several CPUs reports the nearest deadline', () => {
    const m = testMachine(2);
    m.enableAll();
    const group = new TimerGroup();
    group.add(m.router);
    for (const [cpu, count] of [[0, 3000], [1, 700]] as const) {
      m.apicWrite(cpu, TDCR, 0x0b);
      m.apicWrite(cpu, LVT_TIMER, 0xe0 + cpu);
      m.apicWrite(cpu, TMICT, count);
    }
    expect(group.nextDeadlineNs()).toBe(m.clock.nowNs() + 700);
    m.clock.advance(700);
    group.poll(m.clock.nowNs());
    expect(m.router.forCpu(1).acknowledge()).toBe(0xe1);
    expect(m.router.forCpu(0).hasInterrupt()).toBe(false);
    expect(group.nextDeadlineNs()).toBe(m.clock.nowNs() + 2300);
  });
});

describe('IPIs', () => {
  it('fixed IPI to another CPU by physical destination, delivery status reads idle', () => {
    const m = testMachine(3);
    m.enableAll();
    const woken: number[] = [];
    m.router.onInterruptPending = (cpu) => woken.push(cpu);
    sendIpi(m, 0, 2, 0x4031); // assert, fixed, vector 0x31
    expect(m.apicRead(0, ICR_LOW) & (1 << 12)).toBe(0);
    expect(m.router.forCpu(2).acknowledge()).toBe(0x31);
    expect(m.router.forCpu(1).hasInterrupt()).toBe(false);
    expect(woken).toEqual([2]);
  });

  it('INIT, INIT de-assert, then SIPI twice as Linux wakes an AP: one startup at the vector', () => {
    const m = testMachine(2);
    m.enableAll();
    sendIpi(m, 0, 1, 0xc500); // INIT, level-triggered assert
    sendIpi(m, 0, 1, 0x8500); // INIT de-assert
    expect(m.events).toEqual(['init 1']);
    expect(m.router.forCpu(1).waitingForSipi).toBe(true);
    expect(m.apicRead(1, SVR)).toBe(0xff); // INIT reset the AP's LAPIC
    sendIpi(m, 0, 1, 0x0600 | 0x9f); // STARTUP, vector 0x9f (trampoline at 0x9f000)
    sendIpi(m, 0, 1, 0x0600 | 0x9f);
    expect(m.events).toEqual(['init 1', 'sipi 1 0x9f']);
    expect(m.router.forCpu(1).waitingForSipi).toBe(false);
    expect(m.apicRead(1, ID)).toBe(1 << 24);
  });

  it('NMI IPI sets the NMI pending flag', () => {
    const m = testMachine(2);
    sendIpi(m, 0, 1, 0x400);
    const l = m.router.forCpu(1);
    expect(l.hasNmi).toBe(true);
    expect(l.takeNmi()).toBe(true);
    expect(l.hasNmi).toBe(false);
  });

  it('destination shorthands: self, all including self, all excluding self', () => {
    const m = testMachine(3);
    m.enableAll();
    const pending = (): boolean[] => [0, 1, 2].map((c) => m.router.forCpu(c).hasInterrupt());
    const drain = (): void => {
      for (const c of [0, 1, 2]) while (m.router.forCpu(c).hasInterrupt()) m.router.forCpu(c).acknowledge(), m.apicWrite(c, EOI, 0);
    };
    sendIpi(m, 1, 0, (1 << 18) | 0x50);
    expect(pending()).toEqual([false, true, false]);
    drain();
    sendIpi(m, 1, 0, (2 << 18) | 0x50);
    expect(pending()).toEqual([true, true, true]);
    drain();
    sendIpi(m, 1, 0, (3 << 18) | 0x50);
    expect(pending()).toEqual([true, false, true]);
  });

  it('logical flat and cluster destinations follow LDR/DFR', () => {
    const m = testMachine(4);
    m.enableAll();
    for (let cpu = 0; cpu < 4; cpu++) m.apicWrite(cpu, LDR, (1 << cpu) << 24); // flat: one bit per CPU
    const pending = (): boolean[] => [0, 1, 2, 3].map((c) => m.router.forCpu(c).hasInterrupt());
    sendIpi(m, 0, 0x06, 0x800 | 0x60); // logical, mask 0b0110
    expect(pending()).toEqual([false, true, true, false]);
    const m2 = testMachine(4);
    m2.enableAll();
    for (let cpu = 0; cpu < 4; cpu++) {
      m2.apicWrite(cpu, DFR, 0x0fffffff); // cluster model
      m2.apicWrite(cpu, LDR, (((cpu >> 1) << 4) | (1 << (cpu & 1))) << 24); // clusters 0,0,1,1
    }
    sendIpi(m2, 0, 0x12, 0x800 | 0x60); // cluster 1, member bit 1 -> CPU 3
    expect([0, 1, 2, 3].map((c) => m2.router.forCpu(c).hasInterrupt())).toEqual([false, false, false, true]);
  });

  it('lowest-priority delivery picks the lowest PPR, then the lowest APIC ID', () => {
    const m = testMachine(3);
    m.enableAll();
    for (let cpu = 0; cpu < 3; cpu++) m.apicWrite(cpu, LDR, 0x01 << 24); // everyone in the same logical group
    m.apicWrite(0, TPR, 0x20);
    sendIpi(m, 0, 0x01, 0x900 | 0x70); // logical, lowest priority
    expect([0, 1, 2].map((c) => m.router.forCpu(c).hasInterrupt())).toEqual([false, true, false]);
  });
});

describe('APIC_BASE MSR and ExtINT', () => {
  it('reads base, BSP and enable bits; refuses x2APIC and reserved bits', () => {
    const m = testMachine(2);
    expect(isLapicMsr(MSR_IA32_APIC_BASE)).toBe(true);
    expect(isLapicMsr(0x10)).toBe(false);
    expect(m.router.forCpu(0).readMsr(MSR_IA32_APIC_BASE)).toBe(0xfee00900n);
    expect(m.router.forCpu(1).readMsr(MSR_IA32_APIC_BASE)).toBe(0xfee00800n);
    expect(m.router.forCpu(0).writeMsr(MSR_IA32_APIC_BASE, 0xfee00d00n)).toBe(false);
    expect(m.router.forCpu(0).writeMsr(MSR_IA32_APIC_BASE, 0xfee00901n)).toBe(false);
    expect(m.router.forCpu(0).readMsr(0x10)).toBeUndefined();
  });

  it('the PIC reaches the BSP through LINT0 in ExtINT mode (virtual wire), and not once LINT0 is masked', () => {
    const m = testMachine(2);
    for (const [port, v] of [[0x20, 0x11], [0x21, 0x30], [0x21, 4], [0x21, 1], [0x21, 0]] as const) m.pio.write(port, 1, v);
    const woken: number[] = [];
    m.router.onInterruptPending = (cpu) => woken.push(cpu);
    m.router.setIrq(1, true);
    m.router.setIrq(1, false);
    expect(woken).toEqual([0]);
    const bsp = m.router.forCpu(0);
    expect(bsp.hasInterrupt()).toBe(true);
    expect(m.router.forCpu(1).hasInterrupt()).toBe(false);
    expect(bsp.acknowledge()).toBe(0x31);
    m.pio.write(0x20, 1, 0x20);
    m.apicWrite(0, SVR, 0x1ff);
    m.apicWrite(0, LVT_LINT0, MASKED | 0x700);
    m.router.setIrq(1, true);
    expect(bsp.hasInterrupt()).toBe(false);
  });

  it('with APIC_BASE.EN clear the PIC output goes straight to the CPU', () => {
    const m = testMachine(1);
    for (const [port, v] of [[0x20, 0x11], [0x21, 0x20], [0x21, 4], [0x21, 1], [0x21, 0]] as const) m.pio.write(port, 1, v);
    const bsp = m.router.forCpu(0);
    m.apicWrite(0, SVR, 0x1ff);
    m.apicWrite(0, LVT_LINT0, MASKED);
    expect(bsp.writeMsr(MSR_IA32_APIC_BASE, 0xfee00100n)).toBe(true);
    expect(bsp.hardwareEnabled).toBe(false);
    m.router.setIrq(4, true);
    expect(bsp.hasInterrupt()).toBe(true);
    expect(bsp.acknowledge()).toBe(0x24);
  });
});

describe('register reads reflect TMR for level-triggered vectors', () => {
  it('sets TMR for a level-triggered message', () => {
    const m = testMachine(1);
    m.enableAll();
    m.router.deliver({ vector: 0x61, deliveryMode: 0, logical: false, destination: 0, level: true, levelTriggered: true, shorthand: 0, source: -1 });
    expect(m.apicRead(0, TMR + 0x30)).toBe(1 << 1);
  });
});
