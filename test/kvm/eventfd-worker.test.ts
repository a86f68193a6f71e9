/**
 * EventFd.watch in a worker_threads Worker that ends with the watch still open (terminated — also with a signal
 * pending, or inside the callback —, returning, or process.exit()): the process must survive and the eventfd
 * must be closed. Only the worker loads the addon, so
 * Node unloads it when the worker's environment goes away; a poll handle whose close callback ran after that
 * would jump into unmapped code (SIGSEGV). Runs in a child process so a crash is a test failure, not a dead
 * test runner. Skipped with the reason when the addon (or its EventFd.watch) is missing.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative } from '../../lib/kvm/native.js';

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

function skipReason(): string | null {
  try {
    const { EventFd } = loadNative();
    if (typeof EventFd.prototype.watch !== 'function') return 'the native EventFd has no watch() (rebuild: npm run build:native)';
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
const reason = skipReason();
if (reason) console.warn(`skipping the EventFd worker-teardown tests: ${reason}`);

const dir = mkdtempSync(join(tmpdir(), 'nodevmm-eventfd-worker-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The worker: watch an eventfd, see one signal delivered, report the fd, then end as told — with the watch open.
const WORKER = `
  const { parentPort, workerData } = require('node:worker_threads');
  const { EventFd } = require(workerData.addonPath);
  const e = new EventFd(0, 0);
  // The watch is unref'd: this timer keeps the worker alive until the first signal has been delivered.
  const alive = setInterval(() => {}, 1000);
  e.watch((n) => {
    parentPort.postMessage({ fd: e.fd, counter: n });
    if (workerData.how === 'terminate') return;  // only terminate() ends it
    if (workerData.how === 'terminate-in-callback') for (;;);  // terminate() interrupts the callback itself
    clearInterval(alive);
    if (workerData.how === 'exit') process.exit(0);
    if (workerData.how === 'unwatch-close') { e.unwatch(); e.close(); }
    // 'return': nothing keeps the loop alive any more, so the worker ends with the watch open.
  });
  e.write(3);
`;

// The parent: only its workers load the addon until every worker is gone; then it watches an eventfd itself.
const MAIN = `
  import { Worker } from 'node:worker_threads';
  import { fstatSync, writeSync } from 'node:fs';
  import { createRequire } from 'node:module';
  const [workerFile, addonPath] = process.argv.slice(2);
  const isOpen = (fd) => { try { fstatSync(fd); return true; } catch { return false; } };
  for (const how of ['terminate', 'terminate-pending', 'terminate-in-callback', 'return', 'exit', 'return', 'unwatch-close']) {
    const w = new Worker(workerFile, { workerData: { addonPath, how: how === 'terminate-pending' ? 'terminate' : how } });
    const exited = new Promise((r) => w.once('exit', r));
    const { fd, counter } = await new Promise((r) => w.once('message', r));
    if (how.startsWith('terminate')) {
      // terminate-pending: a signal is waiting in the counter, so the fd is readable as the worker goes away.
      if (how === 'terminate-pending') writeSync(fd, new Uint8Array(new BigUint64Array([5n]).buffer));
      await w.terminate();
    }
    await exited;
    console.log(how + ' counter=' + counter + ' fd-open=' + isOpen(fd));
  }
  const { EventFd } = createRequire(import.meta.url)(addonPath);
  const e = new EventFd(0, 0);
  const alive = setInterval(() => {}, 1000);  // the watch alone does not keep the loop alive
  const got = await new Promise((r) => { e.watch(r); e.write(7); });
  clearInterval(alive);
  e.close();
  console.log('parent counter=' + got);
`;

describe.skipIf(reason !== null)('EventFd.watch in a worker that ends while watching', () => {
  it('the process survives every way of ending, the fd is closed, and the addon works afterwards', { timeout: 60_000 }, async () => {
    const addonPath = (createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string }).path(REPO);
    writeFileSync(join(dir, 'worker.cjs'), WORKER);
    writeFileSync(join(dir, 'main.mjs'), MAIN);
    const r = await run(process.execPath, [join(dir, 'main.mjs'), join(dir, 'worker.cjs'), addonPath], { timeout: 30_000 }).catch(
      (e: { code?: unknown; signal?: unknown; stdout?: string; stderr?: string }) => ({ failed: e }),
    );
    if ('failed' in r) throw new Error(`the child failed (${String(r.failed.code ?? r.failed.signal)}): ${r.failed.stdout}${r.failed.stderr}`);
    expect(r.stdout.trim().split('\n')).toEqual([
      'terminate counter=3 fd-open=false',
      'terminate-pending counter=3 fd-open=false',
      'terminate-in-callback counter=3 fd-open=false',
      'return counter=3 fd-open=false',
      'exit counter=3 fd-open=false',
      'return counter=3 fd-open=false',
      'unwatch-close counter=3 fd-open=false',
      'parent counter=7',
    ]);
  });
});
