// DNS discovery with a real corelb and a DNS server on 127.0.0.1 (test/helpers/dns-server.ts)
// whose answers the test changes: a `discover: { dns }` pool starts with the addresses the name
// has; when the answer changes, new addresses join (in slow start) and removed ones leave while a
// request in flight to one still completes; a failed lookup keeps the last set and is logged; AAAA
// records give IPv6 backends; SRV records give each backend its port; a reload can switch a pool
// to discovery, and one whose name has no address is rejected; a start whose name has no address
// fails with the reason.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin.js';
import { stopEverything } from '../helpers/cleanup.js';
import { CLI, REPO_ROOT, startCorelb, toYaml } from '../helpers/corelb.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { request } from '../helpers/http.js';
import { eventually, startOrigin, type Origin } from '../helpers/origins.js';
import { freePort } from '../helpers/ports.js';
import { sleep } from '../helpers/time.js';

const servers: DnsServer[] = [];
afterEach(async () => {
  await stopEverything();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(stopEverything);

async function dnsServer(): Promise<DnsServer> {
  const s = await startDnsServer();
  servers.push(s);
  return s;
}

/** An origin at host:port that answers its own name; /slow after 1.5 s. */
function named(name: string, host: string, port: number): Promise<Origin> {
  return startOrigin(
    async (req, res) => {
      if (req.url === '/slow') await sleep(1500);
      res.end(name);
    },
    { host, port },
  );
}

/** Who answers `n` requests, each on a new connection. */
async function answers(url: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    const r = await request(url);
    expect(r.status, r.text).toBe(200);
    out.push(r.text);
  }
  return [...new Set(out)].sort();
}

function config(resolver: string, discover: Record<string, unknown>, adminPort: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listen: { host: '127.0.0.1', port: 0 },
    workers: 2,
    resolver,
    pools: { web: { discover, retries: 0, ...extra } },
    admin: { port: adminPort },
  };
}

