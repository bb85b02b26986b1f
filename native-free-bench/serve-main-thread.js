// corelb's data plane with its one worker's serve task run on the MAIN thread, for profilers
// that only see the main thread (clinic flame / 0x use `--prof`, which here records the main
// isolate only; clinic doctor samples the main event loop). Used by profile.js; not a way to run
// corelb in production.
//
//   node native-free-bench/serve-main-thread.js --config FILE [--dist DIR]
//
// What runs is what `corelb start` runs in the data plane process, minus the thread: the config
// is loaded and validated by corelb (dist/config), the shared buffer is laid out as the primary
// lays it out (layoutFor), the Publisher (health checks, passive ejection, slow start) runs, and
// the worker's `serve` task (dist/worker/serve.js: the uWS front, the engine, balancers, upstream pools,
// proxy) is called directly on this thread with a MessageChannel as its control port, instead of
// through piscina in a worker thread. `workers` in the file is ignored (one serve task).
// Not here: the supervisor, reload (SIGHUP), the admin endpoints.
//
// Prints corelb's JSON `ready` line (with this process's pid) once listening. SIGINT/SIGTERM:
// asks the serve task to stop (no drain), waits for it, exits 0. Under clinic flame, 0x's own
// SIGINT handler exits first, which is fine here: no worker thread holds uWS sockets.

import { MessageChannel } from 'node:worker_threads';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './lib.js';

function parseArgs(argv) {
  const o = { config: null, dist: path.join(REPO_ROOT, 'dist') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config' || a === '-c') o.config = argv[++i];
    else if (a === '--dist') o.dist = path.resolve(argv[++i]);
    else {
      process.stderr.write(`serve-main-thread: unknown argument ${a}\nusage: node native-free-bench/serve-main-thread.js --config FILE [--dist DIR]\n`);
      process.exit(2);
    }
  }
  if (!o.config) {
    process.stderr.write('serve-main-thread: --config FILE is required\n');
    process.exit(2);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const imp = (p) => import(pathToFileURL(path.join(opts.dist, p)).href);
const [{ loadConfigFile, formatProblem }, { layoutFor }, { Publisher }, serveModule, { createLogger }] = await Promise.all([
  imp('config/index.js'),
  imp('primary/data-plane.js'),
  imp('primary/publisher.js'),
  imp('worker/serve.js'),
  imp('log.js'),
]);

const loaded = loadConfigFile(opts.config);
if (!loaded.ok) {
  for (const p of loaded.problems) process.stderr.write(formatProblem(p) + '\n');
  process.exit(1);
}
const config = loaded.config;
const { log } = createLogger(config.log.level, config.log.file);
const state = layoutFor(config);
const { port1, port2 } = new MessageChannel();
let publisher = null;

port1.on('message', (m) => {
  if (m.type === 'listening') {
    publisher = new Publisher(config, state, log);
    publisher.start();
    log.info(
      { listen: config.listen.map((l) => `${l.host}:${l.port}`).join(", "), workers: 1, thread: 'main', pools: config.pools.map((p) => p.name) },
      'ready',
    );
  } else if (m.type === 'error') {
    log.error({ message: m.message }, 'serve task failed');
  }
});

const done = serveModule.default({ workerId: 0, config, buffer: state.buffer, control: port2 }).then(
  () => 0,
  (err) => {
    log.error({ err }, `cannot start: ${err && err.message}`);
    return 1;
  },
);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  publisher?.stop();
  port1.postMessage({ type: 'stop', graceMs: 0 });
  done.then((code) => {
    port1.close();
    log.flush(() => process.exit(code));
  });
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
done.then((code) => {
  if (!stopping && code !== 0) log.flush(() => process.exit(code));
});
