package redisquota

import (
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The decisions as the admit script returns them.
const (
	scriptAdmitted   = 1
	scriptReadmitted = 2
	scriptDuplicate  = 3
	scriptExhausted  = 4
	// scriptUnseeded: the month hash was never seeded from the database; nothing changed.
	scriptUnseeded = 5
)

// tagUnit is where an entry's tag starts: above every offset*2+state of a bucket.
const tagUnit = 1 << 21

// maxTag bounds the tags so that an entry stays below 2^23, a listpack's
// 24-bit integer: a tag costs no byte of Redis memory. Two attempts of one key
// in one millisecond are what it tells apart, besides a readmission (tag 0).
const maxTag = 3

// claimedTag replaces an admission's tag once another replica's forwarded
// copy counts on its unit, so that no undo takes that unit back.
const claimedTag = maxTag + 1

// unitlessTag marks an entry that a Settle wrote for a key Redis held no
// admission of (its unit is still on a replica): such an entry, and its
// readmissions, do not show that Redis counted the key.
const unitlessTag = claimedTag + 1

// The seeding modes of an admission (the admit script's ARGV[8]).
const (
	// seedOff: no database to seed from (tests, tools).
	seedOff = '0'
	// seedCheck: answer scriptUnseeded when the month hash was not seeded.
	seedCheck = '1'
	// seedSkip: the database is unreachable; admit anyway and mark the hash,
	// so the later seed adds the archived count to what was counted meanwhile.
	seedSkip = '2'
)

// admitScript decides one notification in one round trip.
//
// KEYS[1] is the workspace's month hash; KEYS[2..] are its dedupe buckets,
// newest (the bucket of at) first, and absent without a dedupe key.
// ARGV: the limit (negative: unlimited), the day's "sent" field, the month
// hash's TTL (ms), the dedupe key, at's offset in its bucket (ms), the
// bucket's TTL (ms), the version (ms) of the caller's limit, the seeding
// mode, the attempt's tag. The month hash's field g marks it seeded from the database, n marks
// units counted before the seed; a hash with units and neither predates
// seeding and is complete. A limit
// published into the month hash (fields V, L) with a newer version wins over
// the caller's. A bucket entry is offset*2 + state, state 0 for
// delivered and 1 for counted but undelivered; its age follows from which
// bucket holds it, so the window is exact to the millisecond.
var admitScript = redis.NewScript(withConstants(`
local month, key = KEYS[1], ARGV[4]
if ARGV[8] ~= '0' then
  local m = redis.call('HMGET', month, 'g', 'u', 'n')
  if not m[1] then
    if m[2] and not m[3] then
      redis.call('HSET', month, 'g', 1)
    elseif ARGV[8] == '1' then
      return {$unseeded, 0}
    else
      redis.call('HSET', month, 'n', 1)
    end
  end
end
local off = tonumber(ARGV[5])
for i = 2, #KEYS do
  local v = redis.call('HGET', KEYS[i], key)
  if v then
    v = tonumber(v)
    if off + (i - 2) * $bucket_ms - math.floor((v % $tag_unit) / 2) < $window_ms then
      local used = tonumber(redis.call('HGET', month, 'u') or 0)
      if v % 2 == 0 then
        return {$duplicate, used}
      end
      if i > 2 then
        redis.call('HDEL', KEYS[i], key)
      end
      local keep = 0
      if v >= $unitless * $tag_unit then
        keep = $unitless * $tag_unit
      end
      redis.call('HSET', KEYS[2], key, keep + off * 2)
      redis.call('PEXPIRE', KEYS[2], ARGV[6], 'NX')
      return {$readmitted, used}
    end
    break
  end
end
local used = tonumber(redis.call('HGET', month, 'u') or 0)
local limit = tonumber(ARGV[1])
local published = redis.call('HMGET', month, 'V', 'L')
if published[1] and tonumber(published[1]) > tonumber(ARGV[7]) then
  limit = tonumber(published[2])
end
if limit >= 0 and used >= limit then
  return {$exhausted, used, limit}
end
used = redis.call('HINCRBY', month, 'u', 1)
redis.call('HINCRBY', month, ARGV[2], 1)
if used == 1 then
  redis.call('PEXPIRE', month, ARGV[3], 'NX')
end
if #KEYS > 1 then
  redis.call('HSET', KEYS[2], key, tonumber(ARGV[9]) * $tag_unit + off * 2)
  redis.call('PEXPIRE', KEYS[2], ARGV[6], 'NX')
end
return {$admitted, used, limit}
`))

// countScript records an outcome or an ack, and with a dedupe key marks it
// counted but undelivered in the bucket of at (removing older entries) and
// leaves the outcome's receipt beside it, so a resent outcome counts once.
//
// KEYS[1] is the month hash of at; KEYS[2..] are the dedupe buckets of at,
// newest first, absent without a key. ARGV: the day's field to count ("" for
// none), the month hash's TTL (ms), the dedupe key, at's offset in its bucket
// (ms), the bucket's TTL (ms), the receipt.
var countScript = redis.NewScript(withConstants(`
if ARGV[1] ~= '' and redis.call('HINCRBY', KEYS[1], ARGV[1], 1) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2], 'NX')
end
if #KEYS > 1 then
  local keep = $unitless * $tag_unit
  for i = 2, #KEYS do
    local v = tonumber(redis.call('HGET', KEYS[i], ARGV[3]))
    if v and v < $unitless * $tag_unit then
      keep = 0
    end
    if i > 2 then
      redis.call('HDEL', KEYS[i], ARGV[3])
    end
  end
  redis.call('HSET', KEYS[2], ARGV[3], keep + tonumber(ARGV[4]) * 2 + 1)
  if ARGV[1] ~= '' then
    redis.call('HSET', KEYS[2], ARGV[3] .. 'o', ARGV[6])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[5], 'NX')
end
return 1
`))

// seedScript adds a month's archived counts to its hash, once however many
// replicas race: KEYS[1] is the month hash; ARGV: its TTL (ms), then pairs of
// field and count. Counts made since the loss (field n) stay on top.
var seedScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'g', 1) == 0 then
  return 0
