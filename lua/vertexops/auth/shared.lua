-- vertexops.auth.shared: tokens shared by nginx workers (option shared_dict, a lua_shared_dict):
-- one token fetch per expiry for all of them.
--
-- The dict holds, per credential (key: its kind, identity, scopes, self_signed_jwt mode, universe and a
-- digest of the key file's content, each part length-prefixed; no secret in a key), the token with
-- its expiry (seconds since the epoch, ngx.now()'s clock) as "expiry token", and a lock (the key ..
-- " lock"). A token within REFRESH_EARLY of its expiry counts as absent. The worker that adds the
-- lock (add: one wins) fetches and stores; the others poll the dict until the token is there, the
-- lock is gone (the fetch ended without a token: they try to take it) or the lock wait passed (they
-- fetch on their own). The lock's value names its holder (worker pid and a serial: only the holder
-- deletes it) and it lives as long as its fetch may (the fetch's own deadline): a fetch cut short
-- (its worker died, or nginx killed its light thread) frees it by then. Tokens never go to a log.
local common = require "vertexops.auth.common"
local hostmod = require "vertexops.host"

local error, pcall, rawget, tonumber, tostring, type = error, pcall, rawget, tonumber, tostring, type
local math_max, math_min, string_format = math.max, math.min, string.format
local _G = _G
local REFRESH_EARLY, TOKEN_TIMEOUT = common.REFRESH_EARLY, common.TOKEN_TIMEOUT
local raise = require("vertexops.errors").raise

local _M = {}

_M.LOCK_WAIT = 10 -- seconds a worker waits for another's fetch before fetching itself

-- length-prefixed parts: no two different lists of parts make the same key
local function lp(s) return #s .. ":" .. s end

--- The dict key of a credential: kind, identity and digest (its type's identity(src)), scope (a
--- string), self_signed (self_signed_jwt mode), universe (the universe domain its token is for).
function _M.key(kind, identity, digest, scope, self_signed, universe)
  return "vertexops token " .. lp(kind) .. " " .. lp(identity) .. " " .. lp(scope) .. " "
    .. lp(self_signed and "self_signed_jwt" or "exchange") .. " " .. lp(universe or "") .. " " .. lp(digest)
end

--- Deletes the token refused from the dict, unless another worker already replaced it.
function _M.forget(dict, key, refused)
  local v = dict:get(key)
  if type(v) == "string" and v:sub(-#refused - 1) == " " .. refused then dict:delete(key) end
end

local lock_serial = 0

--- The token of key in the lua_shared_dict dict_name, shared with the other workers.
--- t: deadline (the call's, a vertexops.deadline), lock_wait (seconds),
--- fetch() -> ok, token|err, lifetime (never raises), storable(lifetime) -> boolean.
--- Returns token, expiry (ngx.now()'s clock), dict: found in the dict, or fetched and stored;
--- token alone: fetched here, not storable (it serves this call only); nothing: not in nginx, or
--- a phase that cannot wait, or the wait is over: the caller fetches on its own. Raises a fetch's
--- error, and AuthError when the dict does not exist or a dict operation fails.
function _M.token(dict_name, key, t)
  local ngx = hostmod.nginx_phase()
  local shared = rawget(_G, "ngx") and rawget(_G, "ngx").shared
  local dict = shared and shared[dict_name]
  if not dict then
    if rawget(_G, "ngx") then
      raise("AuthError", string_format("option shared_dict names '%s', which is no lua_shared_dict of this nginx", dict_name))
    end
    return nil -- not in nginx: the provider's own cache only
  end
  local now = rawget(_G, "ngx").now
  -- a dict operation that fails (raising a plain string, or returning an error: "no memory", "key
  -- too long") is an AuthError naming the dict; add's "exists" is an answer, not a failure
  local function dict_call(what, ...)
    local ok, a, b = pcall(dict[what], dict, ...)
    if ok and (a or (what == "get" and b == nil) or (what == "add" and b == "exists")) then return a, b end
    raise("AuthError", string_format("shared_dict '%s' failed to %s: %s", dict_name, what, tostring(ok and b or a)))
  end
  local function cached()
    local v = dict_call("get", key)
    if type(v) ~= "string" then return nil end
    local exp, token = v:match("^(%d+%.?%d*) (.+)$")
    exp = tonumber(exp)
    if not exp or now() >= exp - REFRESH_EARLY then return nil end
    return token, exp, dict
  end
  local token, exp = cached()
  if token then return token, exp, dict end
  if not ngx then return nil end -- a phase that cannot wait (init_worker, log, ...): fetch here
  local lock = key .. " lock"
  local deadline = t.deadline
  local waited_until = math_min(now() + t.lock_wait, now() + deadline:left())
  lock_serial = lock_serial + 1
  local mine = string_format("%s %d", tostring(ngx.worker and ngx.worker.pid and ngx.worker.pid() or 0), lock_serial)
  local delay = 0.002
  while true do
    local bound = math_min(TOKEN_TIMEOUT, deadline:left())
    if bound <= 0 then return nil end -- the call's time is up: the fetch raises TimeoutError
    -- (at least 1 ms: the dict counts whole milliseconds, and 0 would mean "never expires")
    if dict_call("add", lock, mine, math_max(bound, 0.001)) then break end -- this worker fetches
    token, exp = cached()
    if token then return token, exp, dict end
    if now() >= waited_until then return nil end -- waited long enough: fetch on our own
    ngx.sleep(delay)
    ngx.update_time()
    delay = math_min(delay * 2, 0.05)
  end
  -- the lock is ours until the fetch ends (the holder frees it if this thread is abandoned)
  local function unlock()
    local ok, v = pcall(dict.get, dict, lock)
    if ok and v == mine then pcall(dict.delete, dict, lock) end
  end
  local holder = hostmod.hold(unlock)
  -- the lock's work: another worker may have stored a token between our look and our add
  -- (a pcall the fetch may yield through under client:start(), PUC Lua 5.1 included)
  local ok, a, b, c = hostmod.pcall(function()
    local found, found_exp = cached()
    if found then return found, found_exp, dict end
    local fetched, fetched_or_err, lifetime = t.fetch()
    if not fetched then error(fetched_or_err, 0) end
    if not t.storable(lifetime) then return fetched_or_err end -- this call only
    local expiry = now() + lifetime
    -- kept in the dict until it expires (nginx drops it then, or earlier when the dict is full)
    dict_call("set", key, string_format("%.3f %s", expiry, fetched_or_err), lifetime)
    return fetched_or_err, expiry, dict
  end)
  hostmod.unhold(holder)
  unlock()
  if not ok then error(a, 0) end
  return a, b, c
end

return _M
