/** vitest glue for the KVM tests: skip (printing the reason) when /dev/kvm is unusable. */
import { describe } from 'vitest';
import { probe } from './guest-setup.js';

export * from './guest-setup.js';

/** describe() that skips (printing why) when /dev/kvm is not usable. */
export const describeKvm = (name: string, fn: () => void): void => {
  describe.skipIf(!probe.usable)(probe.usable ? name : `${name} (skipped: ${probe.reason})`, fn);
};
