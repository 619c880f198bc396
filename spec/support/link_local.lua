-- Run by spec/07_credentials_link_local_spec.lua inside a network namespace of its own
-- (`unshare -rn`) whose loopback interface also holds AWS's and Azure's metadata addresses,
-- 169.254.169.254 and fd00:ec2::254. A plain nginx listens on port 80 of both and passes every
-- request to the fake's plain-HTTP port, so credential_source URLs naming the real link-local
-- addresses reach the fake through real sockets: what a deployment on AWS or Azure sends, not a
-- loopback stand-in. Each case is one call; the result, with the fake's request log of the call,
-- is printed as one JSON line "RESULT {...}" for the spec to read.
local cjson = require "cjson"
local fake = require "support.fake"
local openresty = require "support.openresty"
local vertexops = require "vertexops"

local AUD = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/q"
local VERIFY = "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"

local server = fake.start()
local dir = fake.tmpdir()
local fwd = fake.tmpdir()
-- nginx by host name for the cosocket transport (https by IP address is refused there)
local token_url = server.endpoint:gsub("127%.0%.0%.1", "localhost") .. "/v1/token"

local ok_fwd = fake.run_nginx(fwd, ([[
pid %s/nginx.pid;
error_log %s/error.log warn;
%s
events {}
http {
  access_log off;
  client_body_temp_path %s/tmp;
  proxy_temp_path %s/tmp;
  server {
    listen 169.254.169.254:80;
    listen [fd00:ec2::254]:80;
    location / { proxy_pass http://127.0.0.1:%d; proxy_set_header Host $http_host; }
  }
}
]]):format(fwd, fwd, fake.is_root and "user root root;" or "", fwd, fwd, server.http_port))
assert(ok_fwd, "the forwarding nginx did not start: " .. tostring(fake.read(fwd .. "/error.log")))

local function write(name, cs, subject_token_type)
  local path = dir .. "/" .. name .. ".json"
  fake.write(path, cjson.encode { type = "external_account", audience = AUD, token_url = token_url,
    subject_token_type = subject_token_type or "urn:ietf:params:oauth:token-type:jwt", credential_source = cs })
  return path
end

local function aws_file(name, host)
  local m = "http://" .. host
  return write(name, { environment_id = "aws1", regional_cred_verification_url = VERIFY,
    region_url = m .. "/latest/meta-data/placement/availability-zone",
    url = m .. "/latest/meta-data/iam/security-credentials",
    imdsv2_session_token_url = m .. "/latest/api/token" }, "urn:ietf:params:aws:token-type:aws4_request")
end

local files = {
  aws_v4 = aws_file("aws_v4", "169.254.169.254"),
  aws_v6 = aws_file("aws_v6", "[fd00:ec2::254]"),
  -- Azure's IMDS: plain http to 169.254.169.254 with a query, header Metadata: True, a JSON answer
  azure = write("azure", { url = "http://169.254.169.254/subject_token?api-version=2018-02-01"
      .. "&resource=api://AzureADTokenExchange", headers = { Metadata = "True" },
    format = { type = "json", subject_token_field_name = "access_token" } }),
}

-- the fake's log of one call, trimmed to what the spec looks at
local function log_of()
  local out = {}
  for i, e in ipairs(server:log()) do
    out[i] = { call = e.call, method = e.method, query = e.query, metadata = e.headers and e.headers.metadata,
      imds_token = e.headers and e.headers["x-aws-ec2-metadata-token"] ~= nil }
  end
  return out
end

local function report(case, ok, res)
  print("RESULT " .. cjson.encode { case = case, ok = ok,
    error = not ok and tostring(type(res) == "table" and (res.message or cjson.encode(res)) or res) or nil,
    log = log_of() })
  server:reset()
end

local function configure(case)
  if case == "azure" then
    server:sts { subject_token_format = "json", subject_token_field = "access_token",
      subject_token_headers = { Metadata = "True" } }
  end
end

-- libcurl, outside nginx
for _, case in ipairs { "aws_v4", "aws_v6", "azure" } do
  configure(case)
  local c = vertexops.client { endpoint = server.endpoint, ca_file = server.ca_file, credentials = files[case],
    metadata_server = false, transport = "curl" }
  report("curl " .. case, pcall(c.get, c, server:create {}.name))
end

-- cosockets, inside nginx
local app = openresty.start(server, { env = { GOOGLE_OAUTH_ACCESS_TOKEN = "" } })
for _, case in ipairs { "aws_v4", "aws_v6", "azure" } do
  configure(case)
  local out = app:run([[
    local vertexops, args = ...
    return vertexops.get(args.name, nil, { transport = "cosocket", credentials = args.file }).name]],
    { name = server:create {}.name, file = files[case] })
  report("cosocket " .. case, out.ok, out.error)
end
app:stop()

fake.stop_nginx(fwd)
server:stop()
os.execute("rm -rf '" .. dir .. "'")
