-- vertexops.testing.state: what the fake Vertex service holds (one nginx worker, so one Lua state):
-- operations, the request log, queued faults, tokens, the clock and the settings of /_control/.
-- Every module of the service reads and writes it through this one table; reset() refills it in
-- place, so a module that holds the table always sees the current state.
local ngx = ngx
local M = {}

local function fresh()
  return {
    -- operations by name; each list parent's operations in creation order (model.lua)
    ops = {}, lists = {}, seq = 0,
    jobs = {}, job_lists = {}, -- jobs by name; each collection's in creation order (jobs.lua)
    log = {}, faults = {},
    -- bearer tokens accepted; tokens issued by the token endpoints (tokens.lua)
    tokens = { ["test-token"] = true }, issued = 0,
    -- API keys accepted in x-goog-api-key (express mode; tokens.lua); the log never shows one
    api_keys = { ["test-api-key"] = true },
    virtual = nil, -- the virtual clock (nil: real time)
    -- benchmarks: nolog (count requests and connections only), hold (seconds every
    -- Vertex answer waits, as a real service's processing time would)
    nolog = false, hold = nil, count = 0, conns = {}, nconns = 0,
    -- what the caps count (check.LIMITS): operations made, bytes of request bodies in the log,
    -- entries not logged past LIMITS.log_entries, bytes of queued faults
    made = 0, log_bytes = 0, log_dropped = 0, fault_bytes = 0,
    -- the request quota (quota.lua: nil when off), and the requests it refused since the log's clear
    quota = nil, exceeded = 0,
    -- what the token endpoint accepts (set with /_control/oauth)
    oauth = { client_id = "test-client", client_secret = "test-secret", refresh_token = "test-refresh",
              expires_in = 3600 },
    -- config{project_number, project_id} (model.lua: numbered)
    project_number = nil, project_id = nil,
  }
end

--- Back to a fresh server: every field of the state replaced, the functions of this module kept.
--- The public keys the server knows (testing.make_key_file's, by client_email then key id: jwt.lua)
--- are kept: they are the fake's own, as Google's public key certificates outlive any test.
function M.reset()
  local keys = M.keys or {}
  for k, v in pairs(M) do
    if type(v) ~= "function" then M[k] = nil end
  end
  for k, v in pairs(fresh()) do M[k] = v end
  M.keys = keys
end

--- The server's clock: real time, or a virtual clock that only control requests move (specs that
--- simulate minutes of waiting without sleeping through them).
function M.now()
  return M.virtual or ngx.now()
end

--- The settings of one part of the fake (sts.lua, aws.lua): a function returning M[key], made by
--- defaults() on the first use after a reset (reset() drops it: back to defaults).
function M.settings(key, defaults)
  return function()
    if not M[key] then M[key] = defaults() end
    return M[key]
  end
end

M.reset()
return M
