/**
 * The virtio-pci transport's use of AcceleratorFastPaths: each queue's notify register (BAR4 + NOTIFY_OFFSET +
 * index * NOTIFY_OFF_MULTIPLIER) is handed to the accelerator as a watched 2-byte write, re-registered whenever
 * BAR4 moves or stops being decoded. A notification that still arrives as a bus write (other sizes, or before a
 * move is noticed) takes the ordinary path; both end in VirtioCore.notify, which makes the device re-read the
 * whole available ring, so coalesced ioeventfd signals lose nothing. The per-queue watches themselves are
 * ../notify-watch.ts, shared with virtio-mmio.
 */
import type { AcceleratorFastPaths } from '../../accel/accelerator.js';
import { PciFunction } from '../../pci/pci-function.js';
import { QueueNotifyWatches } from '../notify-watch.js';
import { NOTIFY_OFF_MULTIPLIER, NOTIFY_OFFSET } from './constants.js';

/** A PciFunction that reports config-space writes and resets (BAR moves, memory decode toggles). */
export class ObservedPciFunction extends PciFunction {
  onChange: (() => void) | undefined;

  override writeConfig(offset: number, size: number, value: number): void {
    super.writeConfig(offset, size, value);
    this.onChange?.();
  }

  override attach(...args: Parameters<PciFunction['attach']>): void {
    super.attach(...args);
    this.onChange?.();
  }

  override reset(): void {
    super.reset();
    this.onChange?.();
  }

  override detach(): void {
    super.detach();
    this.onChange?.();
  }
}

export class NotifyFastPath {
  private readonly watches: QueueNotifyWatches;
  private base: number | undefined;
  private closed = false;

  constructor(
    fastPaths: AcceleratorFastPaths,
    private readonly pci: PciFunction,
    private readonly bar: number,
    private readonly queues: number,
    notify: (queue: number) => void,
    log: (message: string) => void,
  ) {
    this.watches = new QueueNotifyWatches(fastPaths, notify, log, pci.name);
  }

  /** Notifications that arrived through the accelerator (not the bus), and how many signals carried them. */
  get signals(): number {
    return this.watches.signals;
  }

  /** Bring the registrations in line with where BAR `bar` is decoded now. Cheap when nothing moved. */
  sync(): void {
    const want = this.closed ? undefined : this.pci.barMapping(this.bar);
    if (want === this.base) return;
    this.unregister();
    if (want === undefined) return;
    const registered = this.watches.register({
      queues: this.queues,
      address: (q) => want + NOTIFY_OFFSET + q * NOTIFY_OFF_MULTIPLIER,
      length: 2,
    });
    // A failure is logged by register(); everything still works through the bus, so stop trying.
    if (registered) this.base = want;
    else this.closed = true;
  }

  close(): void {
    this.closed = true;
    this.unregister();
  }

  private unregister(): void {
    this.watches.release();
    this.base = undefined;
  }
}
