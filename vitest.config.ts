import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    pool: 'forks',
    // Vitest's default (cpus - 1) is a single worker on our 2-core CI machines; most slow files boot guests
    // and spend part of their time waiting on the guest, so two workers use both cores.
    maxWorkers: 2,
    include: ['test/**/*.test.ts'],
    // Builds the reference guest into ~/.cache/nodevmm when it is missing (npm test needs nothing else).
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
