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
    // checks (a collection would hide per-pick garbage), and gc() to start them clean.
    poolOptions: { forks: { execArgv: ['--expose-gc', '--max-semi-space-size=64'] } },
  },
});
