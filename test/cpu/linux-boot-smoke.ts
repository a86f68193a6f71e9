/**
 * Manual smoke run (not a vitest file): load the reference x86_64 vmlinux with the machine's Linux loader, enter it
 * in the interpreter with only a COM1 transmit stub and no timers/interrupt controllers, and print the console
 * output and where the CPU ends up. Shows how far the CPU alone gets (until Linux waits for a timer tick).
 *
 *   npx tsx test/cpu/linux-boot-smoke.ts [vmlinux] [max-instructions]
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Cpu, getRegister, importBootState } from '../../lib/cpu/index.js';
import { Bus } from '../../lib/machine/bus.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { loadLinux } from '../../lib/machine/loader/index.js';

const kernelPath = process.argv[2] || join(homedir(), '.cache/nodevmm/guest/2ebd4ab0248ea617/vmlinux-x86_64');
const max = Number(process.argv[3] ?? 300_000_000);
const memBytes = 256 << 20;
const mem = new GuestMemory([{ guestAddress: 0, bytes: new Uint8Array(memBytes) }]);
const info = loadLinux(mem, { kernel: new Uint8Array(readFileSync(kernelPath)), kernelPath, cmdline: 'console=ttyS0 earlyprintk=serial,ttyS0 nokaslr lpj=1000000 tsc=reliable', memoryBytes: memBytes });
const pio = new Bus('pio');
let out = '';
pio.register(0x3f8, 8, {
  read: (off) => (off === 5 ? 0x60 : 0),
  write: (off, _size, v) => { if (off === 0) { out += String.fromCharCode(v); if (v === 10) { process.stdout.write(out); out = ''; } } },
}, 'com1-stub');
const cpu = new Cpu({ memory: mem, pio, mmio: new Bus('mmio'), apicBase: 0xfee00900n });
importBootState(cpu, info.entry);
const unimpl = new Map<string, number>();
cpu.onUnimplemented = (_c, i) => { unimpl.set(i.mnemonic, (unimpl.get(i.mnemonic) ?? 0) + 1); };
const ring: string[] = [];
if (process.env.TRACE) cpu.codeHooks.push({ begin: -1e18, end: 1e18, fn: (c, rip) => { ring.push(rip.toString(16)); if (ring.length > 40) ring.shift(); } });
if (process.env.TRACE) cpu.eventHook = (c, v, code, kind) => { if (process.env.TRACE || kind === 'exception') console.log(`[event ${kind} vector ${v} code ${code} rip 0x${getRegister(c, 'rip').toString(16)} cr2 0x${getRegister(c, 'cr2').toString(16)}]`); };
const t0 = Date.now();
const cpu0 = process.cpuUsage();
let stop;
let n = 0;
while (n < max) {
  const before = cpu.icount;
  stop = cpu.run({ maxInstructions: Math.min(5_000_000, max - n) });
  n += cpu.icount - before;
  if (stop.reason !== 'count') break;
}
process.stdout.write(out);
if (ring.length) console.log('last rips:', ring.join(' '));
const secs = (Date.now() - t0) / 1000;
const u = process.cpuUsage(cpu0);
const cpuSecs = (u.user + u.system) / 1e6;
console.log(`\n--- ${n} instructions in ${secs.toFixed(1)} s (${(n / secs / 1e6).toFixed(1)} MIPS wall, ${(n / cpuSecs / 1e6).toFixed(1)} M/CPU-s); stop: ${JSON.stringify(stop)}; rip 0x${getRegister(cpu, 'rip').toString(16)}; unimplemented: ${JSON.stringify([...unimpl])}`);
