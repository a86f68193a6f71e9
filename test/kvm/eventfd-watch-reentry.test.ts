/**
 * The native EventFd.watch (native/fd_watch.cc underneath) beyond the basics in eventfd.test.ts: unwatch(),
 * close() and watch() again from inside the callback; the watched object survives garbage collection with no JS
 * reference left; the async_hooks resource ('nodevmm:eventfd') is the one the callback runs in and is destroyed
 * once unwatched. Needs only the addon (no /dev/kvm); skipped with the reason when it is missing.
 */
import { createHook, executionAsyncId } from 'node:async_hooks';
import { writeSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { loadNative, type NativeEventFd } from '../../lib/kvm/native.js';

type EventFdClass = new (initialValue?: number, flags?: number) => NativeEventFd;
function eventFdClass(): EventFdClass | string {
  try {
    const { EventFd } = loadNative();
    return typeof EventFd.prototype.watch === 'function' ? EventFd : 'the native EventFd has no watch() (rebuild: npm run build:native)';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
const classOrReason = eventFdClass();
const reason = typeof classOrReason === 'string' ? classOrReason : null;
if (reason) console.warn(`skipping the EventFd watch re-entry tests: ${reason}`);
const EventFd = classOrReason as EventFdClass;

/** Adds `n` to an eventfd's counter through the fd itself (as KVM or another thread would), not the object. */
function signal(fd: number, n: number): void {
  writeSync(fd, new Uint8Array(new BigUint64Array([BigInt(n)]).buffer));
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Many loop turns: a watch that should be gone would have called back in one of them. */
async function manyTurns(): Promise<void> {
  for (let i = 0; i < 30; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 20));
}

describe.skipIf(reason !== null)('native EventFd.watch: re-entry, lifetime, async context', () => {
  it('unwatch() inside the callback stops delivery; the signal after it stays in the counter', async () => {
    const e = new EventFd(0, 0);
    const seen: number[] = [];
    e.watch!((n) => {
      seen.push(n);
      e.unwatch!();
      e.unwatch!();
    });
    e.write(2);
    await until(() => seen.length > 0, 'the callback');
    e.write(5);
    await manyTurns();
    expect(seen).toEqual([2]);
    expect(e.read()).toBe(5);
    e.close();
  });

  it('close() inside the callback closes the fd and ends delivery', async () => {
    const e = new EventFd(0, 0);
    const fd = e.fd;
    let calls = 0;
    e.watch!(() => {
      calls++;
      e.close();
    });
    e.write(1);
    await until(() => calls > 0, 'the callback');
    expect(e.fd).toBe(-1);
    expect(e.write(1)).toBe(-9); // -EBADF
    await manyTurns();
    expect(calls).toBe(1);
    expect(() => signal(fd, 1)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('unwatch() then watch() with a new callback inside the callback: the new one gets the next signals', async () => {
    const e = new EventFd(0, 0);
    const seen: string[] = [];
    e.watch!((n) => {
      seen.push(`first ${n}`);
      e.unwatch!();
      e.watch!((m) => seen.push(`second ${m}`));
    });
    e.write(3);
    await until(() => seen.length > 0, 'the first callback');
    e.write(4);
    await until(() => seen.length > 1, 'the second callback');
    e.write(6);
    await until(() => seen.length > 2, 'the third callback');
    expect(seen).toEqual(['first 3', 'second 4', 'second 6']);
    e.close();
  });

  it('a watched EventFd with no JS reference left survives garbage collection and keeps calling back', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const seen: number[] = [];
    let fd = -1;
    (() => {
      const e = new EventFd(0, 0);
      fd = e.fd;
      e.watch!((n) => seen.push(n));
    })();
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    signal(fd, 9);
    await until(() => seen.length > 0, 'the callback after GC');
    expect(seen).toEqual([9]);
    // Still open and watched (it cannot be reached from JS any more, so it lives until the process ends).
    signal(fd, 1);
    await until(() => seen.length > 1, 'a second callback after GC');
    expect(seen).toEqual([9, 1]);
  });

  it("the callback runs in the watch's 'nodevmm:eventfd' async resource, destroyed after unwatch() from inside it", async () => {
    const inits = new Map<number, string>();
    const destroyed: number[] = [];
    const hook = createHook({
      init(id, type) {
        if (type.startsWith('nodevmm:')) inits.set(id, type);
      },
      destroy(id) {
        if (inits.has(id)) destroyed.push(id);
      },
    }).enable();
    try {
      const e = new EventFd(0, 0);
      let ranIn = -1;
      e.watch!(() => {
        ranIn = executionAsyncId();
        e.unwatch!();
      });
      const ids = [...inits.keys()];
      expect(ids).toHaveLength(1);
      expect(inits.get(ids[0]!)).toBe('nodevmm:eventfd');
      expect(destroyed).toEqual([]);
      e.write(1);
      await until(() => ranIn !== -1, 'the callback');
      expect(ranIn).toBe(ids[0]);
      await until(() => destroyed.length > 0, 'the destroy hook');
      expect(destroyed).toEqual(ids);
      e.close();
    } finally {
      hook.disable();
    }
  });
});
