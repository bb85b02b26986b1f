// Owns the admin HTTP server, run by the primary thread on node:http (it is not the request path):
// routing, the bearer token check, the actions (drain, enable, weight, reload: each logged with
// what changed) and the streams: /metrics and /status read the shared buffers through Counters,
// /events pushes one status snapshot per second to every open dashboard (server-sent events);
// /healthz and /readyz answer without a token (src/admin/health.ts).

import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { normaliseBackendUrl } from '../config/backend-url.js';
import { MAX_WEIGHT } from '../config/pools.js';
import { printableConfig } from '../config/print.js';
import type { AdminConfig } from '../config/types.js';
import type { AdminActions } from './actions.js';
import { purgeRequest } from './cache.js';
import { DASHBOARD_HTML } from './dashboard.js';
import { readiness, readinessText } from './health.js';
import { METRICS_CONTENT_TYPE, renderMetrics, type ProcessFigures } from './metrics.js';
import { statusJson } from './status.js';

/** Largest action body read; actions take three short fields. */
const MAX_BODY_BYTES = 64 * 1024;
/** How often /events sends a snapshot. */
export const EVENTS_INTERVAL_MS = 1000;

type Method = 'GET' | 'POST';
interface Route {
  readonly method: Method;
  /** The token may come as ?token= too (pages a browser opens: EventSource cannot set headers). */
  readonly queryToken: boolean;
  /** Answered without a token: health probes (a load balancer's, Kubernetes') carry none. */
  readonly open?: boolean;
  readonly handle: (server: AdminServer, ex: Exchange) => void | Promise<void>;
}

interface Exchange {
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly url: URL;
}

/** A request the admin server refuses, with the status and the field at fault. */
class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

export function processFigures(): ProcessFigures {
  const cpu = process.cpuUsage();
  return { cpuSeconds: (cpu.user + cpu.system) / 1e6, residentBytes: process.memoryUsage.rss() };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let length = 0;
    // past the limit the rest is read and dropped, so that the client reads the 413
    req.on('data', (d: Buffer) => {
      length += d.length;
      if (length <= MAX_BODY_BYTES) parts.push(d);
    });
    req.on('end', () => {
      if (length > MAX_BODY_BYTES) reject(new BadRequest(413, `body over ${MAX_BODY_BYTES} bytes`));
      else resolve(Buffer.concat(parts).toString('utf8'));
    });
    req.on('error', reject);
  });
}

/** Action fields from the query string, overridden by a JSON object body. */
async function actionParams(ex: Exchange): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = Object.fromEntries(ex.url.searchParams);
  const text = (await readBody(ex.req)).trim();
  if (text === '') return out;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new BadRequest(400, 'the body must be a JSON object like {"pool":"web","backend":"http://127.0.0.1:3001"}');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new BadRequest(400, 'the body must be a JSON object');
  return Object.assign(out, body);
}

const ROUTES: Readonly<Record<string, Route>> = {
  '/': { method: 'GET', queryToken: true, handle: serveDashboard },
  '/healthz': { method: 'GET', queryToken: false, open: true, handle: serveHealthz },
  '/readyz': { method: 'GET', queryToken: false, open: true, handle: serveReadyz },
  '/events': { method: 'GET', queryToken: true, handle: serveEvents },
  '/metrics': { method: 'GET', queryToken: false, handle: serveMetrics },
  '/status': { method: 'GET', queryToken: false, handle: serveStatus },
  '/config': { method: 'GET', queryToken: false, handle: serveConfig },
  '/backends/drain': { method: 'POST', queryToken: false, handle: drainBackend },
  '/backends/enable': { method: 'POST', queryToken: false, handle: enableBackend },
  '/backends/weight': { method: 'POST', queryToken: false, handle: setBackendWeight },
  '/reload': { method: 'POST', queryToken: false, handle: reloadConfig },
  '/cache': { method: 'GET', queryToken: false, handle: serveCache },
  '/cache/purge': { method: 'POST', queryToken: false, handle: purgeCache },
};

export class AdminServer {
  readonly proxy: AdminActions;
  readonly log: Logger;
  private readonly config: AdminConfig;
  private readonly server: http.Server;
  private readonly tokenDigest: Buffer | null;
  private readonly streams = new Set<http.ServerResponse>();
  private ticker: NodeJS.Timeout | null = null;
  private port = 0;

