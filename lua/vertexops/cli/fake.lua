-- vertexops.cli.fake: `vertexops fake` -- a fake Vertex server (vertexops.testing) in the
-- foreground: prints where it is, serves until SIGINT, SIGTERM or SIGHUP, stops it.
local render = require "vertexops.cli.render"

local M = {}

-- The watchdog for when this process ends without stopping the server (SIGKILL, a crash): a
-- background shell that polls this process (the $PPID of the shell os.execute starts) and then
-- stops nginx and removes the server's directory. It ignores the signals this process takes.
local WATCHDOG = [[
dir=%s
owner=$PPID
(
trap '' INT TERM HUP
while kill -0 "$owner" 2>/dev/null; do sleep 0.2; done
pid=$(cat "$dir/nginx.pid" 2>/dev/null)
if [ -n "$pid" ]; then
  kill -TERM "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
  kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$dir"
) </dev/null >/dev/null 2>&1 &
]]

--- watch(server): serves until SIGINT (Ctrl-C or kill -INT), SIGTERM or SIGHUP reaches this
--- process (core.wait_signal, csrc/sys.c: a Lua program cannot catch a signal itself); run's
--- server:stop() then stops nginx and removes the directory. Returns the signal's name.
function M.watch(server)
  os.execute(WATCHDOG:format("'" .. server.dir .. "'"))
  return require("vertexops.core").wait_signal()
end

--- info(server) -> what a client or testing.attach needs: endpoint, http_endpoint, ca_file,
--- control_url, token, dir, nginx_endpoint (the endpoint by host name: inside nginx an https
--- endpoint by IP address is refused, as cosockets cannot verify a certificate for one), and
--- control_token when the server has one.
function M.info(server, token)
  return { endpoint = server.endpoint, http_endpoint = server.http_endpoint, ca_file = server.ca_file,
           control_url = server.control_url, token = token, dir = server.dir,
           nginx_endpoint = (server.endpoint:gsub("^https://127%.0%.0%.1:", "https://localhost:")),
           control_token = server.control_token }
end

-- The text for a shell: the fields, then a line of exports.
local function text(info)
  local lines = {
    ("endpoint       %s"):format(info.endpoint),
    ("http_endpoint  %s"):format(info.http_endpoint),
    ("ca_file        %s"):format(info.ca_file),
    ("control        %s"):format(info.control_url),
    ("token          %s"):format(info.token),
  }
  if info.control_token then lines[#lines + 1] = ("control_token  %s"):format(info.control_token) end
  if info.key_file then lines[#lines + 1] = ("key_file       %s"):format(info.key_file) end
  lines[#lines + 1] = ("export VERTEXOPS_ENDPOINT=%s VERTEXOPS_CA_FILE=%s GOOGLE_OAUTH_ACCESS_TOKEN=%s")
    :format(info.endpoint, info.ca_file, info.token)
  -- cosockets need a host name in the endpoint and read the CA from nginx.conf, not ca_file
  lines[#lines + 1] = ("# inside nginx: VERTEXOPS_ENDPOINT=%s and, in nginx.conf's http block:")
    :format(info.nginx_endpoint)
  lines[#lines + 1] = ("#   lua_ssl_trusted_certificate %s;"):format(info.ca_file)
  if info.key_file then
    lines[#lines + 1] = ("# the key file instead of a token: GOOGLE_APPLICATION_CREDENTIALS=%s, without "
      .. "GOOGLE_OAUTH_ACCESS_TOKEN"):format(info.key_file)
  end
  return table.concat(lines, "\n")
end

--- run(inv, ctx) -> exit status of `vertexops fake` (0 once stopped).
function M.run(inv, ctx)
  local testing = require "vertexops.testing"
  local ok, server = pcall(testing.start, ctx:options_for(inv))
  if not ok then return ctx:failure(server) end
  -- from before it says it is ready, a stopping signal waits for watch (not lost, and not ending
  -- the process before server:stop); not in-process (ctx.foreground: a spec's own serve)
  if not ctx.foreground then require("vertexops.core").hold_signals() end
  local done, err = pcall(function()
    local info = M.info(server, testing.TOKEN)
    if inv.flags.key_file then info.key_file = testing.make_key_file(inv.flags.key_file, server) end
    ctx:print(inv.flags.json and render.json(info) or text(info))
    ctx.stdout:flush()
    if not inv.flags.quiet then ctx:note("vertexops fake: running; Ctrl-C, SIGINT, SIGTERM or SIGHUP stops it") end
    local serve = ctx.foreground or M.watch
    serve(server)
  end)
  server:stop()
  if not done then error(err, 0) end
  return 0
end

return M
