import 'reflect-metadata';
import { REMOTE_DATA_JSON_URL } from '@pydantic/genai-prices';
import { plainToInstance, Transform } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNumber,
  IsOptional,
  IsString,
  IsUrl,
  Matches,
  Max,
  Min,
  MinLength,
  getMetadataStorage,
  validateSync,
} from 'class-validator';

const toBoolean = ({ value }: { value: unknown }) => {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string') return value;
  const normalised = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(normalised)) return true;
  if (['false', '0', 'no', 'off', ''].includes(normalised)) return false;
  return value;
};

const isValidTimeZone = (zone: string) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
};

export const AI_PROVIDERS = ['openrouter', 'openai', 'compatible', 'simulated'] as const;
export type AiProviderName = (typeof AI_PROVIDERS)[number];

/**
 * Every environment variable the service reads, with its type and default.
 * Validated once at boot (see loadConfig); nothing else reads process.env.
 */
export class AppConfig {
  @IsIn(['development', 'production', 'test'])
  NODE_ENV: 'development' | 'production' | 'test' = 'development';

  @IsInt()
  @Min(0)
  @Max(65535)
  PORT: number = 3000;

  @IsString()
  HOST = '0.0.0.0';

  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
  LOG_LEVEL = 'info';

  /** Directory for the per-operation JSONL usage logs. */
  @IsString()
  LOG_DIR = './logs';

  @IsInt()
  @Min(1024)
  @Max(64 * 1024 * 1024)
  BODY_LIMIT_BYTES: number = 1024 * 1024;

  @IsInt()
  @Min(0)
  SHUTDOWN_TIMEOUT_MS: number = 10_000;

