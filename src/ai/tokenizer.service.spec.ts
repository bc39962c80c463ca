import { withTurnCount } from '../../test/support/event-loop-turns';
import type { ChatMessage } from './ai-provider.interface';
import { TokenizerService } from './tokenizer.service';

describe(TokenizerService.name, () => {
  // Loading an encoding takes ~150 ms, so one instance serves every test; each test that
  // asserts on the cache clears it first.
  const tokenizer = new TokenizerService();
  const internals = tokenizer as unknown as { messageCache: { clear(): void }; hits: number; misses: number };
  beforeEach(() => {
    internals.messageCache.clear();
    internals.hits = 0;
    internals.misses = 0;
  });
  afterAll(() => tokenizer.onModuleDestroy());

  it.each([
    ['gpt-4o', 'o200k_base'],
    ['openai/gpt-4o-mini', 'o200k_base'],
    ['gpt-4o-mini-2024-07-18', 'o200k_base'],
    ['chatgpt-4o-latest', 'o200k_base'],
    ['gpt-4.1-mini', 'o200k_base'],
    ['gpt-5', 'o200k_base'],
    ['openai/gpt-5-mini', 'o200k_base'],
    ['o1', 'o200k_base'],
    ['o3-mini', 'o200k_base'],
    ['openai/o4-mini', 'o200k_base'],
    ['gpt-4', 'cl100k_base'],
    ['gpt-4-turbo', 'cl100k_base'],
    ['gpt-3.5-turbo', 'cl100k_base'],
    ['text-embedding-3-small', 'cl100k_base'],
    ['openai/text-embedding-3-large', 'cl100k_base'],
    ['anthropic/claude-3.5-sonnet', 'cl100k_base'],
    ['meta-llama/llama-3.1-8b-instruct', 'cl100k_base'],
    ['simulated', 'cl100k_base'],
  ])('uses the right encoding for %s (%s)', (model, encoding) => {
    expect(tokenizer.encodingFor(model)).toBe(encoding);
  });

  // Expected values computed with tiktoken 1.0.22 itself.
  it.each([
    ['hello world', 2, 2],
    ['The quick brown fox jumps over the lazy dog.', 10, 10],
    ['日本語のテキスト', 8, 6],
    ['🙂 emoji', 3, 2],
    ['function add(a, b) { return a + b; }', 13, 13],
    ['', 0, 0],
  ])('counts %j as %d tokens on cl100k_base and %d on o200k_base', (text, cl100k, o200k) => {
    expect(tokenizer.countText(text, 'gpt-4')).toBe(cl100k);
    expect(tokenizer.countText(text, 'gpt-4o')).toBe(o200k);
  });

  it('gives the same counts and offsets asynchronously', async () => {
    const text = 'The quick brown fox 日本語 🙂 '.repeat(500);
    const messages: ChatMessage[] = [{ role: 'user', name: 'Alice', content: text }];
    for (const model of ['gpt-4', 'gpt-4o']) {
      await expect(tokenizer.countTextAsync(text, model)).resolves.toBe(tokenizer.countText(text, model));
      await expect(tokenizer.countTextsAsync([text, 'hello world'], model)).resolves.toBe(tokenizer.countText(text, model) + 2);
      await expect(tokenizer.tokenOffsetsAsync(text, model)).resolves.toEqual(tokenizer.tokenOffsets(text, model));
      internals.messageCache.clear();
      const synchronous = tokenizer.countMessages(messages, model);
      internals.messageCache.clear();
      await expect(tokenizer.countMessagesAsync(messages, model)).resolves.toBe(synchronous);
    }
  });

  // tiktoken alone takes ~9 s for 100k spaces: quadratic in the length of a run with no word break.
  it.each([
    ['spaces', ' '.repeat(300_000)],
    ['one letter', 'a'.repeat(300_000)],
    ['CJK', '中文字符测试'.repeat(50_000)],
    ['newlines', '\n'.repeat(300_000)],
  ])('counts 300k characters of %s while handing the event loop back', async (_, text) => {
    const { value: count, turns } = await withTurnCount(() => tokenizer.countTextAsync(text, 'gpt-4o'));
    expect(count).toBeGreaterThan(0);
    expect(count).toBe(tokenizer.countText(text, 'gpt-4o'));
    expect(turns).toBeGreaterThan(1);
  });

  // Each short count finishes within one slice, and awaiting it is only a microtask: without a
  // budget shared across calls, a loop over many of them would never hand the event loop back.
  it('hands the event loop back during a loop of many short counts', async () => {
    const texts = Array.from({ length: 20_000 }, (_, index) => `${index} quick brown fox`);
    tokenizer.countText('load the encoding first', 'gpt-4o');
    const { value: offsets, turns } = await withTurnCount(async () => {
      let total = 0;
      for (const text of texts) total += (await tokenizer.tokenOffsetsAsync(text, 'gpt-4o')).length;
      return total;
    });
    expect(offsets).toBeGreaterThan(texts.length);
    // Some hundreds of milliseconds of counting: one turn every 8 ms slice gives dozens.
    expect(turns).toBeGreaterThanOrEqual(10);
  });

  it('counts special-token text as ordinary text instead of throwing', () => {
    expect(tokenizer.countText('<|endoftext|>', 'gpt-4')).toBe(7);
    expect(tokenizer.countText('<|endoftext|>', 'gpt-4o')).toBe(7);
    expect(tokenizer.countText('<|im_start|>user', 'gpt-4o')).toBe(7);
    expect(tokenizer.countMessages([{ role: 'user', content: '<|endoftext|>' }], 'gpt-4o')).toBe(3 + 1 + 7 + 3);
  });

  it('adds 3 tokens per message, 1 per name and 3 for the reply primer', () => {
    const one: ChatMessage[] = [{ role: 'user', content: 'hello world' }];
    expect(tokenizer.countMessages(one, 'gpt-4o')).toBe(3 + 1 + 2 + 3);
    expect(tokenizer.countMessages([{ ...one[0], name: 'Alice' }], 'gpt-4o')).toBe(3 + 1 + 2 + 1 + 1 + 3);
    expect(tokenizer.countMessages([], 'gpt-4o')).toBe(3);
  });

  it("matches the OpenAI cookbook's example conversation (129 tokens on gpt-4, 124 on gpt-4o)", () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.' },
      { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
      { role: 'system', name: 'example_assistant', content: 'Things working well together will increase revenue.' },
      {
        role: 'system',
        name: 'example_user',
        content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
      },
      { role: 'system', name: 'example_assistant', content: "Let's talk later when we're less busy about how to do better." },
      { role: 'user', content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
    ];
    expect(tokenizer.countMessages(messages, 'gpt-4')).toBe(129);
    expect(tokenizer.countMessages(messages, 'openai/gpt-4o')).toBe(124);
  });

  it('re-counts a long conversation after one new message from the cache', () => {
    const conversation: ChatMessage[] = Array.from({ length: 50 }, (_, i) => ({
      role: i % 2 === 0 ? 'user' : 'assistant',
      content: `message number ${i} `.repeat(40),
    }));
    const before = tokenizer.countMessages(conversation, 'gpt-4o');
    expect(tokenizer.cacheStats()).toEqual({ size: 50, hits: 0, misses: 50 });

    const extended = [...conversation, { role: 'user' as const, content: 'one more question' }];
    const after = tokenizer.countMessages(extended, 'gpt-4o');
    expect(after).toBe(before + 3 + 1 + tokenizer.countText('one more question', 'gpt-4o'));
    expect(tokenizer.cacheStats()).toEqual({ size: 51, hits: 50, misses: 51 });
  });

  it('keys the cache by encoding, role and name as well as content', () => {
    tokenizer.countMessages([{ role: 'user', content: 'same' }], 'gpt-4o');
    tokenizer.countMessages([{ role: 'user', content: 'same' }], 'gpt-4');
    tokenizer.countMessages([{ role: 'assistant', content: 'same' }], 'gpt-4o');
    tokenizer.countMessages([{ role: 'user', name: 'bob', content: 'same' }], 'gpt-4o');
    expect(tokenizer.cacheStats()).toMatchObject({ size: 4, hits: 0 });
  });

  it('bounds the cache', () => {
    const messages: ChatMessage[] = Array.from({ length: TokenizerService.CACHE_CAPACITY + 5 }, (_, i) => ({ role: 'user', content: `m${i}` }));
    tokenizer.countMessages(messages, 'gpt-4o');
    expect(tokenizer.cacheStats().size).toBe(TokenizerService.CACHE_CAPACITY);
  });

  it('reuses one encoder per encoding and frees them on module destroy', () => {
    const own = new TokenizerService();
    const encoders = (own as unknown as { encoders: Map<string, unknown> }).encoders;
    own.countText('a', 'gpt-4o');
    const first = encoders.get('o200k_base');
    own.countText('b', 'gpt-4o-mini');
    expect(encoders.get('o200k_base')).toBe(first);
    expect(encoders.size).toBe(1);
    own.onModuleDestroy();
    expect(encoders.size).toBe(0);
  });
});
