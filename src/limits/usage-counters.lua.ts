/**
 * Redis scripts for per-user counters. Every key of one user shares the hash tag
 * {userId}, so the scripts stay valid on Redis Cluster.
 *
 * Times come from the service's clock (ARGV), not Redis's, so tests can move time.
 *
 * Keys: KEYS[1] rolling window (hash: tokens, start), KEYS[2] calendar
 * day (tokens), KEYS[3] calendar month (micro-USD), KEYS[4] open reservations
 * (hash id -> "tokens:micros:expiresAtMs"), KEYS[5] the user's plan (hash: tier, r, d, m, f,
 * v, fresh), KEYS[6] usage settled while the plan was missing. The plan hash is also the seed marker: while it exists, the counters above are
 * the truth (a missing window means no window is open); once Redis has lost it, every counter
 * is re-seeded from MongoDB before anything is admitted.
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
 * Reserves every part of one request (each up to its `want`, at least its `min` tokens)
 * against every limit of the plan held in KEYS[5], all or nothing, in one step. When a limit
 * leaves less than the sum of the wants, the last parts are lowered first.
 * ARGV: now, reservationId, microsPerToken, reservationTtlMs, windowMs, parts, then a
 * min and a want per part. Part i is held as `reservationId#i`.
 * Returns {1, planFields, grant1..grantN} | {2, planFields, want1..wantN} (no limit: nothing
 * held) | {0, planFields, limitName, used, limit, heldByOthers} | {-1, planMissing (1/0)} (the plan, or a
 * new day's or month's counter, not seeded), where
 * planFields = tier, rolling, daily, monthlyMicros (-1 = unlimited), failMode, stale (1/0).
 */
export const RESERVE_SCRIPT = `${LIVE_RESERVATIONS}
local now = tonumber(ARGV[1])
local plan = redis.call('HMGET', KEYS[5], 'tier', 'r', 'd', 'm', 'f', 'fresh')
if not plan[1] then return {-1, 1} end
local rolling, daily, monthly = tonumber(plan[2]), tonumber(plan[3]), tonumber(plan[4])
local stale = 0
if tonumber(plan[6] or '0') <= now then stale = 1 end
local head = {plan[1], rolling, daily, monthly, plan[5], stale}
local function answer(code, tail)
  local out = {code}
  for _, v in ipairs(head) do out[#out + 1] = v end
  for _, v in ipairs(tail) do out[#out + 1] = v end
  return out
end
local parts = tonumber(ARGV[6])
local mins, wants, min, grant = {}, {}, 0, 0
for i = 1, parts do
  mins[i] = tonumber(ARGV[5 + 2 * i])
  wants[i] = tonumber(ARGV[6 + 2 * i])
  min = min + mins[i]
  grant = grant + wants[i]
end
if rolling < 0 and daily < 0 and monthly < 0 then return answer(2, wants) end
if daily >= 0 and redis.call('EXISTS', KEYS[2]) == 0 then return {-1, 0} end
if monthly >= 0 and redis.call('EXISTS', KEYS[3]) == 0 then return {-1, 0} end
local reserved_tokens, reserved_micros = live_reservations(KEYS[4], now)
local micros_per_token = tonumber(ARGV[3])
local in_window = window_tokens(KEYS[1], now, tonumber(ARGV[5]))
local token_limits = { {in_window, rolling, 'rolling_24h_tokens'}, {used(KEYS[2]), daily, 'daily_tokens'} }
for _, limit in ipairs(token_limits) do
  if limit[2] >= 0 then
    local current = limit[1] + reserved_tokens
    local available = limit[2] - current
    if available < grant then grant = available end
    if grant < min then return answer(0, {limit[3], current, limit[2], reserved_tokens}) end
  end
end
if monthly >= 0 then
  local current = used(KEYS[3]) + reserved_micros
  local available = monthly - current
  if micros_per_token > 0 then
    local affordable = math.floor(available / micros_per_token)
    if affordable < grant then grant = affordable end
  end
  if grant < min or available <= 0 then return answer(0, {'monthly_cost', current, monthly, reserved_micros}) end
end
local total = 0
for i = 1, parts do total = total + wants[i] end
local shortfall = total - grant
for i = parts, 1, -1 do
  local cut = math.min(shortfall, wants[i] - mins[i])
  wants[i] = wants[i] - cut
  shortfall = shortfall - cut
end
local ttl = tonumber(ARGV[4])
for i = 1, parts do
  local micros = math.ceil(wants[i] * micros_per_token)
  redis.call('HSET', KEYS[4], ARGV[2] .. '#' .. i, string.format('%d:%d:%d', wants[i], micros, now + ttl))
end
redis.call('PEXPIRE', KEYS[4], ttl * 2)
return answer(1, wants)
`;

