-- Driver of fuzz/key.c. Input: a mode byte, then the bytes. Mode odd: core.b64url(bytes) must be
-- unpadded base64url (RFC 7515) that decodes back to bytes. Mode even: core.rs256(bytes, data)
-- must not raise and must return a signature (1..2048 bytes) or nil and one of the known reasons.
-- Returns nil when the contract holds, or a text naming the broken invariant.
local core = require "vertexops.core"
local REASONS = {
  ["private_key is not a PEM private key"] = true, ["private_key is not an RSA key"] = true,
  ["signing with the private key failed"] = true, ["signature too large"] = true,
  ["private key too large"] = true,
  ["private_key is encrypted; vertexops never asks for a pass phrase (use an unencrypted key)"] = true,
}
local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local INDEX = {}
for i = 1, 64 do INDEX[ALPHABET:byte(i)] = i - 1 end

local function b64url_decode(s)
  local out, bits, n = {}, 0, 0
  for i = 1, #s do
    local v = INDEX[s:byte(i)]
    if not v then return nil end
    bits, n = (bits << 6) | v, n + 6
    if n >= 8 then
      n = n - 8
      out[#out + 1] = string.char((bits >> n) & 255)
    end
  end
  return table.concat(out)
end

return function(data)
  local mode, bytes = data:byte(1) or 0, data:sub(2)
  if mode % 2 == 1 then
    local ok, enc = pcall(core.b64url, bytes)
    if not ok then return "b64url raised: " .. tostring(enc) end
    if #enc ~= (#bytes * 4 + 2) // 3 then return "b64url length " .. #enc .. " for " .. #bytes .. " bytes" end
    if b64url_decode(enc) ~= bytes then return "b64url does not decode back" end
    return nil
  end
  local ok, sig, why = pcall(core.rs256, bytes, "eyJhbGciOiJSUzI1NiJ9.e30")
  if not ok then return "rs256 raised: " .. tostring(sig) end
  if sig == nil then
    if not REASONS[why] then return "rs256 reason: " .. tostring(why) end
  elseif type(sig) ~= "string" or #sig == 0 or #sig > 2048 or why ~= nil then
    return "rs256 returned " .. type(sig) .. ", " .. tostring(why)
  end
end
