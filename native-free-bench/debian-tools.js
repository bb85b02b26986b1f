// Owns installing the bench's native tools from Debian when a run needs them and they are
// missing: wrk (the main figure's load generator), nginx (its C origin, and a peer) and HAProxy
// (a peer), the way .ci/run installs them. Only as root with apt-get (a container, a CI runner, a
// lab host); elsewhere it prints the apt-get line and the runner goes on without the tool
// (autocannon, the uWS origin, a skipped peer, each said in the output). The packages' services
// are not started by the install: Debian's nginx would otherwise serve port 80, and take CPU,
// during the bench. `--no-install` on the runners turns this off.

import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { findExecutable } from './lib.js';

/** Debian's hook for maintainer scripts: exit 101 forbids starting a service (invoke-rc.d). */
const POLICY = '/usr/sbin/policy-rc.d';

/**
 * Install those of `tools` (wrk, nginx, haproxy: Debian names each package as its executable)
 * that are not on PATH or in the sbin directories. Returns the names still missing afterwards;
 * `log` gets one line per step.
 */
export function installMissing(tools, log = (line) => process.stderr.write(line + '\n')) {
  const missing = [...new Set(tools)].filter((t) => findExecutable(t) === null);
  if (missing.length === 0) return [];
  const apt = findExecutable('apt-get');
  if (apt === null || process.getuid?.() !== 0) {
    log(`bench: missing ${missing.join(', ')}; \`apt-get install ${missing.join(' ')}\` as root adds ${missing.length > 1 ? 'them' : 'it'}`);
    return missing;
  }
  log(`bench: installing ${missing.join(', ')} from Debian (apt-get; --no-install skips this) ...`);
  const started = Date.now();
  let ownPolicy = false;
  if (!existsSync(POLICY)) {
    try {
      writeFileSync(POLICY, '#!/bin/sh\n# corelb bench: no service starts during its apt-get install\nexit 101\n', { mode: 0o755 });
      ownPolicy = true;
    } catch (err) {
      log(`bench: cannot write ${POLICY} (${err.message}): the packages' services may start`);
    }
  }
  let failure = null;
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...missing]]) {
      const r = spawnSync(apt, args, { env, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 600_000 });
      if (r.status !== 0) {
        failure = `apt-get ${args[0]} failed: ${(r.stderr ?? r.error?.message ?? '').trim().split('\n').pop() || `status ${r.status}`}`;
        break;
      }
    }
  } finally {
    if (ownPolicy) rmSync(POLICY, { force: true });
  }
  const still = missing.filter((t) => findExecutable(t) === null);
  log(`bench: ${failure ?? 'apt-get done'} in ${((Date.now() - started) / 1000).toFixed(0)} s${still.length ? `; still missing: ${still.join(', ')}` : ''}`);
  return still;
}
