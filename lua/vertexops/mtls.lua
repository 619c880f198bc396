-- vertexops.mtls: the client certificate of mutual TLS (options client_cert, client_key: PEM
-- files). A client reads each file once (its first exchange that needs it) and keeps the text;
-- libcurl gets the texts as blobs (csrc/handle.c), the cosocket transport parses them once per
-- text (transport/cosocket.lua, tcpsock:setclientcert). A file that cannot be read, holds no PEM
-- certificate or no PEM private key, or an encrypted key (no pass-phrase is ever asked for), is
-- an AuthError naming the option and the path, never the key's bytes.
local errors = require "vertexops.errors"

local io_open, string_format = io.open, string.format

local M = {}

local function read(path, what)
  local f, err = io_open(path, "rb")
  if not f then
    errors.raise("AuthError", string_format("option '%s': cannot read %s: %s", what, path, tostring(err)))
  end
  local text = f:read("*a")
  f:close()
  return text or ""
end

-- The PEM texts of options o (nil, nil without client_cert), read once per client (client.pems).
---@param client table a vertexops client
---@param o vertexops.Options
---@return string? cert
---@return string? key
function M.pems(client, o)
  local cert_path, key_path = o.client_cert, o.client_key
  if cert_path == nil then
    if key_path ~= nil then errors.raise("ValueError", "option 'client_key' needs option 'client_cert'") end
    return nil, nil
  end
  local pems = client.pems
  if not pems then
    pems = {}
    client.pems = pems
  end
  local key = key_path or cert_path
  local entry = pems[cert_path .. "\0" .. key]
  if entry then return entry[1], entry[2] end
  local cert = read(cert_path, "client_cert")
  if not cert:find("-----BEGIN CERTIFICATE-----", 1, true) then
    errors.raise("AuthError", string_format("option 'client_cert': %s holds no PEM certificate (-----BEGIN "
      .. "CERTIFICATE-----)", cert_path))
  end
  local keytext = key_path and read(key_path, "client_key") or cert
  local what = key_path and "client_key" or "client_cert"
  if keytext:find("ENCRYPTED", 1, true) then
    errors.raise("AuthError", string_format("option '%s': the private key in %s is encrypted (no pass-phrase "
      .. "is asked for: decrypt it, e.g. openssl pkey -in KEY -out PLAIN)", what, key_path or cert_path))
  end
  if not keytext:find("-----BEGIN [%u ]*PRIVATE KEY-----") then
    errors.raise("AuthError", string_format("option '%s': %s holds no PEM private key", what, key_path or cert_path))
  end
  -- libcurl and nginx read the first certificate and the first key of a text: the key alone
  -- (a file holding both gives its key part) keeps certificates out of the key blob
  local k = keytext:match("%-%-%-%-%-BEGIN [%u ]*PRIVATE KEY%-%-%-%-%-.-%-%-%-%-%-END [%u ]*PRIVATE KEY%-%-%-%-%-")
  pems[cert_path .. "\0" .. key] = { cert, k }
  return cert, k
end

return M
