import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { get_encoding, Tiktoken } from 'tiktoken';
import { sliceSpent, yieldWhenSpent } from '../common/turn-budget';
import type { ChatMessage } from './ai-provider.interface';
import { tokenizerPieces } from './tokenizer-pieces';

export type EncodingName = 'o200k_base' | 'cl100k_base';

/** OpenAI chat format: every message is wrapped in <|start|>{role/name}\n{content}<|end|>. */
const TOKENS_PER_MESSAGE = 3;
const TOKENS_PER_NAME = 1;
/** Every reply is primed with <|start|>assistant<|message|>. */
const REPLY_PRIMER_TOKENS = 3;

const O200K_MODEL = /^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-oss|gpt-([5-9]|\d{2,})|o\d)/;

/** Small LRU on Map insertion order. */
class LruCache<K, V> {
  private readonly entries = new Map<K, V>();
  constructor(private readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) {
      this.entries.delete(this.entries.keys().next().value as K);
    }
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
  }
}

export interface TokenizerCacheStats {
  size: number;
  hits: number;
  misses: number;
}

@Injectable()
export class TokenizerService implements OnModuleInit, OnModuleDestroy {
  static readonly CACHE_CAPACITY = 10_000;

  private readonly encoders = new Map<EncodingName, Tiktoken>();
  private readonly messageCache = new LruCache<string, number>(TokenizerService.CACHE_CAPACITY);
  private hits = 0;
  private misses = 0;

  /** Loading an encoding blocks for ~150 ms; do it at boot rather than inside the first request. */
  onModuleInit(): void {
    this.encoder('o200k_base');
    this.encoder('cl100k_base');
  }

  /** The `openai/` prefix is ignored; other vendors' and unknown models use cl100k_base. */
  encodingFor(model: string): EncodingName {
    const name = model.toLowerCase().replace(/^openai\//, '');
    return O200K_MODEL.test(name) ? 'o200k_base' : 'cl100k_base';
  }

  /**
   * Special-token text such as `<|endoftext|>` is counted as ordinary text, never rejected.
   * Every count cuts the text into bounded pieces (tokenizer-pieces.ts), so it takes time
   * linear in the text's length. The synchronous forms hold the event loop for all of it:
   * request paths use the *Async forms, which hand the loop back whenever the turn's shared slice (common/turn-budget.ts) is used up.
   */
  countText(text: string, model: string): number {
    return runToEnd(this.counting([text], this.encodingFor(model)));
  }

  countTextAsync(text: string, model: string): Promise<number> {
    return runInSlices(this.counting([text], this.encodingFor(model)));
  }

  countTextsAsync(texts: readonly string[], model: string): Promise<number> {
    return runInSlices(this.counting(texts, this.encodingFor(model)));
  }

  /**
   * UTF-8 byte offset at which each token of `text` starts, plus the text's byte length
   * (so n tokens give n + 1 offsets). The tokens' bytes concatenate to the text exactly.
   */
  tokenOffsets(text: string, model: string): number[] {
    return runToEnd(this.offsetting(text, this.encodingFor(model)));
  }

  tokenOffsetsAsync(text: string, model: string): Promise<number[]> {
    return runInSlices(this.offsetting(text, this.encodingFor(model)));
  }

  countMessages(messages: readonly ChatMessage[], model: string): number {
    return runToEnd(this.countingMessages(messages, this.encodingFor(model)));
  }

  countMessagesAsync(messages: readonly ChatMessage[], model: string): Promise<number> {
    return runInSlices(this.countingMessages(messages, this.encodingFor(model)));
  }

  cacheStats(): TokenizerCacheStats {
    return { size: this.messageCache.size, hits: this.hits, misses: this.misses };
  }

  onModuleDestroy(): void {
    for (const encoder of this.encoders.values()) encoder.free();
    this.encoders.clear();
    this.messageCache.clear();
  }

  private *countingMessages(messages: readonly ChatMessage[], encoding: EncodingName): Work<number> {
    let total = REPLY_PRIMER_TOKENS;
    for (const message of messages) total += yield* this.countingMessage(message, encoding);
    return total;
  }

  private *countingMessage(message: ChatMessage, encoding: EncodingName): Work<number> {
    const key = createHash('sha1')
      .update(encoding)
      .update('\0')
      .update(message.role)
      .update('\0')
      .update(message.name ?? '')
      .update('\0')
      .update(message.content)
      .digest('base64');
    const cached = this.messageCache.get(key);
    if (cached !== undefined) {
      this.hits++;
      return cached;
    }
    this.misses++;
    let count = TOKENS_PER_MESSAGE + (yield* this.counting([message.role, message.content], encoding));
    if (message.name) count += TOKENS_PER_NAME + (yield* this.counting([message.name], encoding));
    this.messageCache.set(key, count);
    return count;
  }

  /** Yields after each piece: the point where an async caller may hand the event loop back. */
  private *counting(texts: readonly string[], encoding: EncodingName): Work<number> {
    const encoder = this.encoder(encoding);
    let count = 0;
    for (const text of texts) {
      for (const piece of tokenizerPieces(text)) {
        count += encoder.encode_ordinary(piece).length;
        yield;
      }
    }
    return count;
  }

  private *offsetting(text: string, encoding: EncodingName): Work<number[]> {
    const encoder = this.encoder(encoding);
    const offsets = [0];
    for (const piece of tokenizerPieces(text)) {
      for (const token of encoder.encode_ordinary(piece)) {
        offsets.push(offsets[offsets.length - 1] + encoder.decode_single_token_bytes(token).length);
      }
      yield;
    }
    return offsets;
  }

  private encoder(encoding: EncodingName): Tiktoken {
    let encoder = this.encoders.get(encoding);
    if (!encoder) {
      encoder = get_encoding(encoding);
      this.encoders.set(encoding, encoder);
    }
    return encoder;
  }
}

type Work<T> = Generator<void, T, void>;

function runToEnd<T>(work: Work<T>): T {
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}

/**
 * Steps through `work`, handing the event loop back whenever the turn's slice, shared with every
 * other sliced task (common/turn-budget.ts), is used up: a caller looping over many short texts
 * (each well under the slice, so never yielding on its own) would otherwise hold the loop for all
 * of them, as awaiting a finished count is only a microtask.
 */
async function runInSlices<T>(work: Work<T>): Promise<T> {
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
    if (sliceSpent()) await yieldWhenSpent();
  }
}