describe('DNS discovery', () => {
  it('A/AAAA: joins with slow start, removed backends finish their requests, a failed lookup keeps the set', async () => {
    const dns = await dnsServer();
    const port = await freePort();
    const [o2, o3, o4, o6] = await Promise.all([named('o2', '127.0.0.2', port), named('o3', '127.0.0.3', port), named('o4', '127.0.0.4', port), named('o6', '::1', port)]);
    dns.setAddresses('api.test', ['127.0.0.2']);
    const adminPort = await freePort();
    const lb = await startCorelb(config(dns.address, { dns: 'api.test', port, every: '200ms' }, adminPort, { slow_start: '1s' }));
    const admin = adminClient(`http://127.0.0.1:${adminPort}`);
    expect(await answers(`${lb.url}/`, 4)).toEqual(['o2']);
    expect((await admin.status()).pools[0]!.backends.map((b) => [b.url, b.state])).toEqual([[o2.url, 'up']]);

    // a request in flight to o2 when o2 leaves the answer
    const slow = request(`${lb.url}/slow`);
    await o2.waitForRequests(5);
    const from = lb.logs().length;
    dns.setAddresses('api.test', ['127.0.0.3', '127.0.0.4']);
    await lb.waitForLogAfter(from, (l) => l.msg === 'published discovered backends');
    const s = await admin.status();
    expect(s.pools[0]!.backends.map((b) => [b.url, b.state])).toEqual([
      [o3.url, 'slow-start'],
      [o4.url, 'slow-start'],
    ]);
    const finished = await slow;
    expect([finished.status, finished.text]).toEqual([200, 'o2']);
    const allUp = () => eventually(async () => (await admin.status()).pools[0]!.backends.every((b) => b.state === 'up'), 10_000, 'slow start over');
    await allUp();
    const before = o2.requests.length;
    expect(await answers(`${lb.url}/`, 8)).toEqual(['o3', 'o4']);
    expect(o2.requests.length).toBe(before);

    // the DNS server fails: the last set stays, and the failure is logged
    dns.failing = true;
    await lb.waitForLogAfter(from, (l) => l.msg === 'DNS discovery failed: keeping the 2 last known backend(s)');
    expect(await answers(`${lb.url}/`, 4)).toEqual(['o3', 'o4']);
    dns.failing = false;

    // an AAAA record: an IPv6 backend
    dns.setAddresses('api.test', ['127.0.0.3', '::1']);
    await eventually(async () => (await admin.status()).pools[0]!.backends.some((b) => b.url === o6.url), 10_000, 'the IPv6 backend published');
    expect(o6.url).toBe(`http://[::1]:${port}`);
    await allUp();
    expect(await answers(`${lb.url}/`, 8)).toEqual(['o3', 'o6']);
  });

  it('SRV: each record gives its target and port; a removed record leaves', async () => {
    const dns = await dnsServer();
    const [a, b] = await Promise.all([named('a', '127.0.0.1', 0), named('b', '127.0.0.1', 0)]);
    dns.setAddresses('a.test', ['127.0.0.1']);
    dns.setAddresses('b.test', ['127.0.0.1']);
    dns.setSrv('_http._tcp.api.test', [
      { priority: 10, weight: 5, port: a.port, target: 'a.test' },
      { priority: 10, weight: 5, port: b.port, target: 'b.test' },
    ]);
    const adminPort = await freePort();
    const lb = await startCorelb(config(dns.address, { srv: '_http._tcp.api.test', every: '200ms' }, adminPort));
    expect(await answers(`${lb.url}/`, 6)).toEqual(['a', 'b']);
    dns.setSrv('_http._tcp.api.test', [{ priority: 10, weight: 5, port: b.port, target: 'b.test' }]);
    await lb.waitForLog((l) => l.msg === 'published discovered backends');
    expect(await answers(`${lb.url}/`, 4)).toEqual(['b']);
    expect(dns.queries).toContain('SRV _http._tcp.api.test');
  });

  it('a reload turns a listed pool into a discovered one; a reload whose name has no address is rejected', async () => {
    const dns = await dnsServer();
    const [a, b] = await Promise.all([named('a', '127.0.0.1', 0), named('b', '127.0.0.5', 0)]);
    dns.setAddresses('b.test', ['127.0.0.5']);
    const lb = await startCorelb({ listen: { host: '127.0.0.1', port: 0 }, workers: 1, resolver: dns.address, pools: { web: { backends: [a.url] } } });
    expect(await answers(`${lb.url}/`, 2)).toEqual(['a']);
    const write = (discover: Record<string, unknown>) =>
      writeFileSync(lb.configFile, toYaml({ listen: { host: '127.0.0.1', port: lb.port }, workers: 1, resolver: dns.address, pools: { web: { discover } } }));

    write({ dns: 'b.test', port: b.port });
    let from = lb.logs().length;
    process.kill(lb.pid, 'SIGHUP');
    await lb.waitForLogAfter(from, (l) => l.msg === 'reloaded');
    expect(await answers(`${lb.url}/`, 3)).toEqual(['b']);

    write({ dns: 'missing.test', port: b.port });
    from = lb.logs().length;
    process.kill(lb.pid, 'SIGHUP');
    const rejected = await lb.waitForLogAfter(from, (l) => l.msg === 'reload rejected');
    expect(JSON.stringify(rejected.problems)).toContain('pool web: DNS discovery of missing.test (A/AAAA) port');
    expect(await answers(`${lb.url}/`, 3)).toEqual(['b']);
  });

  it('a start whose name has no address fails with the reason', async () => {
    const dns = await dnsServer();
    const dir = mkdtempSync(join(tmpdir(), 'corelb-discovery-'));
    try {
      const file = join(dir, 'corelb.yaml');
      writeFileSync(file, toYaml(config(dns.address, { dns: 'nothing.test', port: 80 }, await freePort(), {})).replace('port: 0', `port: ${await freePort()}`));
      // not spawnSync: the DNS server runs in this process and must answer meanwhile
      const child = spawn(process.execPath, [CLI, 'start', '--config', file], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect(code).toBe(1);
      expect(stdout).toContain('cannot start: pool web: DNS discovery of nothing.test (A/AAAA) port 80 found no backend: queryA ENOTFOUND nothing.test');
      expect(dns.queries).toContain('A nothing.test');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
