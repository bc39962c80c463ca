import { AddressInfo, createServer, Server, Socket, connect } from 'node:net';

/**
 * How a blocked proxy behaves:
 * - `refuse`: existing connections are destroyed, new ones are reset at once (server down).
 * - `blackhole`: existing connections are destroyed, new ones are accepted and never answered (network partition).
 * - `lose-replies`: connections stay up and requests reach the server, but its replies are dropped
 *   (a write lands, its acknowledgement never arrives).
 */
export type BlockMode = 'refuse' | 'blackhole' | 'lose-replies';

interface Pair {
  client: Socket;
  upstream?: Socket;
}

/** A loopback TCP proxy that can cut a dependency off without stopping it. */
export class TcpProxy {
  private readonly pairs = new Set<Pair>();
  private mode: BlockMode | null = null;
  private replyDelayMs = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new TcpProxy(server, (server.address() as AddressInfo).port, target);
  }

  /** A proxy in front of the MongoDB at `uri`, and that URI rewritten to go through it (single host, direct connection). */
  static async forMongo(uri: string): Promise<{ proxy: TcpProxy; uri: string }> {
    const url = new URL(uri);
    const [host, port] = [url.hostname.replace(/^\[|\]$/g, ''), Number(url.port || 27017)];
    const proxy = await TcpProxy.start({ host, port });
    url.host = `127.0.0.1:${proxy.port}`;
    url.searchParams.set('directConnection', 'true');
    return { proxy, uri: url.toString() };
  }

  get blocked(): BlockMode | null {
    return this.mode;
  }

  block(mode: BlockMode = 'refuse'): void {
    this.mode = mode;
    if (mode !== 'lose-replies') for (const pair of this.pairs) this.destroy(pair);
  }

  /** Holds every reply of the server for `ms` before passing it on (a slow or overloaded server); 0 stops it. */
  delayReplies(ms: number): void {
    this.replyDelayMs = ms;
  }

  /** Forwards again; connections held or muted while blocked are closed so clients reconnect cleanly. */
  unblock(): void {
    const previous = this.mode;
    this.mode = null;
    if (previous) for (const pair of this.pairs) this.destroy(pair);
  }

  async stop(): Promise<void> {
    for (const pair of this.pairs) this.destroy(pair);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = { client };
    this.pairs.add(pair);
    client.on('close', () => this.destroy(pair));
    if (this.mode === 'blackhole') {
      client.resume(); // read and discard
      return;
    }
    const upstream = connect(this.target.port, this.target.host);
    pair.upstream = upstream;
    upstream.on('error', () => undefined);
    upstream.on('close', () => this.destroy(pair));
    client.on('data', (chunk) => {
      if (this.mode === null || this.mode === 'lose-replies') upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (this.mode !== null) return;
      if (this.replyDelayMs > 0) setTimeout(() => this.mode === null && client.write(chunk), this.replyDelayMs);
      else client.write(chunk);
    });
  }

  private destroy(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}