/**
 * Records actual usage and releases the reservation (if any).
 * ARGV: reservationId ('' for none), tokens, micros, windowMs, dayTtlSeconds, monthTtlSeconds, now, planTtlSeconds.
 * The window starts at first use and is not extended by later use; once it is 24 h
 * old the next use starts a new one. Day and month counters are only incremented
 * once seeded from the ledger (see RESERVE_SCRIPT's -1). Without the plan hash (Redis lost
 * its data) the usage is kept aside in KEYS[6] and added by the seed, which may count it twice
 * (if the ledger read already shows it) but never misses it.
 * Returns {windowTokens, windowStartMs, dayTokens, monthMicros} (-1 for a counter not seeded),
 * or {-1, -1, -1, -1} when nothing was counted.
 */
export const SETTLE_SCRIPT = `${LIVE_RESERVATIONS}
if ARGV[1] ~= '' then redis.call('HDEL', KEYS[4], ARGV[1]) end
if redis.call('EXISTS', KEYS[5]) == 0 then
  redis.call('HINCRBY', KEYS[6], 'tokens', tonumber(ARGV[2]))
  redis.call('HINCRBY', KEYS[6], 'micros', tonumber(ARGV[3]))
  redis.call('EXPIRE', KEYS[6], tonumber(ARGV[8]))
  return {-1, -1, -1, -1}
end
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[8]))
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

/**
 * Seeds a user's counters from MongoDB: the plan (kept unless the stored one is newer), and
 * the day, month and window counters where they are missing (a counter that exists already
 * counts usage the ledger may not show yet). After a loss of Redis's data, usage settled in
 * the meantime (KEYS[6]) is added, and the calls this process still has in flight are held
 * again (ARGV 17..: reservation id, "tokens:micros:expiresAtMs" pairs).
 * ARGV: tier, rolling, daily, monthlyMicros, failMode, version, freshUntilMs, planTtlSeconds,
 * dayTokens, monthMicros, windowTokens, windowStartMs (-1 = none), windowMs, dayTtlSeconds, monthTtlSeconds, now, ...
 */
export const SEED_SCRIPT = `
local known = tonumber(redis.call('HGET', KEYS[5], 'v') or '-1')
local seeded = redis.call('EXISTS', KEYS[5]) == 1
if tonumber(ARGV[6]) >= known then
  redis.call('HSET', KEYS[5], 'tier', ARGV[1], 'r', ARGV[2], 'd', ARGV[3], 'm', ARGV[4], 'f', ARGV[5], 'v', ARGV[6], 'fresh', ARGV[7])
end
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[8]))
local now = tonumber(ARGV[16])
local extra_tokens, extra_micros = 0, 0
if not seeded then
  extra_tokens = tonumber(redis.call('HGET', KEYS[6], 'tokens') or '0')
  extra_micros = tonumber(redis.call('HGET', KEYS[6], 'micros') or '0')
  redis.call('DEL', KEYS[6])
  for i = 17, #ARGV, 2 do
    redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 1])
  end
  if #ARGV >= 17 then redis.call('PEXPIRE', KEYS[4], 3600000) end
end
redis.call('SET', KEYS[2], tonumber(ARGV[9]) + extra_tokens, 'EX', tonumber(ARGV[14]), 'NX')
redis.call('SET', KEYS[3], tonumber(ARGV[10]) + extra_micros, 'EX', tonumber(ARGV[15]), 'NX')
local start = tonumber(ARGV[12])
if not seeded and redis.call('EXISTS', KEYS[1]) == 0 and (start >= 0 or extra_tokens > 0) then
  if start < 0 then start = now end
  redis.call('HSET', KEYS[1], 'tokens', tonumber(ARGV[11]) + extra_tokens, 'start', start)
  redis.call('PEXPIRE', KEYS[1], math.max(1, start + tonumber(ARGV[13]) - now))
end
return 1
`;

/**
 * Replaces the plan of a seeded user (an admin change, or a refresh of a stale plan) unless a
 * newer version is held; a user not seeded is left alone (the next reservation seeds it all).
 * ARGV: tier, rolling, daily, monthlyMicros, failMode, version, freshUntilMs.
 */
export const PLAN_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if tonumber(ARGV[6]) < tonumber(redis.call('HGET', KEYS[1], 'v') or '-1') then return 0 end
redis.call('HSET', KEYS[1], 'tier', ARGV[1], 'r', ARGV[2], 'd', ARGV[3], 'm', ARGV[4], 'f', ARGV[5], 'v', ARGV[6], 'fresh', ARGV[7])
return 1
`;

/**
 * ARGV: now, windowMs. Returns {windowTokens, windowStartMs (-1 when no live window), dayTokens,
 * monthMicros (-1 when not seeded), planFields...} with planFields as in RESERVE_SCRIPT, or
 * fewer fields when the plan is not held in Redis.
 */
export const STATE_SCRIPT = `${LIVE_RESERVATIONS}
local tokens, start = window_tokens(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
local day = tonumber(redis.call('GET', KEYS[2]) or '-1')
local month = tonumber(redis.call('GET', KEYS[3]) or '-1')
local plan = redis.call('HMGET', KEYS[5], 'tier', 'r', 'd', 'm', 'f')
if not plan[1] then return {tokens, start, day, month} end
return {tokens, start, day, month, plan[1], tonumber(plan[2]), tonumber(plan[3]), tonumber(plan[4]), plan[5]}
`;
