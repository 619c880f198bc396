-- The OpenResty gateway under load, shared by its spec (spec/09_hosts_openresty_load_spec.lua: what the
-- load does) and its benchmark (bench/openresty.lua: how fast): bench/loadgen.c sends N concurrent
-- requests to the gateway's /cancel (a connection each) while pinging its /status every few ms.
local fake = require "support.fake"

local M = {}

local repo = fake.spec_dir:gsub("/spec$", "")
M.LOADGEN = repo .. "/build/bench/loadgen"

--- run(app, created, n, query) -> the summary of one load: n requests to /cancel (the names of
--- server:create_many's `created`, in order) with `query` appended, and pings every 10 ms.
--- Fields: statuses (HTTP status -> count), cancelled, failed (transport failures), pings (ms, in
--- order), ping_max (ms), ping_failed (pings answered other than 200), wall (s).
function M.run(app, created, n, query)
  assert(os.execute("make -s -C " .. repo .. " build/bench/loadgen >/dev/null") == true
    or io.open(M.LOADGEN) ~= nil, "bench/loadgen.c does not build")
  local prefix = created.first:match("^(.*/operations/)%d+$")
  local first = tonumber(created.first:match("(%d+)$"))
  local cmd = ("ulimit -n 16384 2>/dev/null; %s '%s' %d %d '%s' '%s' 10"):format(M.LOADGEN,
    app:url("/cancel?name=" .. prefix), first, n, query or "", app:url("/status"))
  local p = assert(io.popen(cmd))
  local out = { statuses = {}, cancelled = 0, failed = 0, pings = {}, ping_max = 0, ping_failed = 0 }
  for line in p:lines() do
    local kind, a, b, c, d = line:match("^(%u) (%S+) ?(%S*) ?(%S*) ?(%S*)")
    if kind == "R" then
      out.statuses[a] = (out.statuses[a] or 0) + 1
      if c == "1" then out.cancelled = out.cancelled + 1 end
      if d ~= "0" then out.failed = out.failed + 1 end
    elseif kind == "P" then
      local ms = tonumber(a)
      out.pings[#out.pings + 1] = ms
      if b ~= "200" then out.ping_failed = out.ping_failed + 1 end
      if ms > out.ping_max then out.ping_max = ms end
    elseif kind == "W" then
      out.wall = tonumber(a) / 1000
    end
  end
  p:close()
  return out
end

--- percentile(list, p) -> the p-th percentile (0 < p <= 100) of a list of numbers (nearest rank).
function M.percentile(list, p)
  local sorted = {}
  for i, v in ipairs(list) do sorted[i] = v end
  table.sort(sorted)
  if #sorted == 0 then return nil end
  return sorted[math.max(1, math.ceil(#sorted * p / 100))]
end

--- summary(out) -> one line describing a load's outcome, for assertion messages and reports.
function M.summary(out)
  local parts = {}
  for k, v in pairs(out.statuses) do parts[#parts + 1] = k .. ": " .. v end
  table.sort(parts)
  return ("statuses {%s}, cancelled %d, transport failures %d, wall %.2f s, %d pings, p50 %.1f ms, "
    .. "p99 %.1f ms, slowest %.1f ms"):format(table.concat(parts, ", "), out.cancelled, out.failed,
    out.wall or -1, #out.pings, M.percentile(out.pings, 50) or -1, M.percentile(out.pings, 99) or -1, out.ping_max)
end

return M
