// A small authoritative DNS server on 127.0.0.1 (UDP, node:dgram) whose answers a test sets and
// changes: A, AAAA and SRV records by name; an unknown name is NXDOMAIN; `failing` answers
// SERVFAIL to everything. Enough of RFC 1035 for node's resolver (c-ares): one question, answers
// without name compression except the pointer to the question.
import dgram from 'node:dgram';
import { isIP } from 'node:net';

export interface SrvRecord {
  priority: number;
  weight: number;
  port: number;
  target: string;
}

export interface DnsServer {
  readonly port: number;
  /** "127.0.0.1:PORT", for corelb's `resolver:`. */
  readonly address: string;
  /** Sets the A and AAAA records of `name` (addresses of either family); [] removes them. */
  setAddresses(name: string, addresses: string[]): void;
  setSrv(name: string, records: SrvRecord[]): void;
  /** true: every query gets SERVFAIL. */
  failing: boolean;
  /** Queries answered so far, as "TYPE name". */
  readonly queries: string[];
  close(): Promise<void>;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_SRV = 33;
const TYPE_NAMES: Record<number, string> = { [TYPE_A]: 'A', [TYPE_AAAA]: 'AAAA', [TYPE_SRV]: 'SRV' };

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.').filter((l) => l !== '');
  return Buffer.concat([...parts.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])), Buffer.from([0])]);
}

function ipv6Bytes(a: string): Buffer {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head === '' ? [] : head!.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/** The question's name, type and where it ends; null for a packet this server does not read. */
function readQuestion(msg: Buffer): { name: string; type: number; end: number } | null {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return null;
  const labels: string[] = [];
  let i = 12;
  for (let n = 0; n < 128; n++) {
    const len = msg[i];
    if (len === undefined || len > 63) return null;
    i++;
    if (len === 0) break;
    labels.push(msg.subarray(i, i + len).toString('ascii').toLowerCase());
    i += len;
  }
  if (i + 4 > msg.length) return null;
  return { name: labels.join('.'), type: msg.readUInt16BE(i), end: i + 4 };
}

export async function startDnsServer(): Promise<DnsServer> {
  const addresses = new Map<string, string[]>();
  const srv = new Map<string, SrvRecord[]>();
  const queries: string[] = [];
  const socket = dgram.createSocket('udp4');

  const answer = (msg: Buffer): Buffer | null => {
    const q = readQuestion(msg);
    if (q === null) return null;
    queries.push(`${TYPE_NAMES[q.type] ?? q.type} ${q.name}`);
    const known = addresses.has(q.name) || srv.has(q.name);
    let rcode = server.failing ? 2 : known ? 0 : 3;
    const records: Buffer[] = [];
    if (rcode === 0) {
      const rr = (type: number, rdata: Buffer) => {
        const head = Buffer.alloc(12);
        head.writeUInt16BE(0xc00c, 0); // the question's name
        head.writeUInt16BE(type, 2);
        head.writeUInt16BE(1, 4); // IN
        head.writeUInt32BE(1, 6); // TTL 1 s
        head.writeUInt16BE(rdata.length, 10);
        records.push(Buffer.concat([head, rdata]));
      };
      if (q.type === TYPE_A) for (const a of addresses.get(q.name) ?? []) if (isIP(a) === 4) rr(TYPE_A, Buffer.from(a.split('.').map(Number)));
      if (q.type === TYPE_AAAA) for (const a of addresses.get(q.name) ?? []) if (isIP(a) === 6) rr(TYPE_AAAA, ipv6Bytes(a));
      if (q.type === TYPE_SRV) {
        for (const r of srv.get(q.name) ?? []) {
          const fixed = Buffer.alloc(6);
          fixed.writeUInt16BE(r.priority, 0);
          fixed.writeUInt16BE(r.weight, 2);
          fixed.writeUInt16BE(r.port, 4);
          rr(TYPE_SRV, Buffer.concat([fixed, encodeName(r.target)]));
        }
      }
      if (records.length === 0) rcode = 0; // the name exists, no record of this type (NODATA)
    }
    const header = Buffer.alloc(12);
    msg.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8400 | (msg.readUInt16BE(2) & 0x0100) | rcode, 2); // QR, AA, RD copied
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records.length, 6);
    return Buffer.concat([header, msg.subarray(12, q.end), ...records]);
  };

  const server: DnsServer = {
    port: 0,
    address: '',
    failing: false,
    queries,
    setAddresses(name, list) {
      if (list.length === 0) addresses.delete(name.toLowerCase());
      else addresses.set(name.toLowerCase(), list);
    },
    setSrv(name, list) {
      if (list.length === 0) srv.delete(name.toLowerCase());
      else srv.set(name.toLowerCase(), list);
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (msg, rinfo) => {
    const reply = answer(msg);
    if (reply !== null) socket.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => resolve());
  });
  const port = socket.address().port;
  return Object.assign(server, { port, address: `127.0.0.1:${port}` });
}
