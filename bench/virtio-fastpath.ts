/**
 * virtio notifications and MSIs on KVM, with and without the accelerator fast paths, same run:
 *  - guest side: a CPL3 loop of N writes to a queue's notify register — virtio-pci (2-byte write to the queue's
 *    own notify address) and virtio-mmio (32-bit write of the queue index to QueueNotify, matched by datamatch);
 *    µs per write with every write a KVM_EXIT_MMIO handled in JS versus an ioeventfd (the write completes in the
 *    kernel; the device hears of it, coalesced, from the event loop) — plus the time until the device has seen
 *    the last notification;
 *  - host side: µs per MSI sent with KVM_SIGNAL_MSI versus an irqfd write (route cached).
 * Usage: npx tsx bench/virtio-fastpath.ts [notifications=20000] [msis=200000]
 */
import { performance } from 'node:perf_hooks';
import { probeKvm } from '../lib/kvm/index.js';
import { createRig } from '../test/machine/virtio-fastpath-setup.js';
import { createMmioRig } from '../test/virtio/mmio-fastpath-setup.js';

const N = Number(process.argv[2] ?? 20000);
const M = Number(process.argv[3] ?? 200000);

type Transport = 'pci' | 'mmio';

interface LoopRig {
  run(model: 'thread' | 'inline'): Promise<string>;
  mmioExits: number[];
  transport: { fastNotifications: number };
  close(): void;
}

function createLoopRig(transport: Transport, fast: boolean): LoopRig {
  return transport === 'pci' ? createRig(N, fast) : createMmioRig([{ value: 0, count: N }], fast);
}

async function guestLoop(transport: Transport, fast: boolean, model: 'thread' | 'inline'): Promise<{ usPerWrite: number; usUntilSeen: number; exits: number; signals: number }> {
  const rig = createLoopRig(transport, fast);
  try {
    const t0 = performance.now();
    await rig.run(model);
    const t1 = performance.now();
    // Fast path: signals still in the eventfd are delivered in the next poll phase, before setImmediate runs.
    await new Promise((r) => setImmediate(r));
    const t2 = performance.now();
    return { usPerWrite: ((t1 - t0) * 1000) / N, usUntilSeen: ((t2 - t0) * 1000) / N, exits: rig.mmioExits.length, signals: rig.transport.fastNotifications };
  } finally {
    rig.close();
  }
}

function msiCost(): { signalMsi: number; irqfd: number } {
  const rig = createRig(1, true);
  try {
    const channel = rig.fast!.createMsiChannel(1);
    const vm = rig.t.vm;
    const time = (f: () => void): number => {
      const t0 = performance.now();
      for (let i = 0; i < M; i++) f();
      return ((performance.now() - t0) * 1000) / M;
    };
    time(() => vm.signalMsi(0xfee0_0000, 0x40)); // warm
    const signalMsi = time(() => vm.signalMsi(0xfee0_0000, 0x40));
    const irqfd = time(() => channel.sendMsi(0xfee0_0000, 0x40));
    channel.dispose();
    return { signalMsi, irqfd };
  } finally {
    rig.close();
  }
}

const probe = probeKvm();
if (!probe.usable) {
  console.log(`skipped: /dev/kvm unusable (${probe.reason})`);
  process.exit(0);
}
for (const [transport, model] of [['pci', 'thread'], ['pci', 'inline'], ['mmio', 'thread'], ['mmio', 'inline']] as const) {
  const slow = await guestLoop(transport, false, model);
  const fast = await guestLoop(transport, true, model);
  console.log(`virtio-${transport} guest notify loop, ${N} writes, vCPU ${model === 'inline' ? 'inline on the JS thread' : 'on a run thread'}:`);
  console.log(`  MMIO exit each : ${slow.usPerWrite.toFixed(2)} µs/write (${slow.exits} exits)`);
  console.log(`  ioeventfd      : ${fast.usPerWrite.toFixed(3)} µs/write in the guest, ${fast.usUntilSeen.toFixed(3)} µs/write until the device saw it (${fast.exits} exits, ${fast.signals} coalesced signals)`);
  console.log(`  ratio          : ${(slow.usPerWrite / fast.usUntilSeen).toFixed(1)}x faster with ioeventfd`);
}
const msi = msiCost();
console.log(`host MSI send, ${M} messages: KVM_SIGNAL_MSI ${msi.signalMsi.toFixed(3)} µs, irqfd write ${msi.irqfd.toFixed(3)} µs (ratio ${(msi.signalMsi / msi.irqfd).toFixed(2)})`);
