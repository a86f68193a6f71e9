/**
 * Queue notifications through AcceleratorFastPaths, shared by the virtio-mmio and virtio-pci transports: one
 * watched MMIO write per virtqueue (KVM: an ioeventfd), all registered or none. A watch fires from the event
 * loop with coalesced signals; the transport's notify path makes the device re-read the whole available ring,
 * so coalescing loses nothing. Writes the watches do not match (other sizes or values, or before registration)
 * still reach the bus and end in the same notify path.
 */
import type { AcceleratorFastPaths, FastPathHandle } from '../accel/accelerator.js';

/** Where each queue's notification is written. */
export interface QueueNotifyLayout {
  queues: number;
  /** Guest-physical address of queue `queue`'s notification write. */
  address(queue: number): number;
  /** Exact write size the guest uses. */
  length: 1 | 2 | 4;
  /** The value that names `queue` when all queues share one register (virtio-mmio QueueNotify); omitted: any. */
  datamatch?(queue: number): number;
}

export class QueueNotifyWatches {
  private handles: FastPathHandle[] = [];
  /** Notifications that arrived through the accelerator (not the bus): signals, each covering one or more writes. */
  signals = 0;

  constructor(
    private readonly fastPaths: AcceleratorFastPaths,
    private readonly notify: (queue: number) => void,
    private readonly log: (message: string) => void,
    private readonly name: string,
  ) {}

  /** True while watches are registered. */
  get active(): boolean {
    return this.handles.length > 0;
  }

  /**
   * Registers one watch per queue (releasing any previous set). On failure nothing stays registered, the
   * reason is logged and false returned: everything still works through the bus, only slower.
   */
  register(layout: QueueNotifyLayout): boolean {
    this.release();
    try {
      for (let q = 0; q < layout.queues; q++) {
        const datamatch = layout.datamatch?.(q);
        this.handles.push(this.fastPaths.watchMmioWrite({
          address: layout.address(q),
          length: layout.length,
          ...(datamatch === undefined ? {} : { datamatch }),
          onWrite: () => { this.signals++; this.notify(q); },
        }));
      }
      return true;
    } catch (e) {
      this.release();
      const where = layout.queues > 0 ? ` at 0x${layout.address(0).toString(16)}` : '';
      this.log(`${this.name}: notify fast path unavailable${where}: ${e instanceof Error ? e.message : String(e)}`);
      return false;
    }
  }

  /** Unregisters every watch (a notification already signalled is still delivered). Idempotent. */
  release(): void {
    for (const h of this.handles.splice(0)) h.dispose();
  }
}
