/** eventfd(2) wrapper for KVM_IRQFD (inject an interrupt by writing) and KVM_IOEVENTFD (a guest write signals it). */
import { constants } from 'node:os';
import { check } from './errors.js';
import type { NativeEventFd } from './native.js';

export class EventFd {
  /** @internal use Kvm.createEventFd */
  constructor(readonly native: NativeEventFd) {}

  get fd(): number { return this.native.fd; }

  /** Adds `increment` (default 1) to the counter. */
  write(increment = 1): void {
    check(this.native.write(increment), 'write(eventfd)');
  }

  /** Reads and resets the counter; undefined when non-blocking and zero. */
  read(): number | undefined {
    const r = this.native.read();
    if (r === -constants.errno.EAGAIN) return undefined;
    return check(r, 'read(eventfd)');
  }

  /** True when the addon can watch an eventfd from the event loop (watch()). */
  get canWatch(): boolean { return typeof this.native.watch === 'function'; }

  /**
   * Calls `onSignal(count)` from the event loop whenever the counter becomes non-zero: `count` writes (or the
   * sum of their increments) coalesced since the last call, the counter reset. Never blocks the event loop.
   * For KVM_IOEVENTFD, count is how many guest writes matched; the device must treat any count as "look again".
   */
  watch(onSignal: (count: number) => void): void {
    if (!this.native.watch) throw new Error('eventfd watch: the native addon predates EventFd.watch (rebuild it with `npm run build:native`)');
    this.native.watch((counter) => {
      if (counter < 0) throw new Error(`read(eventfd ${this.fd}) failed: errno ${-counter}`);
      onSignal(counter);
    });
  }

  /** Stops watch(); idempotent. */
  unwatch(): void { this.native.unwatch?.(); }

  close(): void { this.native.close(); }
}
