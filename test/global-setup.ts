/**
 * Runs once before the test files: makes sure the reference guest (kernels, initramfs, rootfs) is in the cache,
 * building it from Debian packages when it is missing, so `npm test` on a fresh machine needs nothing else.
 * NODEVMM_SKIP_GUEST_BUILD=1 skips the build; tests that need the guest then skip with a printed reason.
 */
import { buildReferenceGuest, referenceGuestArtifacts } from '../lib/guest/reference-guest.js';

export default async function setup(): Promise<void> {
  if (process.env.NODEVMM_SKIP_GUEST_BUILD === '1') {
    console.warn('nodevmm tests: NODEVMM_SKIP_GUEST_BUILD=1, not building the reference guest; guest tests will skip');
    return;
  }
  if (referenceGuestArtifacts()) return;
  const started = Date.now();
  console.log('nodevmm tests: the reference guest is not cached; building it (about 8 minutes on 2 cores) ...');
  await buildReferenceGuest({
    arch: 'all',
    onProgress: (line, stream) => {
      if (stream === 'stdout' || /error|fail/i.test(line)) console.log(`  guest build: ${line}`);
    },
  });
  console.log(`nodevmm tests: reference guest built in ${Math.round((Date.now() - started) / 1000)} s`);
}
