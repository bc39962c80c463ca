import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/** A loopback HTTP server that records webhook POSTs and can fail the first attempts of each event. */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  /** Answer 503 to this many deliveries of each event id before accepting it. */
  failFirst = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | undefined;
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const eventId = String(request.headers['x-token-ledger-event-id']);
        const earlier = receiver!.received.filter((hook) => hook.headers['x-token-ledger-event-id'] === eventId).length;
        const status = earlier < receiver!.failFirst ? 503 : 204;
        receiver!.received.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8'), status });
        response.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    receiver = new WebhookReceiver(server, `http://127.0.0.1:${port}/hooks/token-ledger`);
    return receiver;
  }

  /** The accepted deliveries, parsed. */
  delivered(): { headers: IncomingHttpHeaders; body: string; payload: Record<string, unknown> }[] {
    return this.received.filter((hook) => hook.status < 300).map((hook) => ({ ...hook, payload: JSON.parse(hook.body) as Record<string, unknown> }));
  }

  async waitFor(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error(`webhook receiver: condition not met within ${timeoutMs} ms (${this.received.length} received)`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
