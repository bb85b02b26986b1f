// Direct writes with real sockets: heads arrive whole and in order whether the kernel takes them
// at once or libuv keeps part, later stream writes queue behind them, a socket that cannot take a
// direct write gets a stream write, and a failed write ends the socket as a failed socket.write does.
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { directWrites, writeDirect } from '../../../src/upstream/direct-write.js';

/** Bytes libuv holds for `socket` that the kernel has not taken (a direct write's included). */
const queuedInLibuv = (socket: net.Socket): number => (socket as unknown as { _handle: { writeQueueSize: number } })._handle.writeQueueSize;

const servers: net.Server[] = [];
afterAll(() => servers.forEach((s) => s.close()));

/** A server whose one connection is handed to the test, and a client connected to it. */
async function pair(): Promise<{ client: net.Socket; peer: net.Socket; port: number }> {
  let peer!: (s: net.Socket) => void;
  const accepted = new Promise<net.Socket>((r) => (peer = r));
  const server = net.createServer((s) => {
    s.pause();
    peer(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((r) => client.once('connect', r));
  return { client, peer: await accepted, port };
}

/** Every byte `peer` reads until `n` have come. */
function readAll(peer: net.Socket, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  return new Promise((resolve) => {
    peer.on('data', (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      if (got >= n) resolve(Buffer.concat(chunks));
    });
    peer.resume();
  });
}

/** A MiB of bytes that say where they are (a misordered or lost piece changes the whole). */
function piece(tag: number): Buffer {
  const b = Buffer.alloc(1 << 20);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32BE(((tag << 24) | (i >>> 2)) >>> 0, i);
  return b;
}

describe('direct writes', () => {
  it('are available in this Node (else every write takes socket.write and these tests check only that)', () => {
    expect(directWrites).toBe(true);
  });

  it('send a small head at once, with nothing left queued anywhere', async () => {
    const { client, peer } = await pair();
    const head = 'GET / HTTP/1.1\r\nhost: a\r\n\r\n';
    writeDirect(client, head);
    expect(client.writableLength).toBe(0);
    expect(queuedInLibuv(client)).toBe(0);
    writeDirect(client, 'next');
    expect(client.writableLength).toBe(0);
    expect((await readAll(peer, head.length + 4)).toString()).toBe(head + 'next');
    client.destroy();
    peer.destroy();
  });

  it('leave what the kernel did not take to libuv; later writes queue behind it in order', async () => {
    const { client, peer } = await pair();
    const sent: Buffer[] = [];
    // the peer reads nothing: heads of 4,096 characters (the longest written directly) fill the
    // kernel's buffers until one is taken only in part, and libuv keeps the rest
    for (let i = 0; i < 20_000 && queuedInLibuv(client) === 0; i++) {
      const head = String(i).padStart(8, '0') + 'x'.repeat(4088);
      sent.push(Buffer.from(head));
      writeDirect(client, head);
      expect(client.writableLength).toBe(0); // none of them went through the stream
    }
    expect(queuedInLibuv(client)).toBeGreaterThan(0);
    // with libuv holding bytes, the next head goes through the stream
    writeDirect(client, 'mid');
    sent.push(Buffer.from('mid'));
    expect(client.writableLength).toBe(3);
    // two stream writes: libuv has the first, the stream holds the second back until it completes
    const streamed = [piece(200), piece(201)];
    sent.push(...streamed);
    for (const b of streamed) client.write(b);
    // so a head now must go through the stream too, after both
    writeDirect(client, 'tail');
    sent.push(Buffer.from('tail'));
    expect(client.writableLength).toBe(3 + 2 * (1 << 20) + 4);
    const total = sent.reduce((n, b) => n + b.length, 0);
    const got = await readAll(peer, total);
    expect(got.length).toBe(total);
    expect(got.equals(Buffer.concat(sent))).toBe(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(queuedInLibuv(client)).toBe(0);
    expect(client.destroyed).toBe(false);
    client.destroy();
    peer.destroy();
  });

  it('leave bytes the stream holds back (corked) ahead of a head, which goes through the stream after them', async () => {
    const { client, peer } = await pair();
    client.cork();
    client.write('first ');
    expect(queuedInLibuv(client)).toBe(0); // libuv has nothing: only the stream knows of them
    writeDirect(client, 'second');
    client.uncork();
    expect((await readAll(peer, 12)).toString()).toBe('first second');
    client.destroy();
    peer.destroy();
  });

  it('leave a socket that is still connecting to socket.write, which sends once connected', async () => {
    const { port, peer: first } = await pair();
    first.destroy();
    const client = net.connect({ host: '127.0.0.1', port });
    expect(client.connecting).toBe(true);
    writeDirect(client, 'GET / HTTP/1.1\r\n\r\n');
    expect(client.writableLength).toBe(18);
    const server = servers[servers.length - 1]!;
    const peer = await new Promise<net.Socket>((r) => server.once('connection', r));
    expect((await readAll(peer, 18)).toString()).toBe('GET / HTTP/1.1\r\n\r\n');
    client.destroy();
    peer.destroy();
  });

  it('end the socket with an error when the write fails (the peer reset the connection)', async () => {
    const { port } = await pair();
    const server = servers[servers.length - 1]!;
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    // reading into a buffer of its own, as upstream connections do: paused, it stops reading, so
    // the reset is found by the write and not by a read
    const client = net.connect({ host: '127.0.0.1', port, onread: { buffer: Buffer.alloc(1024), callback: () => true } });
    await new Promise<void>((r) => client.once('connect', r));
    client.pause();
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    (await accepted).resetAndDestroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(client.destroyed).toBe(false);
    writeDirect(client, 'GET / HTTP/1.1\r\n\r\n');
    await closed;
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/^write failed \(-\d+\)$/)]);
  });
});
