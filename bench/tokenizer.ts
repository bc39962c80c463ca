/** Benchmark 4: tokenizer throughput per encoding, and re-estimating a conversation with the cache. */
import 'reflect-metadata';
import type { ChatMessage } from '../src/ai/ai-provider.interface';
import { TokenizerService } from '../src/ai/tokenizer.service';
import { machine } from './support/processes';

const WORDS = 'the quick brown fox jumps over a lazy dog while seven wizards quietly judge boxing matches near old river banks'.split(' ');

function text(bytes: number, seed = 1): string {
  let state = seed;
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const word = WORDS[state % WORDS.length] + (state % 17 === 0 ? '.\n' : ' ');
    parts.push(word);
    length += word.length;
  }
  return parts.join('').slice(0, bytes);
}

function timeMs(fn: () => void, repeat = 1): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < repeat; i += 1) fn();
  return Number(process.hrtime.bigint() - started) / 1e6 / repeat;
}

function main() {
  console.log(`machine: ${machine()}`);
  const tokenizer = new TokenizerService();
  tokenizer.onModuleInit?.();
  const megabyte = text(1024 * 1024);
  console.log('\n4. Tokenizer');
  for (const [model, encoding] of [['gpt-4o', 'o200k_base'], ['gpt-4', 'cl100k_base']] as const) {
    tokenizer.countText(megabyte.slice(0, 1000), model);
    let tokens = 0;
    const ms = timeMs(() => (tokens = tokenizer.countText(megabyte, model)), 3);
    console.log(`  ${encoding}: 1 MiB -> ${tokens} tokens in ${ms.toFixed(1)} ms = ${(1000 / ms).toFixed(2)} MB/s`);
  }

  const conversation: ChatMessage[] = Array.from({ length: 100 }, (_, i) => ({
    role: i % 2 === 0 ? 'user' : 'assistant',
    content: text(600, i + 7),
  }));
  const cold = new TokenizerService();
  cold.onModuleInit?.();
  const coldMs = timeMs(() => cold.countMessages(conversation, 'gpt-4o'));
  const next = [...conversation, { role: 'user' as const, content: 'And one more question about that?' }];
  const warmMs = timeMs(() => cold.countMessages(next, 'gpt-4o'));
  console.log(`  100-message conversation (~60 KB): first estimate ${coldMs.toFixed(2)} ms; after one new message ${warmMs.toFixed(3)} ms with the cache (${(coldMs / warmMs).toFixed(0)}x faster)`);

  // Runs with no word break: quadratic in tiktoken alone, linear once cut into pieces.
  const hostile: Array<[string, string]> = [
    ['one letter', 'a'.repeat(1_000_000)],
    ['spaces', ' '.repeat(1_000_000)],
    ['CJK', '中文字符测试'.repeat(58_000)],
    ['mixed whitespace', ' \n\t a'.repeat(200_000)],
  ];
  for (const [name, input] of hostile) {
    let tokens = 0;
    const ms = timeMs(() => (tokens = tokenizer.countText(input, 'gpt-4o')));
    console.log(`  worst case, ${(input.length / 1000).toFixed(0)}k characters of ${name}: ${tokens} tokens in ${ms.toFixed(0)} ms (${((ms * 1000) / input.length).toFixed(2)} µs per character)`);
  }
}

main();