  @IsOptional()
  @Matches(/^mongodb(\+srv)?:\/\//, { message: 'MONGODB_URI must start with mongodb:// or mongodb+srv://' })
  MONGODB_URI?: string;

  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,63}$/, { message: 'MONGODB_DB_NAME must match ^[A-Za-z0-9_-]{1,63}$' })
  MONGODB_DB_NAME = 'token-ledger';

  /** Try mongodb-memory-server before the in-process server when MONGODB_URI is unset. */
  @Transform(toBoolean)
  @IsBoolean()
  MONGODB_MEMORY_SERVER: boolean = true;

  /** Where mongodb-memory-server keeps its data, so a restart keeps the ledger. */
  @IsString()
  MONGODB_DATA_DIR = './data/mongo';

  /** Upper bound on the mongodb-memory-server attempt (binary lookup, download, start). */
  @IsInt()
  @Min(100)
  MONGODB_MEMORY_SERVER_TIMEOUT_MS: number = 5_000;

  /** How long a MongoDB operation waits for a reachable server before failing (while MongoDB is down). */
  @IsInt()
  @Min(100)
  MONGODB_SERVER_SELECTION_TIMEOUT_MS: number = 5_000;

  /**
   * How long a read on the request path (chat history, plan, idempotency record, caches) waits
   * for MongoDB before the request goes on with its fallback (a down or frozen server).
   */
  @IsInt()
  @Min(50)
  MONGODB_READ_TIMEOUT_MS: number = 1_000;

  /**
   * Driver command events (commandStarted/Succeeded/Failed), for tools that count commands.
   * Off by default: each event costs CPU on every command, and a succeeded event decodes the
   * whole reply a second time.
   */
  @Transform(toBoolean)
  @IsBoolean()
  MONGODB_MONITOR_COMMANDS: boolean = false;

  @IsString()
  @Matches(/^rediss?:\/\//, { message: 'REDIS_URL must start with redis:// or rediss://' })
  REDIS_URL = 'redis://127.0.0.1:6379';

  /** Prefix of every Redis key this service writes, so deployments (and test runs) can share a Redis. */
  @IsString()
  @Matches(/^[A-Za-z0-9_.:-]{0,64}$/, { message: 'REDIS_KEY_PREFIX must match ^[A-Za-z0-9_.:-]{0,64}$' })
  REDIS_KEY_PREFIX: string = 'token-ledger:';

  @IsOptional()
  @IsIn(AI_PROVIDERS)
  AI_PROVIDER?: AiProviderName;

  @IsOptional()
  @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] })
  AI_BASE_URL?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  OPENROUTER_API_KEY?: string;

  @IsOptional()
  @IsString()
  @MinLength(1)
  AI_API_KEY?: string;

  @IsString()
  @MinLength(1)
  AI_PRIMARY_MODEL = 'openai/gpt-4o-mini';

  @IsOptional()
  @IsString()
  AI_FALLBACK_MODEL?: string = 'openai/gpt-4o';

  /** Model for embeddings (RAG, search); same provider as chat. */
  @IsString()
  @MinLength(1)
  AI_EMBEDDING_MODEL = 'openai/text-embedding-3-small';

  @IsInt()
  @Min(100)
  AI_TIMEOUT_MS: number = 60_000;

  /** How the openai SDK reaches the provider: node:http keep-alive (default) or Node's built-in fetch. */
  @IsIn(['node', 'fetch'])
  AI_HTTP_TRANSPORT: 'node' | 'fetch' = 'node';

  @IsInt()
  @Min(1)
  AI_MAX_TOKENS: number = 4096;

  /**
   * Completion tokens a call that names no max_tokens reserves against a limited user's
   * budget; such a call is sent with max_tokens lowered to this (at most AI_MAX_TOKENS).
   */
  @IsInt()
  @Min(16)
  AI_RESERVE_COMPLETION_TOKENS: number = 1024;

  /** Optional path to a JSON price catalog that replaces the bundled one. */
  @IsOptional()
  @IsString()
  PRICE_CATALOG_PATH?: string;

  /** Price models missing from our catalog with @pydantic/genai-prices' bundled data (no network). */
  @Transform(toBoolean)
  @IsBoolean()
  PRICES_GENAI_FALLBACK = true;

  /** Operator opt-in: fetch genai-prices' latest data file from GitHub at start and every PRICES_AUTO_UPDATE_HOURS. */
  @Transform(toBoolean)
  @IsBoolean()
  PRICES_AUTO_UPDATE = false;

  @IsInt()
  @Min(1)
  PRICES_AUTO_UPDATE_HOURS: number = 24;

  /** Where PRICES_AUTO_UPDATE fetches from (default: the maintainers' data file on GitHub; a mirror for closed networks). */
  @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] })
  PRICES_AUTO_UPDATE_URL: string = REMOTE_DATA_JSON_URL;

  @IsString()
  @Matches(/^[A-Z]{3}$/, { message: 'DISPLAY_CURRENCY must be a three-letter ISO 4217 code' })
  DISPLAY_CURRENCY = 'USD';

  /** Units of DISPLAY_CURRENCY per US dollar. */
  @IsNumber()
  @Min(0)
  DISPLAY_CURRENCY_RATE: number = 1;

  /** JSON object of tier name -> { rolling24hTokens, dailyTokens, monthlyCostUsd, failMode }; unset = FREE/JIVE/JIGGA defaults. */
  @IsOptional()
  @IsString()
  TIER_LIMITS?: string;

  /** Tier of users that have none set. */
  @IsString()
  @Matches(/^[A-Z][A-Z0-9_]{0,31}$/, { message: 'DEFAULT_TIER must match ^[A-Z][A-Z0-9_]{0,31}$' })
  DEFAULT_TIER: string = 'FREE';

  /** How long a user's tier and limits held in Redis (and in process) serve before MongoDB is read again; changes through the API apply at once. */
  @IsInt()
  @Min(0)
  PLAN_CACHE_MS: number = 30_000;

  /**
   * How long a request may wait for budget that only other requests' reservations hold (they
   * settle to their actual usage, usually far less) before it is refused with 429; 0 refuses at once.
   */
  @IsInt()
  @Min(0)
  LIMIT_QUEUE_MS: number = 5_000;

  /** Messages of chat history kept per user and plugin (and sent with the next message). */
  @IsInt()
  @Min(0)
  @Max(200)
  CHAT_HISTORY_LIMIT: number = 20;

  /** Tokens per chunk when a resource is embedded and stored for search. */
  @IsInt()
  @Min(16)
  @Max(8000)
  EMBED_CHUNK_TOKENS: number = 400;

  /** Tokens each chunk repeats from the end of the previous one; less than EMBED_CHUNK_TOKENS. */
  @IsInt()
  @Min(0)
  EMBED_CHUNK_OVERLAP: number = 50;

  /** inprocess = cosine similarity over an in-memory matrix per user; atlas = MongoDB Atlas $vectorSearch. */
  @IsIn(['inprocess', 'atlas'])
  VECTOR_SEARCH: 'inprocess' | 'atlas' = 'inprocess';

  /** Name of the Atlas Vector Search index on resource_chunks (VECTOR_SEARCH=atlas). */
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,64}$/, { message: 'ATLAS_VECTOR_INDEX must match ^[A-Za-z0-9_-]{1,64}$' })
  ATLAS_VECTOR_INDEX = 'resource_chunks_vector';

  /** Memory for the in-process vector matrices (least recently searched users are dropped first). */
  @IsInt()
  @Min(1)
  VECTOR_INDEX_MAX_MB: number = 512;

  /** How long whole search results are reused (0 = never); a change to the user's chunks invalidates them at once. */
  @IsInt()
  @Min(0)
  SEARCH_RESULT_CACHE_MS: number = 30_000;

  /** Query embeddings kept per process for clients' sessions (sessionId); 0 disables the session cache. */
  @IsInt()
  @Min(0)
  SEARCH_SESSION_CACHE_SIZE: number = 2_000;

  @IsInt()
  @Min(1000)
  SEARCH_SESSION_CACHE_TTL_MS: number = 30 * 60_000;

  /** Chunks scoring below this cosine similarity are not given to the model as RAG context. */
  @IsNumber()
  @Min(-1)
  @Max(1)
  RAG_MIN_SCORE: number = 0.15;

  /** Upper bound on the context tokens a RAG answer sends (the best chunks that fit). */
  @IsInt()
  @Min(100)
  RAG_CONTEXT_MAX_TOKENS: number = 6000;

  /** Build tool for generated plugins: auto = offline Maven when it can resolve, else javac. */
  @IsIn(['auto', 'mvn', 'javac'])
  PLUGIN_BUILD_TOOL: 'auto' | 'mvn' | 'javac' = 'auto';

  @IsInt()
  @Min(1000)
  PLUGIN_BUILD_TIMEOUT_MS: number = 60_000;

  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'ADMIN_API_KEY must be at least 16 characters' })
  ADMIN_API_KEY?: string;

  /**
   * Where the development admin key is kept: made at the first start on embedded defaults (no
   * MONGODB_URI, no ADMIN_API_KEY, NODE_ENV not production) and read back at later starts.
   */
  @IsString()
  @MinLength(1)
  DEV_ADMIN_KEY_FILE = './data/dev-admin-key';

  /** Development only: skip authentication and treat every request as admin (warned about at every start). */
  @Transform(toBoolean)
  @IsBoolean()
  AUTH_DISABLED: boolean = false;

  /** How long a validated API key is trusted in process before it is looked up again (revocation in another process takes this long). */
  @IsInt()
  @Min(0)
  API_KEY_CACHE_MS: number = 30_000;

  /** Requests per minute per API key (0 = unlimited); counted in Redis, in process while Redis is down. */
  @IsInt()
  @Min(0)
  RATE_LIMIT_PER_MINUTE: number = 600;

  /** Override of RATE_LIMIT_PER_MINUTE for service keys, which act for many users; unset = the same. */
  @IsOptional()
  @IsInt()
  @Min(0)
  RATE_LIMIT_SERVICE_PER_MINUTE?: number;

  /**
   * Comma-separated browser origins allowed by CORS (e.g. https://app.example.com; a port of * is
   * any port, http://localhost:*). Unset = local development origins (http://localhost:*,
   * http://127.0.0.1:*, http://[::1]:*), or same-origin only when NODE_ENV is production.
   */
  @IsOptional()
  @Matches(/^\s*https?:\/\/[^\s,/]+\s*(,\s*https?:\/\/[^\s,/]+\s*)*$/, {
    message: 'CORS_ORIGINS must be a comma-separated list of origins such as https://app.example.com',
  })
  CORS_ORIGINS?: string;

  @IsString()
  USAGE_TIMEZONE = 'UTC';

  @IsInt()
  @Min(1)
  @Max(1000)
  RECENT_SESSIONS_LIMIT: number = 50;

  @IsInt()
  @Min(1)
  DAILY_RETENTION_DAYS: number = 400;

  /**
   * Ledger, limits and rolling window for AI calls. Off only to measure what tracking
   * costs (bench/); responses then carry no tracking figures.
   */
  @Transform(toBoolean)
  @IsBoolean()
  TRACKING_ENABLED: boolean = true;

  /** Bound on one ledger write; a slower write counts as failed and is reported, not awaited forever. */
  @IsInt()
  @Min(100)
  LEDGER_WRITE_TIMEOUT_MS: number = 5_000;

  /** Append-only files holding ledger writes that failed (MongoDB down), replayed once it is back. */
  @IsString()
  @MinLength(1)
  OUTBOX_DIR = './data/outbox';

  /** Append every usage event to LOG_DIR/token_usage_YYYY-MM-DD.jsonl (buffered, off the request path). */
  @Transform(toBoolean)
  @IsBoolean()
  USAGE_LOG_FILE: boolean = true;

  /** JSONL usage logs older than this many days are deleted. */
  @IsInt()
  @Min(1)
  USAGE_LOG_RETENTION_DAYS: number = 30;

  /**
   * Under load, how long each analytics aggregate write (rollups of stored usage events, off
   * the request path) waits to gather more events: larger batches, fewer MongoDB writes. An
   * event arriving while the writer is idle does not wait; reads in this process never wait
   * for the linger, other processes may see aggregates this much later.
   */
  @IsInt()
  @Min(0)
  @Max(1_000)
  USAGE_AGGREGATE_LINGER_MS: number = 100;

  /** Keep the user's query (first 500 characters) in usage events and logs; false omits it everywhere. */
  @Transform(toBoolean)
  @IsBoolean()
  LOG_QUERIES: boolean = true;

  /** Raw usage events expire after this many days (TTL index); the daily and monthly aggregates stay. */
  @IsInt()
  @Min(1)
  EVENT_RETENTION_DAYS: number = 90;

  /**
   * How often usage events whose aggregate lease ran out (a writer crashed or lost a reply
   * after inserting them) are completed; also once at startup. 0 = never, automatically.
   */
  @IsInt()
  @Min(0)
  ROLLUP_SWEEP_INTERVAL_MS: number = 60_000;

  /** Bearer token GET /metrics requires when set; unset = public, as Prometheus scrapers usually expect. */
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'METRICS_TOKEN must be at least 16 characters' })
  METRICS_TOKEN?: string;

  /** JSON budget alert thresholds (global, every user, named users); unset = no budget alerts. See README. */
  @IsOptional()
  @IsString()
  BUDGET_ALERTS?: string;

  /** Comma-separated URLs that receive alert events as signed JSON POSTs. */
  @IsOptional()
  @Matches(/^\s*https?:\/\/[^\s,]+\s*(,\s*https?:\/\/[^\s,]+\s*)*$/, {
    message: 'ALERT_WEBHOOK_URLS must be a comma-separated list of http(s) URLs',
  })
  ALERT_WEBHOOK_URLS?: string;

  /** HMAC-SHA256 key for the x-token-ledger-signature header of alert webhooks. */
  @IsOptional()
  @IsString()
  @MinLength(16, { message: 'ALERT_WEBHOOK_SECRET must be at least 16 characters' })
  ALERT_WEBHOOK_SECRET?: string;

  @IsInt()
  @Min(1)
  @Max(20)
  ALERT_WEBHOOK_MAX_ATTEMPTS: number = 5;

  /** First retry delay of a failed webhook delivery; doubles on each further attempt. */
  @IsInt()
  @Min(1)
  ALERT_WEBHOOK_RETRY_BASE_MS: number = 1_000;

  @IsInt()
  @Min(100)
  ALERT_WEBHOOK_TIMEOUT_MS: number = 5_000;

  /** An operation using more than this many times its type's expected tokens is logged and counted as high usage. */
  @IsNumber()
  @Min(1)
  HIGH_USAGE_MULTIPLIER: number = 5;

  /** JSON object of operation type -> expected tokens, overriding the built-in expectations. */
  @IsOptional()
  @IsString()
  HIGH_USAGE_EXPECTED_TOKENS?: string;
}

