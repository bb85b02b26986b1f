// Owns the scenarios of run.js: what the load generator sends in each, how many connections, how a probe is checked.

export const MiB = 1024 * 1024;
export const ALGORITHMS = ['round-robin', 'least-connections', 'random', 'p2c', 'ewma', 'consistent-hash'];
/** Paths the algorithms scenario cycles through (distinct keys for consistent-hash, hash_key path). */
export const KEY_PATHS = Array.from({ length: 64 }, (_, i) => `/k/${i}`);

// ---------------------------------------------------------------- scenarios

/** The fields a browser's request for a page carries besides Host (Chrome's, shortened): the
 * get-fields scenario. wrk sends only Host otherwise, and corelb pays per field (one call from
 * uWS into JavaScript each), where nginx barely does. */
export const BROWSER_FIELDS = {
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
  accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  'accept-encoding': 'gzip, deflate, br',
  'accept-language': 'en-US,en;q=0.9',
  cookie: 'session=abcdef0123456789; theme=dark',
  referer: 'http://127.0.0.1/',
  'cache-control': 'no-cache',
  'upgrade-insecure-requests': '1',
};

/**
 * What the load generator sends. `wrk`: the scenario is measured with wrk when the run's load is
 * wrk (`close`: a `Connection: close` header, a new connection per request), against the C
 * origin (static-origin.js). Otherwise `mode`: autocannon (keep-alive), new-conn or idle (own
 * clients in load-child.js), against origin.js. `connections(opts)`: how many. `mib`: 'down' (response bytes) or 'up'
 * (request body bytes) for a MiB/s column. `headers`: fields sent besides Host, by either load generator. `check` validates one probe before measuring.
 */
export const SCENARIOS = {
  'get-2B': {
    what: 'GET /, 2-byte body, keep-alive',
    wrk: { close: false },
    method: 'GET',
    path: '/',
    connections: (o) => o.connections,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  'get-1MiB': {
    what: 'GET /bytes/1048576, 1 MiB responses, keep-alive',
    method: 'GET',
    path: '/bytes/1048576',
    connections: () => 8,
    mib: 'down',
    check: (r) => r.status === 200 && r.body.length === MiB,
  },
  'post-1MiB': {
    what: 'POST /sink with a 1 MiB body, short answer, keep-alive',
    method: 'POST',
    path: '/sink',
    bodyBytes: MiB,
    connections: () => 8,
    mib: 'up',
    check: (r) => r.status === 200,
    probeMethod: 'GET',
    probePath: '/',
  },
  'get-fields': {
    what: 'GET /, 2-byte body, keep-alive, with the 8 more fields of a browser request',
    wrk: { close: false },
    method: 'GET',
    path: '/',
    headers: BROWSER_FIELDS,
    connections: (o) => o.connections,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  'conns-1000': {
    what: 'GET /, 2-byte body, 1,000 keep-alive connections at once',
    wrk: { close: false },
    method: 'GET',
    path: '/',
    connections: () => 1000,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  'new-conn': {
    what: 'GET / with Connection: close, a new TCP connection per request',
    wrk: { close: true },
    mode: 'new-conn',
    method: 'GET',
    path: '/',
    connections: (o) => o.connections,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  algorithms: {
    what: 'corelb workers=1 over 3 origin ports, GET /k/0../k/63 (64 keys), keep-alive',
    method: 'GET',
    path: KEY_PATHS[0],
    requests: KEY_PATHS.map((p) => ({ method: 'GET', path: p })),
    connections: (o) => o.connections,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  'idle-10k': {
    what: 'N idle keep-alive connections (one GET each), RSS held, then one more GET on each',
    mode: 'idle',
    method: 'GET',
    path: '/',
    connections: (o) => o.idleConnections,
    idleSec: 3,
    check: (r) => r.status === 200 && r.body === 'ok',
  },
  // not in the default set
  'get-16KiB': {
    what: 'GET /bytes/16384, keep-alive',
    method: 'GET',
    path: '/bytes/16384',
    connections: (o) => o.connections,
    mib: 'down',
    check: (r) => r.status === 200 && r.body.length === 16384,
  },
  'get-256KiB': {
    what: 'GET /bytes/262144, keep-alive',
    method: 'GET',
    path: '/bytes/262144',
    connections: (o) => o.connections,
    mib: 'down',
    check: (r) => r.status === 200 && r.body.length === 262144,
  },
  'post-4KiB': {
    what: 'POST /sink with a 4 KiB body, keep-alive',
    method: 'POST',
    path: '/sink',
    bodyBytes: 4096,
    connections: (o) => o.connections,
    mib: 'up',
    check: (r) => r.status === 200,
    probeMethod: 'GET',
    probePath: '/',
  },
};
export const DEFAULT_SCENARIOS = ['get-2B', 'get-fields', 'conns-1000', 'new-conn', 'get-1MiB', 'post-1MiB', 'algorithms', 'idle-10k'];
/** --quick's default: the default set without get-fields, algorithms and idle-10k (under 3 minutes). */
export const QUICK_SCENARIOS = DEFAULT_SCENARIOS.filter((s) => s !== 'get-fields' && s !== 'algorithms' && s !== 'idle-10k');
/** The scenarios wrk measures (the main figure), in the order of DEFAULT_SCENARIOS. */
export const WRK_SCENARIOS = DEFAULT_SCENARIOS.filter((s) => SCENARIOS[s].wrk);

/** How `scenario` is loaded in a run whose load is `opts.load`: 'wrk', 'autocannon', 'new-conn' or 'idle'. */
export const loadFor = (scenario, opts) => (opts.load === 'wrk' && scenario.wrk ? 'wrk' : (scenario.mode ?? 'autocannon'));
/** Scenarios every "main" target runs (direct runs them except idle-10k). */
export const MAIN = new Set(['get-2B', 'get-fields', 'get-1MiB', 'post-1MiB', 'conns-1000', 'new-conn', 'get-16KiB', 'get-256KiB', 'post-4KiB']);