end
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HDEL', KEYS[1], 'n')
redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
return 1
`)

// reconcileScript applies one batch of what a replica did while Redis did
// not answer, at most once: KEYS[1] is the batch's guard, set first, so a
// batch resent after an ambiguous failure is not applied again. Each key's
// parts are idempotent on their own too: undos first, then units, then
// entries, so an admission that seemed to fail but ran is counted once.
//
// KEYS[2..1+M] are month hashes, KEYS[2+M..1+M+B] dedupe buckets. ARGV: the
// guard's TTL (ms), M, B; per month its TTL (ms), n, and n pairs of field and
// increment; per bucket its number and TTL (ms); then a count and the records
// of undos (month index, day field, bucket index, key, entry; a
// readmission's untagged entry becomes undelivered again), units (month
// index, day field, key, bucket number and offset of the admission; one that
// finds the key held claims its entry), entries
// (bucket index, key, entry) and outcomes (month index, day field, bucket
// index, receipt field, receipt), each counted unless its receipt is there.
var reconcileScript = redis.NewScript(withConstants(`
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 0
end
local M, B = tonumber(ARGV[2]), tonumber(ARGV[3])
local a = 4
local monthTTL = {}
for k = 2, M + 1 do
  monthTTL[k] = ARGV[a]
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  for j = 1, n do
    if ARGV[a] == 'u' and redis.call('HEXISTS', KEYS[k], 'g') == 0 then
      redis.call('HSET', KEYS[k], 'n', 1)
    end
    redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])
    a = a + 2
  end
end
local bnum, bttl = {}, {}
for i = 1, B do
  bnum[i], bttl[i] = tonumber(ARGV[a]), ARGV[a + 1]
  a = a + 2
