import OpenAI from 'openai';
import { cosineSimilarity } from '../src/ai/hashed-embedding';
import { FakeProviderServer, RAW_BODY_MARKER } from './support/fake-provider.server';

describe(FakeProviderServer.name, () => {
  let fake: FakeProviderServer;
  let client: OpenAI;

  beforeAll(async () => {
    fake = await FakeProviderServer.start();
    client = new OpenAI({ apiKey: 'sk-fake-key', baseURL: fake.baseUrl, maxRetries: 0, organization: null, project: null });
  });
  afterEach(() => fake.reset());
  afterAll(() => fake.stop());

  const messages = [
    { role: 'system' as const, content: 'You are terse.' },
    { role: 'user' as const, content: 'Say hello' },
  ];

  it('listens on loopback with a /v1 base URL', () => {
    expect(fake.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  });

  it('answers a chat completion deterministically with tiktoken usage, and records the request', async () => {
    const first = await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages });
    const second = await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages });

    expect(first.choices[0].message.content).toBe(second.choices[0].message.content);
    expect(first.choices[0].message.content).toContain('Say hello');
    expect(first.choices[0].finish_reason).toBe('stop');
    expect(first.model).toBe('openai/gpt-4o-mini');
    expect(first.usage).toMatchObject(fake.usageFor('openai/gpt-4o-mini', messages, first.choices[0].message.content!));
    expect(first.usage!.prompt_tokens).toBe(17); // (3 + 1 + 4) + (3 + 1 + 2) + 3 on o200k_base
    expect(fake.requests).toHaveLength(2);
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/v1/chat/completions', model: 'openai/gpt-4o-mini' });
    expect(fake.requests[0].headers.authorization).toBe('Bearer sk-fake-key');
    expect(fake.requests[0].body?.messages).toEqual(messages);
  });

  it('plays scripted answers in order per model, then falls back to the default', async () => {
    fake.script('m1', { text: 'one', cost: 0.0012, cachedTokens: 4, reasoningTokens: 1 }, { status: 503 });
    const scripted = await client.chat.completions.create({ model: 'm1', messages });
    expect(scripted.choices[0].message.content).toBe('one');
    expect(scripted.usage).toMatchObject({ cost: 0.0012, prompt_tokens_details: { cached_tokens: 4 }, completion_tokens_details: { reasoning_tokens: 1 } });

    const failure = await client.chat.completions.create({ model: 'm1', messages }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    expect((failure as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect(String((failure as Error).message)).toContain(RAW_BODY_MARKER);

    const after = await client.chat.completions.create({ model: 'm1', messages });
    expect(after.choices[0].message.content).toContain('Fake answer from m1');
  });

  it('overrides or omits usage', async () => {
    fake.script('m2', { usage: { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 } }, { omitUsage: true });
    const overridden = await client.chat.completions.create({ model: 'm2', messages });
    expect(overridden.usage).toMatchObject({ prompt_tokens: 7, completion_tokens: 3, total_tokens: 10 });
    const omitted = await client.chat.completions.create({ model: 'm2', messages });
    expect(omitted.usage).toBeUndefined();
  });

  it('streams SSE chunks with a final usage chunk (empty choices) when include_usage is set', async () => {
    fake.script('m3', { text: 'alpha beta gamma' });
    const stream = await client.chat.completions.create({
      model: 'm3',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.map((chunk) => chunk.choices[0]?.delta?.content ?? '').join('')).toBe('alpha beta gamma');
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject(fake.usageFor('m3', messages, 'alpha beta gamma'));
    expect(chunks[chunks.length - 2].choices[0].finish_reason).toBe('stop');
    expect(chunks.slice(0, -1).every((chunk) => chunk.usage === null)).toBe(true);
    expect(fake.requests[0].body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('sends the exact OpenAI wire format, ending with data: [DONE]', async () => {
    fake.script('m4', { text: 'hi there' });
    const response = await fetch(`${fake.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm4', messages, stream: true }),
    });
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const raw = await response.text();
    const events = raw.split('\n\n').filter(Boolean);
    expect(events.every((event) => event.startsWith('data: '))).toBe(true);
    expect(events[events.length - 1]).toBe('data: [DONE]');
    // Without include_usage there is no usage at all.
    expect(raw).not.toContain('"usage"');
  });

  it('cuts a stream by destroying the socket after N chunks', async () => {
    fake.script('m5', { text: 'one two three four five', resetMidStream: true, resetAfterChunks: 2 });
    const stream = await client.chat.completions.create({ model: 'm5', messages, stream: true, stream_options: { include_usage: true } });
    const received: string[] = [];
    const error = await (async () => {
      for await (const chunk of stream) received.push(chunk.choices[0]?.delta?.content ?? '');
    })().catch((caught: unknown) => caught);
    // undici's TypeError comes from another realm under jest, so match on the message.
    expect(String(error)).toMatch(/terminated/);
    expect(received.join('')).toBe('one two');
    await fake.waitForIdle();
  });

  it('delays answers and stops waiting when the client aborts', async () => {
    fake.script('slow', { delayMs: 5_000 });
    const controller = new AbortController();
    const pending = client.chat.completions.create({ model: 'slow', messages }, { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(fake.activeRequests()).toBe(1);
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    await fake.waitForIdle();
    expect(fake.activeRequests()).toBe(0);
  });

  it('embeds deterministically (float and the SDK default base64) with usage', async () => {
    const inputs = ['the cat sat on the mat', 'a cat sat on a mat', 'quarterly revenue report'];
    const floats = await client.embeddings.create({ model: 'openai/text-embedding-3-small', input: inputs, encoding_format: 'float' });
    const decoded = await client.embeddings.create({ model: 'openai/text-embedding-3-small', input: inputs });

    expect(floats.data).toHaveLength(3);
    expect(floats.data[0].embedding).toHaveLength(1536);
    decoded.data.forEach((item, index) => {
      item.embedding.forEach((value, i) => expect(value).toBeCloseTo(floats.data[index].embedding[i], 6));
    });
    const [cat, cat2, revenue] = floats.data.map((item) => item.embedding);
    expect(cosineSimilarity(cat, cat2)).toBeGreaterThan(cosineSimilarity(cat, revenue));
    expect(floats.usage.prompt_tokens).toBe(6 + 6 + 4);
    expect(floats.usage.total_tokens).toBe(floats.usage.prompt_tokens);
  });

  it('lists models', async () => {
    fake.script('custom/model', { text: 'x' });
    const page = await client.models.list();
    expect(page.data.map((model) => model.id)).toEqual(expect.arrayContaining(['openai/gpt-4o-mini', 'custom/model']));
  });

  it('counts connections and returns to no requests in flight', async () => {
    await client.chat.completions.create({ model: 'openai/gpt-4o-mini', messages });
    expect(fake.activeRequests()).toBe(0);
    expect(fake.busyConnections()).toBe(0);
    expect(fake.openConnections()).toBeGreaterThanOrEqual(1); // the keep-alive socket
    fake.closeIdleConnections();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fake.openConnections()).toBe(0);
  });
});
