import { CliError, EXIT } from './usage-cli-options';

const TIMEOUT_MS = 30_000;
const REPRICE_TIMEOUT_MS = 600_000;

export type QueryValues = Record<string, string | number | undefined>;

/** The token-ledger HTTP API as the CLI uses it: one base URL, one key, errors as CliError. */
export class UsageApiClient {
  constructor(
    private readonly baseUrl: URL,
    private readonly apiKey: string,
  ) {}

  async json<T>(path: string, query: QueryValues): Promise<T> {
    const response = await this.request(path, query, 'application/json');
    return (await response.json()) as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    const response = await this.request(path, {}, 'application/json', body);
    return (await response.json()) as T;
  }

  /** One page of CSV and the cursor of the next page (null on the last). */
  async csv(path: string, query: QueryValues): Promise<{ text: string; nextCursor: string | null }> {
    const response = await this.request(path, query, 'text/csv');
    return { text: await response.text(), nextCursor: response.headers.get('x-next-cursor') };
  }

  private url(path: string, query: QueryValues): URL {
    const url = new URL(path.replace(/^\//, ''), this.baseUrl.href.endsWith('/') ? this.baseUrl : `${this.baseUrl.href}/`);
    for (const [name, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(name, String(value));
    return url;
  }

  private async request(path: string, query: QueryValues, accept: string, body?: unknown): Promise<Response> {
    const url = this.url(path, query);
    let response: Response;
    try {
      response = await fetch(url, {
        ...(body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) }),
        headers: { authorization: `Bearer ${this.apiKey}`, accept, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        // Re-pricing a long period reads every event of it.
        signal: AbortSignal.timeout(body === undefined ? TIMEOUT_MS : REPRICE_TIMEOUT_MS),
      });
    } catch (error) {
      throw new CliError(EXIT.unreachable, `cannot reach the token-ledger service at ${this.baseUrl.origin}: ${describeNetworkError(error)}`);
    }
    if (response.ok) return response;
    const message = await errorMessage(response);
    if (response.status === 401) throw new CliError(EXIT.auth, `the service rejected the API key (401 ${message})`, 401);
    if (response.status === 403) throw new CliError(EXIT.auth, `this API key may not read that usage (403 ${message})`, 403);
    if (response.status === 400) throw new CliError(EXIT.usage, `the service rejected the options: ${message}`, 400);
    if (response.status === 404) throw new CliError(EXIT.failed, `${url.origin}${url.pathname} was not found (404): is ${this.baseUrl.origin} a token-ledger service?`, 404);
    throw new CliError(EXIT.failed, `the service answered ${response.status} to ${url.pathname}: ${message}`, response.status);
  }
}

async function errorMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string') return body.message;
  } catch {
    // Not JSON.
  }
  return text.slice(0, 200) || response.statusText;
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return `no answer within ${TIMEOUT_MS / 1000} s`;
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}
