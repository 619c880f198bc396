-- fuzz/torture/multi.lua over HTTPS: HTTP/2 multiplexing (PIPEWAIT) through the fake's TLS endpoint.
return assert(loadfile("fuzz/torture/multi.lua"))("tls")
