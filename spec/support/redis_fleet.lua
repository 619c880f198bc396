-- A fleet of plain-Lua processes sharing option rate through Redis, for
-- spec/10_fleet_rate_redis_spec.lua and bench/fleet.lua's shared rows: each child runs cancel_many
-- of its own operations (or, with `duration`, gets one operation of its own until that many seconds
-- have passed) against the fake with the option rate given, and writes a JSON summary.
--   local fleet = require "support.redis_fleet"
--   local run = fleet.start(server, { children = 4, per_child = 120, rate = {...} })
--   run:wait(limit) -> summaries (one per child: {ok, failed = {tag = count}, late = seconds})
--   run.names[i]: child i's operation names; run:stderr(i): what child i wrote to stderr
-- The children start their work together, at run.at (the wall clock, socket.gettime(): the same in
-- every process), as spec/support/rate_worker.lua's nginx workers do: spawned one after another,
-- each loading vertexops first, they would otherwise start up to a few tenths of a second apart
-- on a loaded machine (the last ones missing part of the first window's burst). A child that came
-- up after run.at says by how much in its summary (late, seconds; 0 when on time).
local cjson = require "cjson"
local fake = require "support.fake"
local socket = require "socket"

local M = {}
local Run = {}
Run.__index = Run

local CHILD = [[
local cjson = require "cjson"
local vertexops = require "vertexops"
local job = %s
local o = { endpoint = job.endpoint, ca_file = job.ca_file, token = "test-token", timeout = job.timeout,
            rate = job.rate }
local out = { ok = 0, failed = {} }
local socket = require "socket"
out.late = math.max(0, socket.gettime() - job.at)
if out.late == 0 then socket.sleep(job.at - socket.gettime()) end -- every child starts then
local function count(ok, err)
  if ok then out.ok = out.ok + 1 else
    local tag = type(err) == "table" and err.tags and err.tags[1] or tostring(err)
    out.failed[tag] = (out.failed[tag] or 0) + 1
  end
end
if job.duration then
  local core = require "vertexops.core"
  local c = vertexops.client(o)
  local stop = core.clock() + job.duration
  while core.clock() < stop - 0.01 do
    count(pcall(c.get, c, job.names[1], nil, { timeout = stop - core.clock() }))
  end
else
  for _, r in ipairs(vertexops.cancel_many(job.names, nil, o)) do count(r.ok, r.error) end
end
local f = assert(io.open(job.out .. ".tmp", "w"))
f:write(cjson.encode(out))
f:close()
os.rename(job.out .. ".tmp", job.out)
]]

-- A Lua table constructor of v (strings, numbers with integers kept, booleans, tables).
local function literal(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "number" then
    if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
    return string.format("%.17g", v)
  end
  if type(v) ~= "table" then return tostring(v) end
  local out = {}
  for k, x in pairs(v) do
    out[#out + 1] = (type(k) == "number" and "[" .. k .. "]" or "[" .. string.format("%q", k) .. "]")
      .. " = " .. literal(x)
  end
  return "{" .. table.concat(out, ", ") .. "}"
end

--- start(server, job): job.children processes, each with job.per_child operations of its own (or,
--- with job.duration, one operation and that many seconds), option rate job.rate.
function M.start(server, job)
  local dir = fake.tmpdir()
  local self = setmetatable({ dir = dir, names = {}, pids = {}, n = job.children }, Run)
  local lua = os.getenv("VERTEXOPS_LUA") or "lua5.4"
  for i = 1, job.children do
    local names = {}
    for j = 1, job.duration and 1 or job.per_child do names[j] = server:create({}).name end
    self.names[i] = names
  end
  -- the common start: time to spawn each child and load vertexops in it (about 0.05 s each idle)
  self.at = socket.gettime() + 0.5 + 0.15 * job.children
  for i = 1, job.children do
    local names = self.names[i]
    local code = CHILD:format(literal {
      endpoint = server.endpoint, ca_file = server.ca_file, rate = job.rate, names = names,
      out = dir .. "/out" .. i, duration = job.duration, timeout = job.timeout or 300, at = self.at,
    })
    local f = assert(io.open(dir .. "/child" .. i .. ".lua", "w"))
    f:write(code)
    f:close()
    local p = io.popen(("%s %s/child%d.lua >%s/stdout%d 2>%s/stderr%d & echo $!"):format(lua, dir, i, dir, i, dir, i))
    self.pids[i] = tonumber(p:read("*l"))
    p:close()
  end
  return self
end

--- Waits until every child wrote its summary (limit seconds at most: then an error, the children
--- killed); returns the summaries.
function Run:wait(limit)
  local t0 = socket.gettime()
  local out = {}
  while true do
    local all = true
    for i = 1, self.n do
      if not out[i] then
        local s = fake.read(self.dir .. "/out" .. i)
        if s then out[i] = cjson.decode(s) else all = false end
      end
    end
    if all then return out, socket.gettime() - t0 end
    if socket.gettime() - t0 > limit then
      self:kill()
      error(("the fleet did not finish within %g s; stderr of child 1: %s"):format(limit, self:stderr(1)))
    end
    socket.sleep(0.1)
  end
end

function Run:stderr(i) return fake.read(self.dir .. "/stderr" .. i) or "" end

function Run:kill()
  for _, pid in ipairs(self.pids) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
end

--- The fake's log split per child: counts[i] the requests of child i that were accepted, and the
--- child of each accepted entry (by operation name).
function M.child_of(run)
  local by = {}
  for i, names in ipairs(run.names) do
    for _, n in ipairs(names) do by[n] = i end
  end
  return by
end

return M
