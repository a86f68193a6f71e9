/**
 * Manual smoke run (not a vitest file): boot the reference vmlinux in the interpreter with the real platform
 * devices (8259/IOAPIC/LAPIC router, PIT, port 0x61, COM1) and an optional initramfs, printing the console. This
 * finds CPU problems late in boot; the product's interpreter accelerator (lib/accel) does this wiring for real.
 *
 *   npx tsx test/cpu/linux-boot-smoke.ts [vmlinux] [max-instructions] [initrd]
 *
 * Measured 2026-11-21 (loaded 2-core machine): x86_64 vmlinux + busybox initramfs: first /init line after 98M
 * instructions / 6.7 s CPU; i386 vmlinux + fixtures/init-i386.s as /init (int 0x80, x87, poweroff): 57M / 4.9 s.
 * An i386 initramfs from the fixture: as --32 -o init.o init-i386.s && ld -m elf_i386 -static -o init init.o &&
 * echo init | cpio -o -H newc > initramfs.cpio   (uncompressed, like the reference initramfs; gzip works too)
 */
import { readFileSync } from 'node:fs';
import { Cpu, getRegister, importBootState } from '../../lib/cpu/index.js';
import { InterruptRouter } from '../../lib/devices/interrupt-router.js';
import { Pit8254 } from '../../lib/devices/pit8254.js';
import { HostClock, TimerGroup } from '../../lib/devices/platform-clock.js';
import { SpeakerPort61 } from '../../lib/devices/speaker-port61.js';
import { COM1, UART_PORT_COUNT, Uart16550 } from '../../lib/devices/serial/index.js';
import { Bus } from '../../lib/machine/bus.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { irqLine } from '../../lib/machine/irq.js';
import { loadLinux } from '../../lib/machine/loader/index.js';
import { referenceGuestArch } from '../../lib/guest/reference-guest.js';

// Default: the current reference build's vmlinux (guest/build.sh --print-dir names its directory).
const kernelPath = process.argv[2] || referenceGuestArch('x86_64')?.vmlinux;
if (!kernelPath) {
  process.stderr.write('linux-boot-smoke: no vmlinux given and the x86_64 reference guest is not built (run guest/build.sh)\n');
  process.exit(2);
}
const max = Number(process.argv[3] || 2_000_000_000);
const initrdPath = process.argv[4];
const memBytes = 256 << 20;
const mem = new GuestMemory([{ guestAddress: 0, bytes: new Uint8Array(memBytes) }]);
const info = loadLinux(mem, {
  kernel: new Uint8Array(readFileSync(kernelPath)), kernelPath,
  initrd: initrdPath ? new Uint8Array(readFileSync(initrdPath)) : undefined, initrdPath,
  cmdline: process.env.CMDLINE ?? 'console=ttyS0 earlyprintk=serial,ttyS0 panic=-1', memoryBytes: memBytes,
});
const pio = new Bus('pio');
const mmio = new Bus('mmio');
const clock = new HostClock();
const router = new InterruptRouter({ cpuCount: 1, clock, tscDeadline: false });
router.attach(pio, mmio);
const pit = new Pit8254({ clock, irq0: irqLine(router, 0) });
pit.attach(pio);
new SpeakerPort61({ pit, clock }).attach(pio);
let line = '';
let initSeen = false;
const uart = new Uart16550({
  irq: irqLine(router, COM1.irq),
  onTransmit: (b) => {
    process.stdout.write(String.fromCharCode(b));
    line = b === 10 ? '' : line + String.fromCharCode(b);
    if (!initSeen && line.startsWith('nodevmm-init:')) {
      initSeen = true;
      const u = process.cpuUsage(cpu0);
      console.log(`\n[smoke] first /init line after ${((Date.now() - t0) / 1000).toFixed(1)} s wall, ${((u.user + u.system) / 1e6).toFixed(1)} s CPU, ${cpu.icount} instructions]`);
    }
  },
});
pio.register(COM1.base, UART_PORT_COUNT, uart, 'com1');
const t0 = Date.now();
const cpu0 = process.cpuUsage();
const timers = new TimerGroup();
timers.add(router);
timers.add(pit);
const lapic = router.forCpu(0);
const cpu = new Cpu({ memory: mem, pio, mmio, interrupts: lapic, platformMsrs: lapic, tsc: () => BigInt(lapic.readTsc()) });
importBootState(cpu, info.entry);
const unimpl = new Map<string, number>();
cpu.onUnimplemented = (_c, i) => { unimpl.set(i.mnemonic, (unimpl.get(i.mnemonic) ?? 0) + 1); };
if (process.env.TRACE) cpu.eventHook = (c, v, code, kind) => { if (kind === 'exception') console.log(`[${kind} ${v} code ${code} rip 0x${getRegister(c, 'rip').toString(16)} cr2 0x${getRegister(c, 'cr2').toString(16)}]`); };
let stop;
let n = 0;
let halts = 0;
while (n < max) {
  const before = cpu.icount;
  timers.poll(clock.nowNs());
  stop = cpu.run({ maxInstructions: 20_000 });
  n += cpu.icount - before;
  if (stop.reason === 'hlt') {
    halts++;
    if (!(cpu.getFlags() & 0x200)) break; // HLT with interrupts off: powered off / halted for good
    // Idle: jump the wait to the next timer deadline (busy-wait on the host clock; fine for a smoke run).
    const dl = timers.nextDeadlineNs();
    if (dl === undefined) break;
    while (clock.nowNs() < dl) { /* wait */ }
    continue;
  }
  if (stop.reason !== 'count') break;
}
const secs = (Date.now() - t0) / 1000;
const u = process.cpuUsage(cpu0);
console.log(`\n--- ${n} instructions in ${secs.toFixed(1)} s (${(n / ((u.user + u.system) / 1e6) / 1e6).toFixed(1)} M/CPU-s), ${halts} HLT waits; stop: ${JSON.stringify(stop)}; rip 0x${getRegister(cpu, 'rip').toString(16)}; unimplemented: ${JSON.stringify([...unimpl])}`);
