-- vertexops.log: the log lines of a call (docs/contract.md, "Logs"): one logfmt line per attempt,
-- per retry, per token fetch, per call (debug) and per failing hook, with fixed keys:
--   vertexops attempt call=cancel method=POST url=https://... attempt=1 status=200 tag= ms=12 transport=curl
-- Where they go: the `log` option (a function(level, line)), else, when VERTEXOPS_LOG names a
-- level (debug, info, warn, error), stderr -- or ngx.log inside nginx. The level (VERTEXOPS_LOG, else
-- "info") filters both. Lines never hold a secret: no header values, `key=` in URLs as key=REDACTED.
local os_getenv, tostring, type, rawget = os.getenv, tostring, type, rawget
local table_concat = table.concat

local M = {}

local RANK = { debug = 1, info = 2, warn = 3, error = 4 }
M.RANK = RANK

--- enabled(threshold, level) -> whether a line of level passes threshold.
function M.enabled(threshold, level)
  return RANK[level] >= RANK[threshold]
end

-- A logfmt value: bare when it has no space, quote, '=' or control byte (an empty one too: `tag=`);
-- quoted otherwise.
local function value(v)
  v = tostring(v)
  if not v:find('[%s"=\\%c]') then return v end
  return '"' .. v:gsub('[\\"]', "\\%0"):gsub("%c", function(c) return string.format("\\x%02x", c:byte()) end) .. '"'
end
M.value = value

--- line(event, kv) -> "vertexops <event> k=v ..." (kv: a flat list k1, v1, k2, v2, ...; order kept).
function M.line(event, kv)
  local parts = { "vertexops", event }
  for i = 1, #kv, 2 do parts[#parts + 1] = kv[i] .. "=" .. value(kv[i + 1]) end
  return table_concat(parts, " ")
end

-- stderr, or ngx.log inside nginx (its error log; a level's nginx constant).
local NGX_LEVEL = { debug = "DEBUG", info = "INFO", warn = "WARN", error = "ERR" }
local function default_sink(level, line)
  local ngx = rawget(_G, "ngx")
  if ngx and type(ngx.log) == "function" and ngx.get_phase then
    ngx.log(ngx[NGX_LEVEL[level]], line)
  else
    io.stderr:write(line, "\n")
  end
end
M.default_sink = default_sink

--- sink(o) -> the function lines of options o go to and the level they pass at (nil: no log).
---@param o vertexops.Options
---@return fun(level: string, line: string)?
---@return string? level
function M.sink(o)
  local env = os_getenv("VERTEXOPS_LOG")
  if env == "" then env = nil end
  if env and not RANK[env] then
    require("vertexops.errors").raise("ValueError", "environment variable VERTEXOPS_LOG must be \"debug\", \"info\", "
      .. "\"warn\" or \"error\", got \"" .. env:sub(1, 40) .. "\"")
  end
  if type(o.log) == "function" then return o.log, env or "info" end
  if env then return default_sink, env end
  return nil
end

return M
