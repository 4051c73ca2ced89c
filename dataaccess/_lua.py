"""Lua scripts used by the cache (each runs atomically on the Redis primary).

Key layout per cached item: ``V`` the value, ``L`` its lease (fill token), ``M`` the
"recently invalidated" marker. All three live in the same (non-clustered) keyspace.
"""

from __future__ import annotations

__all__ = ["COMPARE_DELETE", "FILL", "FILL_MANY", "GET_OR_LEASE", "GET_OR_LEASE_MANY", "INVALIDATE"]

# KEYS: V, L, M.  ARGV: token, lease_ms.
# Returns {1, value} hit | {2} lease granted to token | {0} lease held by someone else
#       | {3} recently invalidated: load from the source, do not fill.
GET_OR_LEASE = """
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('EXISTS', KEYS[3]) == 1 then return {3} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {2} end
return {0}
"""

# KEYS: V1, L1, M1, V2, L2, M2, ...  ARGV: token, lease_ms.
# GET_OR_LEASE for many items in one round trip (the batched miss path of get_many); every lease
# granted here carries the same token. Returns one entry per item, as GET_OR_LEASE.
GET_OR_LEASE_MANY = """
local out = {}
for i = 1, #KEYS, 3 do
  local v = redis.call('GET', KEYS[i])
  if v then
    out[#out + 1] = {1, v}
  elseif redis.call('EXISTS', KEYS[i + 2]) == 1 then
    out[#out + 1] = {3}
  elseif redis.call('SET', KEYS[i + 1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    out[#out + 1] = {2}
  else
    out[#out + 1] = {0}
  end
end
return out
"""

# KEYS: V, L, M.  ARGV: token, payload, ttl_ms.
# Compare-and-set: write V only while L still holds our token (an invalidate deletes L, so a
# fill that raced a writer is rejected). Returns 1 filled | 0 lease lost | -1 recently invalidated.
FILL = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# KEYS: V1, L1, M1, V2, L2, M2, ...  ARGV: token, payload1, ttl_ms1, payload2, ttl_ms2, ...
# FILL for many items leased by GET_OR_LEASE_MANY with ``token``. An empty payload only releases
# the item's lease (nothing to cache). Returns per item: 1 filled | 0 lease lost | -1 recently
# invalidated | 2 lease released.
FILL_MANY = """
local out = {}
for i = 1, #KEYS, 3 do
  local n = (i - 1) / 3
  local payload, ttl = ARGV[2 + 2 * n], ARGV[3 + 2 * n]
  if redis.call('GET', KEYS[i + 1]) ~= ARGV[1] then
    out[#out + 1] = 0
  else
    redis.call('DEL', KEYS[i + 1])
    if payload == '' then
      out[#out + 1] = 2
    elseif redis.call('EXISTS', KEYS[i + 2]) == 1 then
      out[#out + 1] = -1
    else
      redis.call('SET', KEYS[i], payload, 'PX', ttl)
      out[#out + 1] = 1
    end
  end
end
return out
"""

# KEYS: V1, L1, M1, V2, L2, M2, ...  ARGV: marker_ms (0 = no marker).
# Deletes values and kills outstanding leases in one step; optionally leaves a short marker.
INVALIDATE = """
local marker_ms = tonumber(ARGV[1])
for i = 1, #KEYS, 3 do
  redis.call('DEL', KEYS[i], KEYS[i + 1])
  if marker_ms > 0 then redis.call('SET', KEYS[i + 2], '1', 'PX', marker_ms) end
end
return #KEYS / 3
"""

# KEYS: K.  ARGV: expected.  Delete K only if it still holds ``expected`` (lease release,
# removal of a corrupt entry without clobbering a fresh fill). Returns 1 if deleted.
COMPARE_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
