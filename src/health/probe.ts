// Owns active health probes: one HTTP/1.1 GET of the check path on a fresh connection (TLS with
// the pool's settings for an https:// backend), judged by the expected status range within the
// timeout, and the loop that runs it every interval. Never throws and never rejects: every
// outcome is a result with a reason an operator can read.

import http from 'node:http';
import https from 'node:https';
import type tls from 'node:tls';
import type { HealthCheckConfig } from '../config/types.js';
import { tlsFailure, type UpstreamTls } from '../upstream/tls.js';

export interface ProbeResult {
  readonly ok: boolean;
  /** e.g. "status 503", "timeout after 1000ms", "connect ECONNREFUSED". */
  readonly detail: string;
}

/** `tls`: an https:// backend's settings (src/upstream/tls.ts); null: plain HTTP. */
export function probe(host: string, port: number, check: HealthCheckConfig, tls: UpstreamTls | null = null): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (ok: boolean, detail: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ok, detail });
    };
    const hostHeader = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const options: https.RequestOptions & tls.ConnectionOptions = {
      host,
      port,
      path: check.path,
      method: 'GET',
      agent: false,
      headers: { host: hostHeader, 'user-agent': 'corelb-health-check', connection: 'close' },
    };
    if (tls !== null) {
      options.secureContext = tls.secureContext;
      options.servername = tls.servername;
      options.rejectUnauthorized = tls.verify;
    }
    const req = tls === null ? http.request(options) : https.request(options);
    let tcpConnected = false;
    req.on('socket', (s) => s.once('connect', () => (tcpConnected = true)));
    const timer = setTimeout(() => done(false, `timeout after ${check.timeoutMs}ms`), check.timeoutMs);
    let responded = false;
    req.on('response', (res) => {
      responded = true;
      const status = res.statusCode ?? 0;
      res.resume();
      const ok = status >= check.expectMin && status <= check.expectMax;
      done(ok, ok ? `status ${status}` : `status ${status}, expected ${check.expectMin}-${check.expectMax}`);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      // an error after the TCP connect and before any response: the TLS handshake failed
      if (tls !== null && tcpConnected && !responded) done(false, `tls ${tlsFailure(err)}`);
      else done(false, `${req.reusedSocket ? 'request' : 'connect'} ${err.code ?? err.message}`);
    });
    req.end();
  });
}

/** Runs `probe` for one backend every interval (the next one starts when the last has ended). */
export class Prober {
  private timer: NodeJS.Timeout | null = null;
  private started = false;
  private stopped = false;
  private check: HealthCheckConfig;
  private tls: UpstreamTls | null;

  constructor(
    private readonly host: string,
    private readonly port: number,
    check: HealthCheckConfig,
    tls: UpstreamTls | null,
    private readonly onResult: (r: ProbeResult) => void,
  ) {
    this.check = check;
    this.tls = tls;
  }

  /** Starts the loop once: a later call (a reload restarts every prober) changes nothing. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    // spread the first probes over one interval so a big pool is not checked in one burst
    this.schedule(Math.floor(Math.random() * this.check.intervalMs));
  }

  reconfigure(check: HealthCheckConfig, tls: UpstreamTls | null): void {
    this.check = check;
    this.tls = tls;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.run(), ms);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    this.timer = null;
    const r = await probe(this.host, this.port, this.check, this.tls);
    if (this.stopped) return;
    this.onResult(r);
    this.schedule(this.check.intervalMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