export type ConfigOverrides = Partial<Record<keyof AppConfig, string | number | boolean>>;

const KNOWN_KEYS = new Set(
  getMetadataStorage()
    .getTargetValidationMetadatas(AppConfig, '', true, false)
    .map((metadata) => metadata.propertyName),
);

const isNumberKey = (key: string) => Reflect.getMetadata('design:type', AppConfig.prototype, key) === Number;

export class ConfigValidationError extends Error {}

/**
 * Builds the validated config from raw variables (process.env plus .env).
 * Unknown variables are ignored; empty strings count as unset.
 */
export function validateConfig(raw: Record<string, unknown>): AppConfig {
  const plain: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined || value === '' || !KNOWN_KEYS.has(key)) continue;
    const numeric = isNumberKey(key) && typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim());
    plain[key] = numeric ? Number(value) : value;
  }
  const config = plainToInstance(AppConfig, plain, { exposeDefaultValues: true });
  const errors = validateSync(config, { skipMissingProperties: false });
  const messages = errors.flatMap((error) =>
    Object.values(error.constraints ?? {}).map((message) =>
      message.startsWith(error.property) ? message : `${error.property}: ${message}`,
    ),
  );
  if (!isValidTimeZone(config.USAGE_TIMEZONE)) {
    messages.push(`USAGE_TIMEZONE must be an IANA time zone such as UTC or Africa/Johannesburg (got "${config.USAGE_TIMEZONE}")`);
  }
  if (config.EMBED_CHUNK_OVERLAP >= config.EMBED_CHUNK_TOKENS) {
    messages.push(`EMBED_CHUNK_OVERLAP must be less than EMBED_CHUNK_TOKENS (got ${config.EMBED_CHUNK_OVERLAP} >= ${config.EMBED_CHUNK_TOKENS})`);
  }
  if (messages.length > 0) {
    throw new ConfigValidationError(`Invalid configuration:\n  - ${messages.join('\n  - ')}`);
  }
  return config;
}
