-- vertexops.proxy: which HTTPS proxy an exchange goes through -- the one decision both transports
-- use (libcurl: csrc/handle.c gets the answer in req.proxy; cosockets: transport/cosocket.lua
-- tunnels through it with CONNECT).
--
-- A proxy is an HTTP proxy that tunnels with CONNECT: `http://[user:password@]host[:port][/]`
-- (no scheme: http://; no port: 80, as Go's and Python's clients; user and password
-- percent-decoded, sent as Proxy-Authorization: Basic). An https:// proxy (TLS to the proxy itself),
-- socks and any other scheme are a ValueError naming where the URL came from. Only https:// targets
-- go through a proxy: a plain http:// request (loopback endpoints, the metadata server) never does,
-- its bearer token would be in the clear for the proxy to read.
--
-- no_proxy: a comma-separated list, entries trimmed and compared without case:
--   *               every host
--   .example.com    the subdomains of example.com (a.example.com), not example.com itself
--   example.com     example.com and its subdomains (as curl, Go and Python read a bare name)
--   10.1.2.3, [::1] that address exactly (no CIDR ranges)
--   host:port       as above, for that port only
-- The credentials of a proxy never appear in an error, a log line, a pool name or a shown URL:
-- `shown` is `http://host:port`.
local errors = require "vertexops.errors"

local string_byte, string_char, string_format, tonumber, type = string.byte, string.char, string.format,
  tonumber, type

local M = {}

local function percent_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string_char(tonumber(h, 16)) end))
end

local function bad(what, why)
  -- the value itself is not shown: it may hold a password
  errors.raise("ValueError", string_format("%s must be an HTTP proxy URL http://[user:password@]host[:port] "
    .. "(%s)", what, why))
end

-- A printable ASCII string without space (a user name or password after decoding may hold any
-- such byte; a control byte or CR/LF would break the header).
local function visible(s)
  for i = 1, #s do
    local c = string_byte(s, i)
    if c < 0x20 or c >= 0x7f then return false end
  end
  return true
end

local parsed = {} -- url -> its parse (a proxy URL is parsed once per process)
local nparsed = 0

--- parse(url, what) -> {host, port, authority ("host:port", IPv6 in brackets), user, password,
--- shown ("http://host:port")}; raises ValueError naming `what` (e.g. "option 'proxy'").
---@param url string
---@param what string
---@return table
function M.parse(url, what)
  local p = parsed[url]
  if p then return p end
  if type(url) ~= "string" then errors.raise("TypeError", what .. " must be a string") end
  local scheme, rest = url:match("^(%a[%w+.-]*)://(.*)$")
  if not scheme then
    if url:find("://", 1, true) then bad(what, "bad scheme") end
    rest = url
  elseif scheme:lower() == "https" then
    bad(what, "https:// proxies are not supported: only CONNECT through an http:// proxy; the TLS "
      .. "connection to Google goes inside the tunnel and is verified end to end")
  elseif scheme:lower() ~= "http" then
    bad(what, "scheme " .. scheme:lower() .. ":// is not supported")
  end
  rest = rest:gsub("/$", "")
  if rest:find("[/?#%s\\]") then bad(what, "no path, query or fragment") end
  local userinfo, hostport = rest:match("^(.*)@([^@]*)$")
  if not userinfo then hostport = rest end
  local user, password
  if userinfo then
    local u, pw = userinfo:match("^([^:]*):(.*)$")
    user, password = percent_decode(u or userinfo), percent_decode(pw or "")
    if user == "" or not visible(user) or not visible(password) then
      bad(what, "the user and password must be printable ASCII, the user not empty")
    end
  end
  local host, port
  if hostport:sub(1, 1) == "[" then
    host, port = hostport:match("^%[([%x:.]+)%]:?(%d*)$")
    if host then host = "[" .. host .. "]" end
  else
    host, port = hostport:match("^([%w._-]+):?(%d*)$")
  end
  if not host or (hostport:find(":", #host + 1, true) and port == "") then bad(what, "bad host or port") end
  port = port == "" and 80 or tonumber(port)
  if port < 1 or port > 65535 then bad(what, "the port must be 1 to 65535") end
  p = { host = host:lower(), port = port, user = user, password = password }
  p.authority = p.host .. ":" .. port
  p.shown = "http://" .. p.authority
  if nparsed >= 64 then parsed, nparsed = {}, 0 end
  parsed[url], nparsed = p, nparsed + 1
  return p
end

--- bypass(host, port, no_proxy) -> true when the no_proxy list names host (or host:port).
--- host as in a URL (an IPv6 address in brackets), any case.
---@param host string
---@param port integer
---@param no_proxy? string
---@return boolean
function M.bypass(host, port, no_proxy)
  if not no_proxy or no_proxy == "" then return false end
  host = host:lower()
  local bare = host:match("^%[(.*)%]$") -- an IPv6 address, also named without brackets
  for entry in no_proxy:gmatch("[^,]+") do
    entry = entry:match("^%s*(.-)%s*$"):lower()
    if entry == "*" then return true end
    local name, eport = entry:match("^(.*[^:]):(%d+)$")
    if name and name:sub(1, 1) == "[" and name:sub(-1) ~= "]" then name = nil end -- an IPv6 literal's colons
    if not name or (name:find(":", 1, true) and name:sub(1, 1) ~= "[") then name, eport = entry, nil end
    if name ~= "" and (not eport or tonumber(eport) == port) then
      if name:sub(1, 1) == "." then
        if #host > #name and host:sub(-#name) == name then return true end
      elseif host == name or bare == name or (#host > #name and host:sub(-#name - 1) == "." .. name) then
        return true
      end
    end
  end
  return false
end

--- for_target(o, scheme, host, port) -> the proxy (a parse) an exchange to that target goes
--- through, or nil: https:// only, o.proxy (the option or https_proxy / HTTPS_PROXY:
--- lua/vertexops/options.lua) unless o.no_proxy names the host.
---@param o vertexops.Options
---@param scheme "http"|"https"
---@param host string
---@param port integer
---@return table?
function M.for_target(o, scheme, host, port)
  local url = o.proxy
  if scheme ~= "https" or url == nil or url == "" then return nil end
  if M.bypass(host, port, o.no_proxy) then return nil end
  return M.parse(url, "option 'proxy'") -- checked already (options.copy, options.apply_env): cached
end

--- target(url) -> scheme, host, port of a built request's URL (checked by core.build already).
---@param url string
---@return string scheme
---@return string host
---@return integer port
function M.target(url)
  local scheme, authority = url:match("^(%a+)://([^/]+)")
  local host, port
  if authority:sub(1, 1) == "[" then
    host, port = authority:match("^(%[.-%]):?(%d*)$")
  else
    host, port = authority:match("^([^:]*):?(%d*)$")
  end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  return scheme, host, port
end

return M
