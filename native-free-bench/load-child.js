// The load generator, in its own process (forked by run.js with an IPC channel), so that
// autocannon's CPU never lands in the process being measured.
//
// Protocol (process.send / 'message'):
//   parent -> child  { type: 'run', url, method, body, headers, connections, pipelining, warmup, duration }
//   child  -> parent { type: 'warmed', warmup: <summary> }     after the warm-up run
//   parent -> child  { type: 'go' }                            parent has sampled CPU "before"
//   child  -> parent { type: 'done', result: <autocannon result> }
//   child  -> parent { type: 'error', message }

import autocannon from 'autocannon';

function cannon(opts) {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

let spec = null;

function baseOpts(durationSec) {
  const o = {
    url: spec.url,
    method: spec.method ?? 'GET',
    connections: spec.connections,
    pipelining: spec.pipelining,
    duration: durationSec,
    workers: 0,
    timeout: 10,
  };
  if (spec.body !== undefined) o.body = spec.body;
  if (spec.headers) o.headers = spec.headers;
  return o;
}

function summary(r) {
  return {
    requests: r.requests.total,
    errors: r.errors,
    timeouts: r.timeouts,
    non2xx: r.non2xx,
    duration: r.duration,
  };
}

process.on('message', async (msg) => {
  try {
    if (msg.type === 'run') {
      spec = msg;
      let warm = null;
      if (spec.warmup > 0) warm = summary(await cannon(baseOpts(spec.warmup)));
      process.send({ type: 'warmed', warmup: warm });
    } else if (msg.type === 'go') {
      const r = await cannon(baseOpts(spec.duration));
      process.send({ type: 'done', result: r }, () => process.disconnect());
    }
  } catch (err) {
    process.send({ type: 'error', message: String(err && err.stack ? err.stack : err) }, () => process.exit(1));
  }
});
