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

  close(): void { this.native.close(); }
}
