-- vertexops.testing.jwt: self-signed JWT bearer tokens (a service account's JWT sent as the access
-- token, no token exchange: google-auth's JWTAccess, vertexops' self_signed_jwt). The fake accepts
-- one when its RS256 signature verifies with a public key it knows (testing.make_key_file registers
-- the key it mints: POST /_control/keys), iss = sub is that key's client_email, aud is the
-- service's URL (https://aiplatform.googleapis.com/, M.audience) or a scope claim names cloud-platform, and exp
-- is in the future on the server's clock. The signature is checked with nginx's own libcrypto (FFI).
local cjson = require("cjson.safe").new()
local state = require "vertexops.testing.state"

local ngx = ngx
local M = {}

-- libcrypto through LuaJIT's FFI, loaded at the first check (inside the fake's nginx): requiring
-- this module elsewhere (PUC Lua, a static embedding that preloads every module) loads nothing.
local crypto
local function libcrypto()
  if crypto then return crypto end
  local ffi = require "ffi"
  ffi.cdef [[
typedef struct bio_st vxf_BIO;
typedef struct evp_pkey_st vxf_EVP_PKEY;
typedef struct evp_md_ctx_st vxf_EVP_MD_CTX;
typedef struct evp_md_st vxf_EVP_MD;
vxf_BIO *BIO_new_mem_buf(const void *buf, int len);
int BIO_free(vxf_BIO *a);
vxf_EVP_PKEY *PEM_read_bio_PUBKEY(vxf_BIO *bp, vxf_EVP_PKEY **x, void *cb, void *u);
void EVP_PKEY_free(vxf_EVP_PKEY *pkey);
vxf_EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(vxf_EVP_MD_CTX *ctx);
const vxf_EVP_MD *EVP_sha256(void);
int EVP_DigestVerifyInit(vxf_EVP_MD_CTX *ctx, void **pctx, const vxf_EVP_MD *type, void *e, vxf_EVP_PKEY *pkey);
int EVP_DigestVerify(vxf_EVP_MD_CTX *ctx, const unsigned char *sig, size_t siglen, const unsigned char *tbs, size_t tbslen);
]]
  -- nginx's own (it links it for TLS), else the shared library by name
  crypto = (pcall(function() return ffi.C.EVP_sha256 end) and ffi.C) or ffi.load("libcrypto.so.3")
  return crypto
end

--- The audience Google's clients give a self-signed JWT without a scope claim: the service's URL.
M.AUDIENCE = "https://aiplatform.googleapis.com/"
local CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"

local function b64url_decode(s)
  s = s:gsub("-", "+"):gsub("_", "/")
  return ngx.decode_base64(s .. string.rep("=", (4 - #s % 4) % 4))
end

-- true when sig is input's RS256 signature by the public key pem.
local function verified(pem, input, sig)
  local c = libcrypto()
  local bio = c.BIO_new_mem_buf(pem, #pem)
  if bio == nil then return false end
  local key = c.PEM_read_bio_PUBKEY(bio, nil, nil, nil)
  c.BIO_free(bio)
  if key == nil then return false end
  local ctx = c.EVP_MD_CTX_new()
  local ok = ctx ~= nil and c.EVP_DigestVerifyInit(ctx, nil, c.EVP_sha256(), nil, key) == 1
    and c.EVP_DigestVerify(ctx, sig, #sig, input, #input) == 1
  if ctx ~= nil then c.EVP_MD_CTX_free(ctx) end
  c.EVP_PKEY_free(key)
  return ok
end

--- true when aud is the URL of the service a self-signed JWT is for: https://HOST/ with HOST
--- aiplatform.googleapis.com, a regional Vertex host (REGION-aiplatform.googleapis.com,
--- aiplatform.REGION.rep.googleapis.com), or the host this request was sent to (Google's Node
--- clients sign https://{apiEndpoint}/: the fake's 127.0.0.1 or localhost).
function M.audience(aud)
  if type(aud) ~= "string" then return false end
  local host = aud:match("^https://([%w%.%-]+)/$")
  if not host then return false end
  return host == "aiplatform.googleapis.com" or host:match("^[a-z0-9%-]+%-aiplatform%.googleapis%.com$") ~= nil
    or host:match("^aiplatform%.[a-z0-9%-]+%.rep%.googleapis%.com$") ~= nil or host == ngx.var.host
end

local function has_scope(scope)
  if type(scope) ~= "string" then return false end
  for s in scope:gmatch("%S+") do
    if s == CLOUD_PLATFORM then return true end
  end
  return false
end

--- true when token has a JWT's form (three base64url parts).
function M.is_jwt(token)
  return token:match("^[%w_-]+%.[%w_-]+%.[%w_-]+$") ~= nil
end

--- Checks a self-signed JWT bearer: nil when accepted, else the reason of the 401
--- ("ACCESS_TOKEN_EXPIRED" for an expired one, "ACCESS_TOKEN_TYPE_UNSUPPORTED" otherwise) and why.
function M.refusal(token)
  local h, c, s = token:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
  local header = h and cjson.decode(b64url_decode(h) or "")
  local claims = c and cjson.decode(b64url_decode(c) or "")
  local bad = "ACCESS_TOKEN_TYPE_UNSUPPORTED"
  if type(header) ~= "table" or type(claims) ~= "table" then return bad, "not a JWT" end
  if header.alg ~= "RS256" then return bad, "alg is not RS256" end
  local keys = type(claims.iss) == "string" and state.keys[claims.iss]
  if not keys then return bad, "unknown issuer" end
  if claims.sub ~= claims.iss then return bad, "sub is not iss" end
  local input, sig = h .. "." .. c, b64url_decode(s) or ""
  local ok = false
  if type(header.kid) == "string" then
    ok = keys[header.kid] ~= nil and verified(keys[header.kid], input, sig)
  else
    for _, pem in pairs(keys) do ok = ok or verified(pem, input, sig) end
  end
  if not ok then return bad, "bad signature" end
  if not (claims.aud == nil and has_scope(claims.scope) or M.audience(claims.aud)) then
    return bad, "wrong audience"
  end
  if type(claims.exp) ~= "number" or type(claims.iat) ~= "number" or claims.exp - claims.iat > 3600 then
    return bad, "bad iat/exp"
  end
  if claims.exp <= state.now() then return "ACCESS_TOKEN_EXPIRED", "expired" end
end

-- settings (the control API) -----------------------------------------------------------------

--- Public keys the fake holds, at most (they survive reset()).
M.MAX_KEYS = 1000

--- /_control/keys: a public key the fake knows ({client_email, key_id, public_key}). Returns nil, or
--- the message of a 400.
function M.check_key(body)
  if type(body) ~= "table" then return "a key must be a JSON object" end
  for _, k in ipairs { "client_email", "key_id", "public_key" } do
    if type(body[k]) ~= "string" or #body[k] == 0 or #body[k] > 16384 then
      return k .. " must be a string of 1 to 16384 bytes"
    end
  end
  if not body.public_key:find("-----BEGIN PUBLIC KEY-----", 1, true) then
    return "public_key must be a PEM public key (-----BEGIN PUBLIC KEY-----)"
  end
  local n = 0
  for _, ks in pairs(state.keys) do
    for _ in pairs(ks) do n = n + 1 end
  end
  if n >= M.MAX_KEYS then return ("at most %d keys"):format(M.MAX_KEYS) end
end

function M.set_key(body)
  local keys = state.keys[body.client_email] or {}
  keys[body.key_id] = body.public_key
  state.keys[body.client_email] = keys
end

return M
