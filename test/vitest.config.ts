// Test runner settings. Lives under test/ so the repository's top level stays as the README lists.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // End-to-end files start real proxies with several threads each; on a 2-core machine they
    // run one file at a time so that no test starves another of CPU.
    fileParallelism: false,
    pool: 'forks',
    // A young generation large enough that no scavenge runs during the balancers' allocation
    // checks (a collection would hide per-pick garbage), and gc() to start them clean. The minimum
    // matters: V8 starts with a 1 MB semi-space and grows it only as it sees fit, so without it
    // 100,000 allocations of 16 bytes can be collected while they are being measured.
    poolOptions: { forks: { execArgv: ['--expose-gc', '--min-semi-space-size=64', '--max-semi-space-size=64'] } },
  },
});
