// Owns which configuration fields change only on a restart, and what a reload keeps of them: the
// listen socket and the thread count belong to the running workers; the log file is opened by
// the supervisor, the primary and every worker, and stdout cannot be reopened as a file (nor the
// reverse); the admin server and the state file are the primary's from its start; uWebSockets.js
// fixes a listener's WebSocket idle timeout and largest message when the listener starts; the
// cache's store is made once, at start, with its size (so a reload keeps what it holds).

import type { Config } from './types.js';

/** The listeners' addresses, and whether each speaks TLS or redirects, are the same (a listener's
 * certificates and TLS settings may change on a reload: the workers swap its app). */
function sameAddresses(a: Config['listen'], b: Config['listen']): boolean {
  return (
    a.length === b.length &&
    a.every((l, i) => {
      const o = b[i]!;
      return l.host === o.host && l.port === o.port && (l.tls === null) === (o.tls === null) && l.redirectHttps === o.redirectHttps && l.acmeWebroot === o.acmeWebroot;
    })
  );
}

/** `next` with the running values of the restart-only fields, and the names of those that differed. */
export function keepRestartOnly(next: Config, running: Config): { config: Config; kept: string[] } {
  const kept: string[] = [];
  if (!sameAddresses(next.listen, running.listen)) kept.push('listen');
  if (next.workers !== running.workers) kept.push('workers');
  if (next.log.file !== running.log.file) kept.push('log.file');
  if (next.stateFile !== running.stateFile) kept.push('state_file');
  if (JSON.stringify(next.admin) !== JSON.stringify(running.admin)) kept.push('admin');
  // the relay reads them too (its queue bound, the backend side's message limit): one value for both sides
  const wsIdle = next.timeouts.websocketIdleMs !== running.timeouts.websocketIdleMs;
  const wsMessage = next.limits.websocketMessageBytes !== running.limits.websocketMessageBytes;
  if (wsIdle) kept.push('timeouts.websocket_idle');
  if (wsMessage) kept.push('limits.websocket_message');
  const cache = keptCache(next.cache, running.cache);
  if (cache !== next.cache) kept.push(running.cache === null ? 'cache' : 'cache.size');
  if (kept.length === 0) return { config: next, kept };
  const config = Object.freeze({
    ...next,
    listen: running.listen,
    workers: running.workers,
    admin: running.admin,
    log: Object.freeze({ ...next.log, file: running.log.file }),
    stateFile: running.stateFile,
    timeouts: wsIdle ? Object.freeze({ ...next.timeouts, websocketIdleMs: running.timeouts.websocketIdleMs }) : next.timeouts,
    limits: wsMessage ? Object.freeze({ ...next.limits, websocketMessageBytes: running.limits.websocketMessageBytes }) : next.limits,
    cache,
  });
  return { config, kept };
}

/** The cache settings a reload may apply: all but the size, and no store where none was made. */
function keptCache(next: Config['cache'], running: Config['cache']): Config['cache'] {
  if (next === null) return null; // the store stays allocated, unused
  if (running === null) return null;
  if (next.sizeBytes === running.sizeBytes) return next;
  return Object.freeze({ ...next, sizeBytes: running.sizeBytes });
}
