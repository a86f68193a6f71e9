/**
 * The virtio-pci transport's use of AcceleratorFastPaths: each queue's notify register (BAR4 + NOTIFY_OFFSET +
 * index * NOTIFY_OFF_MULTIPLIER) is handed to the accelerator as a watched 2-byte write, re-registered whenever
 * BAR4 moves or stops being decoded. A notification that still arrives as a bus write (other sizes, or before a
 * move is noticed) takes the ordinary path; both end in VirtioCore.notify, which makes the device re-read the
 * whole available ring, so coalesced ioeventfd signals lose nothing.
 */
import type { AcceleratorFastPaths, FastPathHandle } from '../../accel/accelerator.js';
import { PciFunction } from '../../pci/pci-function.js';
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
  private handles: FastPathHandle[] = [];
  private base: number | undefined;
  private closed = false;
  /** Notifications that arrived through the accelerator (not the bus), and how many signals carried them. */
  signals = 0;

  constructor(
    private readonly fastPaths: AcceleratorFastPaths,
    private readonly pci: PciFunction,
    private readonly bar: number,
    private readonly queues: number,
    private readonly notify: (queue: number) => void,
    private readonly log: (message: string) => void,
  ) {}

  /** Bring the registrations in line with where BAR `bar` is decoded now. Cheap when nothing moved. */
  sync(): void {
    const want = this.closed ? undefined : this.pci.barMapping(this.bar);
    if (want === this.base) return;
    this.unregister();
    if (want === undefined) return;
    try {
      for (let q = 0; q < this.queues; q++) {
        this.handles.push(this.fastPaths.watchMmioWrite({
          address: want + NOTIFY_OFFSET + q * NOTIFY_OFF_MULTIPLIER,
          length: 2,
          onWrite: () => { this.signals++; this.notify(q); },
        }));
      }
      this.base = want;
    } catch (e) {
      // Everything still works through the bus; only slower.
      this.unregister();
      this.log(`notify fast path unavailable at 0x${want.toString(16)}: ${e instanceof Error ? e.message : String(e)}`);
      this.closed = true;
    }
  }

  close(): void {
    this.closed = true;
    this.unregister();
  }

  private unregister(): void {
    for (const h of this.handles.splice(0)) h.dispose();
    this.base = undefined;
  }
}
