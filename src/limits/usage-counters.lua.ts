/**
 * Redis scripts for per-user counters. Every key of one user shares the hash tag
 * {userId}, so the scripts stay valid on Redis Cluster.
 *
 * Times come from the service's clock (ARGV), not Redis's, so tests can move time.
 *
 * Keys: KEYS[1] rolling window (hash: tokens, start), KEYS[2] calendar
 * day (tokens), KEYS[3] calendar month (micro-USD), KEYS[4] open reservations
 * (hash id -> "tokens:micros:expiresAtMs").
 */

/** Sums live reservations, dropping expired ones (crashed requests). */
const LIVE_RESERVATIONS = `
local function live_reservations(key, now)
  local tokens, micros = 0, 0
  local entries = redis.call('HGETALL', key)
  for i = 1, #entries, 2 do
    local t, m, expires = string.match(entries[i + 1], '^(%d+):(%d+):(%d+)$')
    if t == nil or tonumber(expires) <= now then
      redis.call('HDEL', key, entries[i])
    else
      tokens = tokens + tonumber(t)
      micros = micros + tonumber(m)
    end
  end
  return tokens, micros
end
local function used(key) return tonumber(redis.call('GET', key) or '0') end
local function window_tokens(key, now, length)
  local start = tonumber(redis.call('HGET', key, 'start') or '-1')
  if start < 0 or now - start >= length then return 0, -1 end
  return tonumber(redis.call('HGET', key, 'tokens') or '0'), start
end
`;

/**
 * Reserves up to `want` tokens (at least `min`) against every limit, in one step.
 * ARGV: now, reservationId, min, want, microsPerToken, rollingLimit, dailyLimit,
 * monthlyLimitMicros (-1 = unlimited), reservationTtlMs, needDay (1/0), needMonth (1/0), windowMs.
 * Returns {1, grantedTokens, reservedMicros} | {0, limitName, used, limit} | {-1, missingKeyIndex}.
 */
export const RESERVE_SCRIPT = `${LIVE_RESERVATIONS}
local now = tonumber(ARGV[1])
if ARGV[10] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then return {-1, 2} end
if ARGV[11] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then return {-1, 3} end
local reserved_tokens, reserved_micros = live_reservations(KEYS[4], now)
local min = tonumber(ARGV[3])
local grant = tonumber(ARGV[4])
local micros_per_token = tonumber(ARGV[5])
local in_window = window_tokens(KEYS[1], now, tonumber(ARGV[12]))
local token_limits = { {in_window, tonumber(ARGV[6]), 'rolling_24h_tokens'}, {used(KEYS[2]), tonumber(ARGV[7]), 'daily_tokens'} }
for _, limit in ipairs(token_limits) do
  if limit[2] >= 0 then
    local current = limit[1] + reserved_tokens
    local available = limit[2] - current
    if available < grant then grant = available end
    if grant < min then return {0, limit[3], current, limit[2]} end
  end
end
local monthly_limit = tonumber(ARGV[8])
if monthly_limit >= 0 then
  local current = used(KEYS[3]) + reserved_micros
  local available = monthly_limit - current
  if micros_per_token > 0 then
    local affordable = math.floor(available / micros_per_token)
    if affordable < grant then grant = affordable end
  end
  if grant < min or available <= 0 then return {0, 'monthly_cost', current, monthly_limit} end
end
local micros = math.ceil(grant * micros_per_token)
local ttl = tonumber(ARGV[9])
redis.call('HSET', KEYS[4], ARGV[2], string.format('%d:%d:%d', grant, micros, now + ttl))
redis.call('PEXPIRE', KEYS[4], ttl * 2)
return {1, grant, micros}
`;

/**
 * Records actual usage and releases the reservation (if any).
 * ARGV: reservationId ('' for none), tokens, micros, windowMs, dayTtlSeconds, monthTtlSeconds, now.
 * The window starts at first use and is not extended by later use; once it is 24 h
 * old the next use starts a new one. Day and month counters are only incremented
 * once seeded from the ledger (see RESERVE_SCRIPT's -1).
 * Returns {windowTokens, windowStartMs, dayTokens, monthMicros} (-1 for a counter not seeded).
 */
export const SETTLE_SCRIPT = `${LIVE_RESERVATIONS}
if ARGV[1] ~= '' then redis.call('HDEL', KEYS[4], ARGV[1]) end
local tokens = tonumber(ARGV[2])
local micros = tonumber(ARGV[3])
local now = tonumber(ARGV[7])
local length = tonumber(ARGV[4])
local current, start = window_tokens(KEYS[1], now, length)
if start < 0 then
  start = now
  redis.call('HSET', KEYS[1], 'tokens', tokens, 'start', start)
  redis.call('PEXPIRE', KEYS[1], length)
else
  current = redis.call('HINCRBY', KEYS[1], 'tokens', tokens)
end
local day = -1
if redis.call('EXISTS', KEYS[2]) == 1 then
  day = redis.call('INCRBY', KEYS[2], tokens)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
end
local month = -1
if redis.call('EXISTS', KEYS[3]) == 1 then
  month = redis.call('INCRBY', KEYS[3], micros)
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[6]))
end
return {tonumber(redis.call('HGET', KEYS[1], 'tokens')), start, day, month}
`;

/** ARGV: now, windowMs. Returns {windowTokens, windowStartMs (-1 when no live window)}. */
export const WINDOW_SCRIPT = `${LIVE_RESERVATIONS}
local tokens, start = window_tokens(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
return {tokens, start}
`;
