// A client for corelb's admin server in tests: GET /metrics parsed with the strict exposition
// parser, GET /status as JSON, the POST actions, and bounded polling until the metrics say what a
// test expects (workers count a request when its response has been sent, a moment after the
// client may have read it).
import { request, type Reply, type RequestOptions } from './http.js';
import { parseExposition, type Exposition } from './prom.js';
import { sleep } from './time.js';

export interface StatusBackend {
  url: string;
  state: string;
  weight: number;
  effectiveWeight: number;
  inflight: number;
  requests: Record<string, number>;
  attempts: number;
  failures: Record<string, number>;
  retried: number;
  latency: { buckets: number[]; count: number; sumSeconds: number };
}
export interface StatusPool {
  name: string;
  algorithm: string;
  requestsWithoutBackend: Record<string, number>;
  events: Record<string, number>;
  backends: StatusBackend[];
}
export interface Status {
  time: number;
  startedAt: number;
  uptimeSeconds: number;
  generation: number;
  lastReload: { ok: boolean; at: number; problems: string[] } | null;
  process: { cpuSeconds: number; residentBytes: number };
  latencyBucketsSeconds: number[];
  workers: { id: number; requests: number; inflight: number }[];
  requestsBeforePool: Record<string, number>;
  pools: StatusPool[];
}

export interface AdminClient {
  readonly url: string;
  get(path: string, opts?: RequestOptions): Promise<Reply>;
  /** POST with a JSON body (or none); the reply's body parsed as JSON in `json`. */
  post(path: string, body?: unknown, opts?: RequestOptions): Promise<Reply & { json: Record<string, unknown> }>;
  metrics(): Promise<Exposition>;
  status(): Promise<Status>;
  /** Polls /metrics every 50 ms until `pred` holds; throws after timeoutMs with the last text. */
  waitForMetrics(pred: (e: Exposition) => boolean, what: string, timeoutMs?: number): Promise<Exposition>;
}

export function adminClient(url: string, token?: string): AdminClient {
  const auth = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const get = (path: string, opts: RequestOptions = {}) => request(url + path, { timeoutMs: 10_000, ...opts, headers: { ...auth, ...opts.headers } });
  async function metricsText(): Promise<string> {
    const r = await get('/metrics');
    if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${r.text}`);
    return r.text;
  }
  return {
    url,
    get,
    async post(path, body, opts = {}) {
      const text = body === undefined ? undefined : JSON.stringify(body);
      const headers = { ...auth, ...(text === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers };
      const r = await request(url + path, { timeoutMs: 15_000, ...opts, method: 'POST', headers, body: text });
      let json: Record<string, unknown>;
      try {
        json = JSON.parse(r.text) as Record<string, unknown>;
      } catch {
        throw new Error(`POST ${path}: ${r.status}, body not JSON: ${r.text}`);
      }
      return { ...r, json };
    },
    async metrics() {
      return parseExposition(await metricsText());
    },
    async status() {
      const r = await get('/status');
      if (r.status !== 200) throw new Error(`GET /status: ${r.status} ${r.text}`);
      return JSON.parse(r.text) as Status;
    },
    async waitForMetrics(pred, what, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (let i = 0; i < 10_000; i++) {
        last = await metricsText();
        const e = parseExposition(last);
        if (pred(e)) return e;
        if (Date.now() > deadline) break;
        await sleep(50);
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last /metrics:\n${last}`);
    },
  };
}
