/** EventFd.watch: eventfd signals reach JS from the event loop (uv_poll in the addon), coalesced, never blocking. */
import { afterEach, expect, it } from 'vitest';
import type { EventFd } from '../../lib/kvm/index.js';
import { Kvm } from '../../lib/kvm/index.js';
import { u16 } from './asm.js';
import { createTestVm, describeKvm, enterRealMode, load, type TestVm } from './harness.js';

const nextTurn = (): Promise<void> => new Promise((r) => setTimeout(r, 5));

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await nextTurn();
  }
}

describeKvm('EventFd.watch', () => {
  let kvm: Kvm | undefined;
  let t: TestVm | undefined;
  const fds: EventFd[] = [];
  afterEach(() => {
    for (const f of fds.splice(0)) f.close();
    kvm?.close();
    kvm = undefined;
    t?.close();
    t = undefined;
  });

  const open = (): EventFd => {
    kvm ??= Kvm.open();
    const f = kvm.createEventFd();
    fds.push(f);
    return f;
  };

  it('calls back from the event loop with the coalesced counter, which it resets', async () => {
    const efd = open();
    expect(efd.canWatch).toBe(true);
    const seen: number[] = [];
    efd.watch((n) => seen.push(n));
    efd.write(2);
    efd.write(3);
    expect(seen).toEqual([]); // never synchronously
    await until(() => seen.length > 0, 'the first callback');
    expect(seen).toEqual([5]);
    efd.write(1);
    await until(() => seen.length > 1, 'the second callback');
    expect(seen).toEqual([5, 1]);
    // The watcher made the fd non-blocking and already consumed everything.
    expect(efd.read()).toBeUndefined();
  });

  it('unwatch stops the callbacks and leaves later signals in the counter; watching twice is refused', async () => {
    const efd = open();
    const seen: number[] = [];
    efd.watch((n) => seen.push(n));
    expect(() => efd.watch(() => {})).toThrow(/already watched/);
    efd.unwatch();
    efd.unwatch(); // idempotent
    efd.write(4);
    await nextTurn();
    await nextTurn();
    expect(seen).toEqual([]);
    expect(efd.read()).toBe(4);
    efd.watch((n) => seen.push(n)); // may be watched again
    efd.write(7);
    await until(() => seen.length > 0, 'the callback after re-watching');
    expect(seen).toEqual([7]);
  });

  it('close() while watched stops the watcher; a closed eventfd cannot be watched', async () => {
    const efd = open();
    let calls = 0;
    efd.watch(() => { calls++; });
    efd.close();
    await nextTurn();
    expect(calls).toBe(0);
    expect(() => efd.watch(() => {})).toThrow(/closed/);
  });

  it('a guest port write through KVM_IOEVENTFD reaches the watcher, not the exit handler', async () => {
    t = createTestVm();
    const vcpu = t.createVcpu(0);
    const efd = t.kvm.createEventFd();
    fds.push(efd);
    t.vm.ioeventfd({ address: 0x510, length: 2, eventFd: efd, pio: true });
    load(t.ram, 0x1000, [
      0xba, ...u16(0x510), // mov dx, 0x510
      0xef, 0xef, 0xef,    // out dx, ax  (x3)
      0xf4,                // hlt
    ]);
    enterRealMode(vcpu, 0x1000);
    let total = 0;
    efd.watch((n) => { total += n; });
    const exits: number[] = [];
    expect((await vcpu.runLoop({ pio: { read: () => 0, write: (port) => { exits.push(port); } } })).reason).toBe('hlt');
    await until(() => total === 3, 'three coalesced-or-not signals');
    expect(exits).toEqual([]);
  });
});