  constructor(proxy: AdminActions, config: AdminConfig, log: Logger) {
    this.proxy = proxy;
    this.config = config;
    this.log = log.child({ component: 'admin' });
    this.tokenDigest = config.token === null ? null : sha256(config.token);
    this.server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => this.onRequest(req, res));
    this.server.keepAliveTimeout = 5_000;
  }

  /** Resolves once listening; rejects with a message naming the address (e.g. already in use). */
  listen(): Promise<void> {
    const { host, port } = this.config;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EADDRNOTAVAIL' ? 'address not available on this machine' : err.message;
        reject(new Error(`admin server: cannot listen on ${this.hostForUrl()}:${port}: ${why}`));
      };
      this.server.once('error', onError);
      this.server.listen({ host, port, exclusive: true }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.log.error({ err }, 'admin server error'));
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private hostForUrl(): string {
    return this.config.host.includes(':') ? `[${this.config.host}]` : this.config.host;
  }

  get url(): string {
    return `http://${this.hostForUrl()}:${this.port}`;
  }

  /** Stop listening and end every connection (event streams included). */
  close(): Promise<void> {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    for (const s of this.streams) s.end();
    this.streams.clear();
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://admin.invalid');
    Promise.resolve()
      .then(() => this.route({ req, res, url }))
      .catch((err: unknown) => {
        if (err instanceof BadRequest) {
          if (!res.headersSent) sendJson(res, err.status, err.field === undefined ? { error: err.message } : { error: err.message, field: err.field });
          return;
        }
        this.log.error({ err, method: req.method, path: url.pathname }, 'admin request failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
  }

  private route(ex: Exchange): void | Promise<void> {
    const route = ROUTES[ex.url.pathname];
    if (route?.open !== true && !this.authorized(ex, route?.queryToken ?? false)) {
      sendJson(ex.res, 401, { error: 'missing or wrong token: send Authorization: Bearer <token>' }, { 'www-authenticate': 'Bearer realm="corelb admin"' });
      return;
    }
    if (route === undefined) throw new BadRequest(404, `no route ${ex.url.pathname}; routes: ${Object.keys(ROUTES).join(', ')}`);
    const method = ex.req.method ?? '';
    const allowed = route.method === 'GET' ? ['GET', 'HEAD'] : ['POST'];
    if (!allowed.includes(method)) {
      sendJson(ex.res, 405, { error: `${ex.url.pathname} takes ${allowed.join(' or ')}` }, { allow: allowed.join(', ') });
      return;
    }
    if (route.method === 'POST') this.checkOrigin(ex.req);
    return route.handle(this, ex);
  }

  /** With a token configured: `Authorization: Bearer <token>` (or ?token= where allowed). */
  private authorized(ex: Exchange, queryToken: boolean): boolean {
    const expected = this.tokenDigest;
    if (expected === null) return true;
    const header = ex.req.headers.authorization;
    let given: string | null = null;
    if (header !== undefined) {
      const m = /^bearer +(\S+) *$/i.exec(header);
      if (m !== null) given = m[1]!;
    } else if (queryToken) given = ex.url.searchParams.get('token');
    // both sides hashed: equal lengths for timingSafeEqual, and no length leak
    return given !== null && timingSafeEqual(sha256(given), expected);
  }

  /**
   * A browser on another site can POST to a loopback port (a form needs no preflight): refuse a
   * request whose Origin is not this server.
   */
  private checkOrigin(req: http.IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      host = '';
    }
    if (host !== req.headers.host) throw new BadRequest(403, `cross-origin request from ${origin} refused`);
  }

  sendStatus(res: http.ServerResponse): void {
    sendJson(res, 200, statusJson(this.proxy.snapshot(), processFigures(), this.proxy.cacheFigures()));
  }

  /** Start an event stream: one status snapshot now, then one every EVENTS_INTERVAL_MS. */
  openStream(res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.socket?.setNoDelay(true);
    res.write(`retry: 2000\n\n`);
    res.write(this.event());
    this.streams.add(res);
    res.on('close', () => {
      this.streams.delete(res);
      if (this.streams.size === 0 && this.ticker !== null) {
        clearInterval(this.ticker);
        this.ticker = null;
      }
    });
    this.ticker ??= setInterval(() => this.broadcast(), EVENTS_INTERVAL_MS);
  }

  private event(): string {
    return `data: ${JSON.stringify(statusJson(this.proxy.snapshot(), processFigures(), this.proxy.cacheFigures()))}\n\n`;
  }

  private broadcast(): void {
    if (this.streams.size === 0) return;
    const message = this.event();
    for (const s of this.streams) s.write(message);
  }

  /** The backend and pool an action names, validated against the running config. */
  target(p: Record<string, unknown>): { url: string; pool: string | null; pools: string[] } {
    const rawBackend = p.backend;
    if (rawBackend === undefined || rawBackend === '') throw new BadRequest(400, 'backend is required: the backend URL, like http://127.0.0.1:3001', 'backend');
    if (typeof rawBackend !== 'string') throw new BadRequest(400, 'backend must be a URL string', 'backend');
    const addr = normaliseBackendUrl(rawBackend);
    if (typeof addr === 'string') throw new BadRequest(400, `backend: ${addr}`, 'backend');
    const rawPool = p.pool;
    if (rawPool !== undefined && typeof rawPool !== 'string') throw new BadRequest(400, 'pool must be a pool name', 'pool');
    const pool = rawPool === undefined || rawPool === '' ? null : rawPool;
    const config = this.proxy.config;
    if (pool !== null && !config.pools.some((q) => q.name === pool)) {
      throw new BadRequest(404, `no pool ${JSON.stringify(pool)}; pools: ${config.pools.map((q) => q.name).join(', ')}`, 'pool');
    }
    const pools = config.pools.filter((q) => (pool === null || q.name === pool) && q.backends.some((b) => b.url === addr.url)).map((q) => q.name);
    if (pools.length === 0) throw new BadRequest(404, `no backend ${addr.url}${pool === null ? '' : ` in pool ${pool}`}`, 'backend');
    return { url: addr.url, pool, pools };
  }

  remote(req: http.IncomingMessage): string {
    return `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
  }
}

// ---- route handlers (function declarations: ROUTES above refers to them)

function serveDashboard(_server: AdminServer, ex: Exchange): void {
  ex.res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(DASHBOARD_HTML),
    'cache-control': 'no-store',
    // everything is inline; nothing may be loaded from elsewhere
    'content-security-policy': "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
  });
  ex.res.end(DASHBOARD_HTML);
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function serveHealthz(_server: AdminServer, ex: Exchange): void {
  sendText(ex.res, 200, 'ok\n');
}

function serveReadyz(server: AdminServer, ex: Exchange): void {
  const r = readiness(server.proxy);
  sendText(ex.res, r.ready ? 200 : 503, readinessText(r));
}

function serveEvents(server: AdminServer, ex: Exchange): void {
  if (ex.req.method === 'HEAD') {
    ex.res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
    ex.res.end();
  } else server.openStream(ex.res);
}

function serveMetrics(server: AdminServer, ex: Exchange): void {
  const text = renderMetrics(server.proxy.snapshot(), processFigures(), server.proxy.cacheFigures());
  ex.res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  ex.res.end(text);
}

function serveCache(server: AdminServer, ex: Exchange): void {
  const figures = server.proxy.cacheFigures();
  if (figures === null) throw new BadRequest(404, 'no cache: the config has no cache section');
  sendJson(ex.res, 200, figures);
}

async function purgeCache(server: AdminServer, ex: Exchange): Promise<void> {
  const asked = purgeRequest(await actionParams(ex));
  if (typeof asked === 'string') throw new BadRequest(400, asked);
  const purged = server.proxy.purgeCache(asked.target, asked.prefix);
  if (purged === null) throw new BadRequest(404, 'no cache: the config has no cache section');
  server.log.info({ [asked.prefix ? 'prefix' : 'url']: asked.target, purged }, 'cache purged');
  sendJson(ex.res, 200, { ok: true, purged });
}

function serveStatus(server: AdminServer, ex: Exchange): void {
  server.sendStatus(ex.res);
}

/** The configuration in effect (weight overrides applied), secrets masked. */
function serveConfig(server: AdminServer, ex: Exchange): void {
  sendJson(ex.res, 200, printableConfig(server.proxy.config));
}

async function setDraining(server: AdminServer, ex: Exchange, on: boolean): Promise<void> {
  const t = server.target(await actionParams(ex));
  server.proxy.setDraining(t.url, on, t.pool);
  const action = on ? 'drain' : 'enable';
  server.log.info({ action, backend: t.url, pools: t.pools, remote: server.remote(ex.req) }, on ? 'admin: backend drained' : 'admin: backend enabled');
  sendJson(ex.res, 200, { ok: true, action, backend: t.url, pools: t.pools });
}

function drainBackend(server: AdminServer, ex: Exchange): Promise<void> {
  return setDraining(server, ex, true);
}

function enableBackend(server: AdminServer, ex: Exchange): Promise<void> {
  return setDraining(server, ex, false);
}

async function setBackendWeight(server: AdminServer, ex: Exchange): Promise<void> {
  const p = await actionParams(ex);
  const t = server.target(p);
  const raw = p.weight;
  const w = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (raw === undefined) throw new BadRequest(400, `weight is required: an integer from 1 to ${MAX_WEIGHT}`, 'weight');
  if (!Number.isInteger(w) || w < 1 || w > MAX_WEIGHT) throw new BadRequest(400, `weight must be an integer from 1 to ${MAX_WEIGHT}, got ${JSON.stringify(raw)}`, 'weight');
  const r = await server.proxy.setWeight(t.pool, t.url, w);
  if (!r.ok) throw new BadRequest(404, r.error, 'backend');
  server.log.info({ action: 'weight', backend: t.url, changed: r.changed, generation: r.generation, remote: server.remote(ex.req) }, 'admin: weight set');
  sendJson(ex.res, 200, { ok: true, action: 'weight', backend: t.url, weight: w, changed: r.changed, generation: r.generation });
}

async function reloadConfig(server: AdminServer, ex: Exchange): Promise<void> {
  await readBody(ex.req); // nothing to read, but the request must be consumed
  server.log.info({ action: 'reload', remote: server.remote(ex.req) }, 'admin: reload requested');
  const r = await server.proxy.reload();
  if (r.ok) sendJson(ex.res, 200, { ok: true, action: 'reload', generation: r.generation, workers: r.workers });
  else sendJson(ex.res, 422, { ok: false, action: 'reload', error: 'reload rejected: the running configuration is kept', problems: r.problems });
}
