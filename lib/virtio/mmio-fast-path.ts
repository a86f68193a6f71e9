/**
 * The virtio-mmio transport's use of AcceleratorFastPaths: every queue is notified through the one QueueNotify
 * register (base + 0x50, a 32-bit write of the queue index, spec 4.2.2), so each queue gets a watch on that
 * address with datamatch = its index (KVM: one ioeventfd per queue, the write never exits to userspace).
 *
 * Interrupts stay on the level-triggered line (KVM_IRQ_LINE) with InterruptStatus: an irqfd for a level line
 * needs a resample eventfd to learn when the guest's EOI lets the line drop, which is out of scope here.
 */
import type { AcceleratorFastPaths } from '../accel/accelerator.js';
import { QueueNotifyWatches } from './notify-watch.js';

export interface MmioNotifyFastPathOptions {
  fastPaths: AcceleratorFastPaths;
  /** Guest-physical address of the QueueNotify register (window base + MMIO.QueueNotify). */
  address: number;
  queues: number;
  notify: (queue: number) => void;
  log: (message: string) => void;
  name: string;
}

/** Registers the QueueNotify watches; release() them on teardown. Registration failure leaves the bus path. */
export function watchMmioQueueNotify(options: MmioNotifyFastPathOptions): QueueNotifyWatches {
  const { fastPaths, address, queues, notify, log, name } = options;
  if (!Number.isSafeInteger(address) || address < 0) throw new RangeError(`${name}: QueueNotify address ${address} is not valid`);
  const watches = new QueueNotifyWatches(fastPaths, notify, log, name);
  watches.register({ queues, address: () => address, length: 4, datamatch: (q) => q });
  return watches;
}