end
local n = tonumber(ARGV[a])
a = a + 1
for j = 1, n do
  local month, day = KEYS[1 + tonumber(ARGV[a])], ARGV[a + 1]
  local bucket, key, entry = KEYS[1 + M + tonumber(ARGV[a + 2])], ARGV[a + 3], tonumber(ARGV[a + 4])
  a = a + 5
  local v = tonumber(redis.call('HGET', bucket, key))
  if v == entry then
    redis.call('HDEL', bucket, key)
    redis.call('HINCRBY', month, 'u', -1)
    redis.call('HINCRBY', month, day, -1)
  elseif v and v % $tag_unit == entry % $tag_unit and (v < $tag_unit or v >= $unitless * $tag_unit) then
    redis.call('HSET', bucket, key, v + 1)
  end
end
n = tonumber(ARGV[a])
a = a + 1
for j = 1, n do
  local month, day, key = KEYS[1 + tonumber(ARGV[a])], ARGV[a + 1], ARGV[a + 2]
  local at = tonumber(ARGV[a + 3]) * $bucket_ms + tonumber(ARGV[a + 4])
  a = a + 5
  local held = false
  for i = 1, B do
    local v = tonumber(redis.call('HGET', KEYS[1 + M + i], key))
    if v and v < $unitless * $tag_unit and math.abs(bnum[i] * $bucket_ms + math.floor((v % $tag_unit) / 2) - at) < $window_ms then
      held = true
      if v >= $tag_unit and v < $claimed * $tag_unit then
        redis.call('HSET', KEYS[1 + M + i], key, $claimed * $tag_unit + v % $tag_unit)
      end
      break
    end
  end
  if not held then
    if redis.call('HEXISTS', month, 'g') == 0 then
      redis.call('HSET', month, 'n', 1)
    end
    redis.call('HINCRBY', month, 'u', 1)
    redis.call('HINCRBY', month, day, 1)
  end
end
n = tonumber(ARGV[a])
a = a + 1
for j = 1, n do
  local i, key, entry = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2]
  redis.call('HSET', KEYS[1 + M + i], key, entry)
  redis.call('PEXPIRE', KEYS[1 + M + i], bttl[i], 'NX')
  a = a + 3
end
n = tonumber(ARGV[a])
a = a + 1
for j = 1, n do
  local month, day, i, receipt, value = KEYS[1 + tonumber(ARGV[a])], ARGV[a + 1], tonumber(ARGV[a + 2]), ARGV[a + 3], ARGV[a + 4]
  local bucket = KEYS[1 + M + i]
  if redis.call('HGET', bucket, receipt) ~= value then
    redis.call('HINCRBY', month, day, 1)
    redis.call('HSET', bucket, receipt, value)
    redis.call('PEXPIRE', bucket, bttl[i], 'NX')
  end
  a = a + 5
end
for k = 2, M + 1 do
  redis.call('PEXPIRE', KEYS[k], monthTTL[k], 'NX')
end
return 1
`))

func withConstants(src string) string {
	return strings.NewReplacer(
		"$bucket_ms", strconv.FormatInt(bucketSpan.Milliseconds(), 10),
		"$window_ms", strconv.FormatInt(window.Milliseconds(), 10),
		"$tag_unit", strconv.FormatInt(tagUnit, 10),
		"$claimed", strconv.Itoa(claimedTag),
		"$unitless", strconv.Itoa(unitlessTag),
		"$admitted", strconv.Itoa(scriptAdmitted),
		"$readmitted", strconv.Itoa(scriptReadmitted),
		"$duplicate", strconv.Itoa(scriptDuplicate),
		"$exhausted", strconv.Itoa(scriptExhausted),
		"$unseeded", strconv.Itoa(scriptUnseeded),
	).Replace(src)
}

// publishScript stores a limit and its version in a month hash unless a
// newer version is there. KEYS[1]: the month hash; ARGV: version (ms),
// limit, the month hash's TTL (ms).
var publishScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'V')
if v and tonumber(v) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', KEYS[1], 'V', ARGV[1], 'L', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3], 'NX')
return 1
`)
