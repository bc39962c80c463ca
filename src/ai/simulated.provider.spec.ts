import { AiProviderCallError } from './ai-errors';
import type { CompletionRequest, ProviderStreamEvent } from './ai-provider.interface';
import { cosineSimilarity, hashedEmbedding } from './hashed-embedding';
import { SimulatedProvider } from './simulated.provider';
import { TokenizerService } from './tokenizer.service';

describe(SimulatedProvider.name, () => {
  const tokenizer = new TokenizerService();
  const provider = new SimulatedProvider(tokenizer);
  afterAll(() => tokenizer.onModuleDestroy());

  const request: CompletionRequest = {
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'What is a token ledger?' },
    ],
  };

  it('answers deterministically from the last user message, marked as simulated, with real token counts', async () => {
    const first = await provider.complete('openai/gpt-4o-mini', request);
    const second = await provider.complete('openai/gpt-4o-mini', request);
    expect(first.text).toBe(second.text);
    expect(first.text).toContain('simulated');
    expect(first.text).toContain('What is a token ledger?');
    expect(first).toMatchObject({ model: 'simulated', provider: 'simulated', finishReason: 'stop' });
    expect(first.usage).toEqual({
      promptTokens: tokenizer.countMessages(request.messages, 'openai/gpt-4o-mini'),
      completionTokens: tokenizer.countText(first.text, 'openai/gpt-4o-mini'),
      totalTokens: tokenizer.countMessages(request.messages, 'openai/gpt-4o-mini') + tokenizer.countText(first.text, 'openai/gpt-4o-mini'),
    });
  });

  it("returns the feature's simulatedAnswer verbatim", async () => {
    const sample = JSON.stringify({ name: 'demo-plugin', files: [] });
    const result = await provider.complete('m', { ...request, simulatedAnswer: sample, responseFormat: 'json_object' });
    expect(result.text).toBe(sample);
  });

  it('answers valid JSON when JSON is asked for without a sample', async () => {
    const result = await provider.complete('m', { ...request, responseFormat: 'json_object' });
    expect(JSON.parse(result.text)).toMatchObject({ simulated: true });
  });

  it('streams the same text in chunks, then one done event with usage', async () => {
    const events: ProviderStreamEvent[] = [];
    for await (const event of provider.stream('openai/gpt-4o-mini', request)) events.push(event);
    const deltas = events.filter((event) => event.type === 'delta');
    const done = events[events.length - 1];
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.map((event) => (event.type === 'delta' ? event.text : '')).join('')).toBe((await provider.complete('openai/gpt-4o-mini', request)).text);
    expect(done).toMatchObject({ type: 'done', model: 'simulated', usage: { promptTokens: expect.any(Number) } });
  });

  it('stops a stream when the signal aborts, reporting what was sent', async () => {
    const controller = new AbortController();
    const received: string[] = [];
    const error = await (async () => {
      for await (const event of provider.stream('m', request, controller.signal)) {
        if (event.type === 'delta') received.push(event.text);
        if (received.length === 2) controller.abort();
      }
    })().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(AiProviderCallError);
    expect((error as AiProviderCallError).kind).toBe('aborted');
    expect((error as AiProviderCallError).partial?.text).toBe(received.join(''));
  });

  it('embeds deterministically, similar texts closer, with tokenizer usage', async () => {
    const inputs = ['the cat sat on the mat', 'a cat sat on a mat', 'quarterly revenue report'];
    const result = await provider.embed('text-embedding-3-small', inputs);
    const [cat, cat2, revenue] = result.vectors;
    expect(result.vectors).toHaveLength(3);
    expect(cat).toEqual(hashedEmbedding('the cat sat on the mat'));
    expect(Math.hypot(...cat)).toBeCloseTo(1, 10);
    expect(cosineSimilarity(cat, cat2)).toBeGreaterThan(cosineSimilarity(cat, revenue));
    expect(result.usage).toEqual({ promptTokens: 16, totalTokens: 16 });
  });

  it('gives empty text a unit vector rather than NaN', () => {
    const vector = hashedEmbedding('', 8);
    expect(vector).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
  });
});
