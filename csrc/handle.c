/* handle.c: the easy handle (vertexops.handle) -- one libcurl easy handle per userdata, born
 * closed, one idempotent __gc/__close. It sets a request up (vx_prepare), runs it blocking
 * (handle:call) or in a multi (handle:start/done/finish, with multi.c), and turns the finished
 * transfer into a result (vx_result -> response.c). Transport failures are tagged here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "vx.h"

/* Drops the request's header list (the Authorization header among them), wiping it first: a
 * token lives in the handle only for its exchange. */
static void vx_forget_headers(vx_handle *h) {
  struct curl_slist *l;
  if (!h->hdrs) return;
  if (h->easy) (void)curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
  for (l = h->hdrs; l; l = l->next) OPENSSL_cleanse(l->data, strlen(l->data));
  curl_slist_free_all(h->hdrs);
  h->hdrs = NULL;
}

static size_t vx_onbody(char *p, size_t size, size_t n, void *ud) {
  vx_buf *b = ud;
  return vx_bufappend(b, p, size * n) == size * n ? size * n : 0;
}

/* Keeps the head of the last response only (a new one starts at each status line, after a 1xx),
 * but counts the bytes of every head -- interim 1xx ones and trailers included -- against
 * VX_MAX_HEAD, as the cosocket parser does (h1.c): a flood of 1xx answers is refused as an
 * oversize answer, not left to libcurl's own, larger total. */
static size_t vx_onheader(char *p, size_t size, size_t n, void *ud) {
  vx_handle *h = ud;
  size_t len = size * n;
  if (len > VX_MAX_HEAD - h->headtotal) {
    h->head.overflow = 1;
    return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
  }
  h->headtotal += len;
  if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) h->head.len = 0; /* a new response starts */
  return vx_bufappend(&h->head, p, len) == len ? len : 0;
}

static vx_handle *vx_checkhandle(lua_State *L, int idx) {
  vx_handle *h = vx_checkudarg(L, idx, VX_HANDLE_MT, "vertexops handle");
  if (!h->easy) vx_valueerror(L, "attempt to use a closed vertexops handle");
  return h;
}

static int vx_samestr(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static char *vx_strdup(const char *s) {
  char *d;
  size_t n;
  if (!s) return NULL;
  n = strlen(s) + 1;
  d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* __gc and __close and close(): idempotent */
static int handle_close(lua_State *L) {
  vx_handle *h = vx_checkudarg(L, 1, VX_HANDLE_MT, "vertexops handle");
  vx_sharestate *st = h->share;
  vx_detach(h);
  vx_unqueue(h);
  if (h->easy) curl_easy_cleanup(h->easy);
  h->easy = NULL;
  h->share = NULL;
  if (st) {
    st->refs--;
    vx_share_release(st);
  }
  vx_forget_headers(h);
  free(h->body.data);
  free(h->head.data);
  memset(&h->body, 0, sizeof h->body);
  memset(&h->head, 0, sizeof h->head);
  free(h->default_cainfo);
  free(h->default_capath);
  free(h->plain_ca);
  h->default_cainfo = h->default_capath = h->plain_ca = NULL;
  h->plain_set = 0;
  return 0;
}

/* core.handle() -> a new open handle */
static int core_handle(lua_State *L) {
  vx_handle *h;
  CURL *e;
  char *info = NULL;
  h = lua_newuserdata(L, sizeof *h);
  memset(h, 0, sizeof *h); /* born closed */
  luaL_getmetatable(L, VX_HANDLE_MT);
  lua_setmetatable(L, -2);
  if (!vx_curl_ready()) return vx_curlerror(L, "curl_global_init failed");
  e = curl_easy_init();
  if (!e) return vx_curlerror(L, "curl_easy_init failed");
  h->easy = e;
  h->body.limit = VX_MAX_BODY;
  h->head.limit = VX_MAX_HEAD;
  /* the system store libcurl was built with (restored when a request names no ca_file) */
  if (curl_easy_getinfo(e, CURLINFO_CAINFO, &info) != CURLE_OK) info = NULL;
  h->default_cainfo = vx_strdup(info);
  info = NULL;
  if (curl_easy_getinfo(e, CURLINFO_CAPATH, &info) != CURLE_OK) info = NULL;
  h->default_capath = vx_strdup(info);
  VX_SETOPT(L, e, CURLOPT_NOSIGNAL, 1L);
  VX_SETOPT(L, e, CURLOPT_FOLLOWLOCATION, 0L);
  VX_SETOPT(L, e, CURLOPT_PROTOCOLS_STR, "http,https");
  VX_SETOPT(L, e, CURLOPT_SSL_VERIFYPEER, 1L);
  VX_SETOPT(L, e, CURLOPT_SSL_VERIFYHOST, 2L);
  VX_SETOPT(L, e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  VX_SETOPT(L, e, CURLOPT_TCP_KEEPALIVE, 1L);
  VX_SETOPT(L, e, CURLOPT_ERRORBUFFER, h->errbuf);
  VX_SETOPT(L, e, CURLOPT_WRITEFUNCTION, vx_onbody);
  VX_SETOPT(L, e, CURLOPT_WRITEDATA, &h->body);
  VX_SETOPT(L, e, CURLOPT_HEADERFUNCTION, vx_onheader);
  VX_SETOPT(L, e, CURLOPT_HEADERDATA, h);
  return 1;
}

/* An answer over one of libcurl's own size limits (a header line over CURL_MAX_HTTP_HEADER,
 * 100 KB): CURLE_TOO_LARGE from 8.6 on; before, CURLE_OUT_OF_MEMORY, with "Rejected N bytes
 * header" or nothing in the error buffer. Once the status line has arrived, out of memory while
 * receiving headers is taken for that limit (a real shortage would fail our own buffers first). */
static int vx_curl_toolarge(CURLcode rc, const vx_handle *h) {
#if LIBCURL_VERSION_NUM >= 0x080600
  if (rc == CURLE_TOO_LARGE) return 1;
#endif
  return rc == CURLE_OUT_OF_MEMORY && (strstr(h->errbuf, "header") != NULL || h->head.len > 0);
}

/* libcurl's own cap on all the heads of one answer (300 KiB, 1xx ones included; 7.88.1 with the
 * CVE-2023-38039 fix and 8.3 on): CURLE_RECV_ERROR "Too large response headers" (CURLE_TOO_LARGE
 * from 8.6, above). Our count (vx_onheader) stops earlier; this is for a libcurl that counts
 * bytes the callback does not see. */
static int vx_curl_headtotal(CURLcode rc, const vx_handle *h) {
  return rc == CURLE_RECV_ERROR && strstr(h->errbuf, "Too large response headers") != NULL;
}

/* libcurl gave up resending the request: it resends, on a fresh connection, only a request no
 * server answered any byte of -- a stream the server refused (HTTP/2 REFUSED_STREAM, or past a
 * GOAWAY's last stream) or a reused connection that closed before any answer -- and fails after
 * its fifth such try with "Connection died, tried 5 times before giving up" (lib/transfer.c,
 * Curl_retry_request; CURLE_SEND_ERROR, or CURLE_RECV_ERROR when the last try died reading). Such
 * a request is taken, as libcurl takes it, for one that never reached the service: a
 * ConnectionFailedError, which even a POST retries after its backoff (a server ending connections
 * with GOAWAY while a sweep fills them lost a few cancels in 100,000 without it). */
static int vx_curl_gaveup(CURLcode rc, const vx_handle *h) {
  return (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR) && strncmp(h->errbuf, "Connection died, tried ", 23) == 0;
}

/* Pushes the transport error for a failed exchange (status: what the server had answered, if
 * anything; an answer refused for its size keeps it as code). */
/* The status of a CONNECT the proxy refused (not 2xx), else 0. */
static int vx_proxyrefused(vx_handle *h, long *code) {
  if (curl_easy_getinfo(h->easy, CURLINFO_HTTP_CONNECTCODE, code) != CURLE_OK) *code = 0;
  return *code != 0 && (*code < 200 || *code > 299);
}

static void vx_pushcurlerror(lua_State *L, vx_handle *h, CURLcode rc, long status) {
  long sent = 0, proxycode = 0;
  char msg[CURL_ERROR_SIZE + 128];
  const char *detail = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
  if ((rc == CURLE_WRITE_ERROR && (h->body.overflow == 1 || h->head.overflow == 1)) ||
      vx_curl_headtotal(rc, h)) {
    vx_pushoversize(L, h->body.overflow == 1 ? VX_OVER_BODY : VX_OVER_HEAD, status);
  } else if (vx_curl_toolarge(rc, h)) {
    vx_pushoversize(L, VX_OVER_LINE, status);
  } else if (vx_proxyrefused(h, &proxycode)) {
    /* the proxy answered CONNECT with something other than 2xx: nothing reached the service (the
     * cosocket transport makes the same error: lua/vertexops/transport/cosocket.lua) */
    snprintf(msg, sizeof msg, "the proxy refused the tunnel: it answered CONNECT with %ld (%s, curl error %d)",
             proxycode, detail, (int)rc);
    vx_pusherror(L, vx_tags_failed, msg);
    lua_pushinteger(L, (lua_Integer)proxycode);
    lua_setfield(L, -2, "proxy_status");
  } else {
    if (curl_easy_getinfo(h->easy, CURLINFO_REQUEST_SIZE, &sent) != CURLE_OK) sent = 1;
    snprintf(msg, sizeof msg, "%s (curl error %d)", detail, (int)rc);
    if (vx_curl_certfailure(rc))
      vx_pushcertfailure(L, msg);
    else if (vx_curl_gaveup(rc, h))
      vx_pusherror(L, vx_tags_failed, msg);
    else
      vx_pusherror(L, vx_curl_tags(rc, sent), msg);
  }
}

static double vx_fieldnumber(lua_State *L, int t, const char *k, double dflt) {
  double v = dflt;
  if (vx_rawfield(L, t, k) == LUA_TNUMBER) v = (double)lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static long vx_ms(double secs) {
  double ms = ceil(secs * 1000.0);
  if (!(ms >= 1)) ms = 1; /* NaN too */
  if (ms > 2147483647.0) ms = 2147483647.0;
  return (long)ms;
}

/* Sets the easy handle up for the request table at index 2 (read by vx_readrequest, reader.c:
 * method, url, headers, body, and the token at index tokidx -- a string, else req.token -- then
 * timeout, connect_timeout, ca_file, want_headers). Raises for bad arguments, fails closed when
 * libcurl refuses an option; allocates only into h. The token is copied into the handle's header
 * list only, which goes with the exchange (vx_forget_headers). */
static int vx_prepare(lua_State *L, vx_handle *h, int tokidx) {
  CURL *e = h->easy;
  const char *ca = NULL;
  size_t i;
  struct curl_slist *l;
  vx_request r;
  int top = lua_gettop(L), plain;

  vx_readrequest(L, 2, tokidx, &r);
  if (vx_rawfield(L, 2, "ca_file") == LUA_TSTRING) ca = lua_tostring(L, -1);
  vx_rawfield(L, 2, "want_headers");
  h->want_headers = lua_toboolean(L, -1);
  vx_rawfield(L, 2, "names_only"); /* cancel_all's listing (lua/vertexops/fleet.lua) */
  h->names_only = lua_toboolean(L, -1);

  vx_forget_headers(h);
  VX_SETOPT(L, e, CURLOPT_URL, r.url); /* libcurl copies strings it is given ... */
  if (!r.has_body) {
    VX_SETOPT(L, e, CURLOPT_HTTPGET, 1L);
    VX_SETOPT(L, e, CURLOPT_CUSTOMREQUEST, strcmp(r.method, "GET") ? r.method : (const char *)NULL);
  } else {
    VX_SETOPT(L, e, CURLOPT_CUSTOMREQUEST, strcmp(r.method, "POST") ? r.method : (const char *)NULL);
    VX_SETOPT(L, e, CURLOPT_POST, 1L);
    VX_SETOPT(L, e, CURLOPT_POSTFIELDSIZE, (long)r.bodylen);
    /* ... but not POSTFIELDS: copy the body, which may outlive this call in a multi transfer */
    VX_SETOPT(L, e, CURLOPT_COPYPOSTFIELDS, r.bodytext ? r.bodytext : "");
  }
  h->timeout = vx_fieldnumber(L, 2, "timeout", VX_EXCHANGE_TIMEOUT);
  VX_SETOPT(L, e, CURLOPT_TIMEOUT_MS, vx_ms(h->timeout));
  VX_SETOPT(L, e, CURLOPT_CONNECTTIMEOUT_MS, vx_ms(vx_fieldnumber(L, 2, "connect_timeout", VX_CONNECT_TIMEOUT)));
  /* The proxy is the Lua front's decision (lua/vertexops/proxy.lua: option proxy or https_proxy,
   * no_proxy), the same for both transports: req.proxy "http://host:port" for an https:// request
   * that goes through one, tunnelled with CONNECT, its credentials apart (req.proxy_user,
   * req.proxy_password: never in a URL libcurl could show). Without it no proxy at all, whatever
   * the environment holds (CURLOPT_PROXY "" overrides libcurl's own reading of it): a plain http://
   * request (loopback endpoints, the metadata server) never goes through one, the proxy would read
   * the bearer token. */
  /* A request without a proxy or a client certificate (every request of most clients) leaves the
   * connection options as the last such one on this handle set them when its CA is the same: they
   * are not set again (libcurl copies each string option anew). */
  plain = !(r.u.https && vx_rawfield(L, 2, "proxy") == LUA_TSTRING);
  plain = plain && vx_rawfield(L, 2, "client_cert") != LUA_TSTRING && vx_rawfield(L, 2, "client_key") != LUA_TSTRING;
  if (!(plain && h->plain_set && vx_samestr(h->plain_ca, ca))) {
    h->plain_set = 0;
    if (r.u.https && vx_rawfield(L, 2, "proxy") == LUA_TSTRING) {
      const char *user = NULL, *password = NULL;
      VX_SETOPT(L, e, CURLOPT_PROXY, lua_tostring(L, -1));
      if (vx_rawfield(L, 2, "proxy_user") == LUA_TSTRING) user = lua_tostring(L, -1);
      if (vx_rawfield(L, 2, "proxy_password") == LUA_TSTRING) password = lua_tostring(L, -1);
      VX_SETOPT(L, e, CURLOPT_PROXYUSERNAME, user);
      VX_SETOPT(L, e, CURLOPT_PROXYPASSWORD, user ? (password ? password : "") : (const char *)NULL);
      VX_SETOPT(L, e, CURLOPT_PROXYAUTH, (long)CURLAUTH_BASIC);
    } else {
      VX_SETOPT(L, e, CURLOPT_PROXY, "");
      VX_SETOPT(L, e, CURLOPT_PROXYUSERNAME, (const char *)NULL);
      VX_SETOPT(L, e, CURLOPT_PROXYPASSWORD, (const char *)NULL);
    }
    VX_SETOPT(L, e, CURLOPT_HTTPPROXYTUNNEL, 1L);
    VX_SETOPT(L, e, CURLOPT_NOPROXY, ""); /* decided above: not libcurl's reading of no_proxy */
    /* A client certificate (mTLS): the PEM texts the client read once from its files (req.client_cert,
     * req.client_key), copied by libcurl. Its connection cache keys connections by the certificate
     * blob (Curl_ssl_config_matches), so a connection made with one is never used without it. */
    {
      struct curl_blob cert, key;
      size_t n = 0;
      memset(&cert, 0, sizeof cert);
      memset(&key, 0, sizeof key);
      if (vx_rawfield(L, 2, "client_cert") == LUA_TSTRING) {
        cert.data = (void *)lua_tolstring(L, -1, &n);
        cert.len = n;
        cert.flags = CURL_BLOB_COPY;
      }
      if (vx_rawfield(L, 2, "client_key") == LUA_TSTRING) {
        key.data = (void *)lua_tolstring(L, -1, &n);
        key.len = n;
        key.flags = CURL_BLOB_COPY;
      }
      VX_SETOPT(L, e, CURLOPT_SSLCERT_BLOB, cert.data ? &cert : (struct curl_blob *)NULL);
      VX_SETOPT(L, e, CURLOPT_SSLKEY_BLOB, key.data ? &key : (cert.data ? &cert : (struct curl_blob *)NULL));
      VX_SETOPT(L, e, CURLOPT_SSLCERTTYPE, "PEM");
      VX_SETOPT(L, e, CURLOPT_SSLKEYTYPE, "PEM");
    }
    VX_SETOPT(L, e, CURLOPT_CAINFO, ca ? ca : h->default_cainfo);
    VX_SETOPT(L, e, CURLOPT_CAPATH, ca ? (const char *)NULL : h->default_capath);
    if (plain) {
      free(h->plain_ca);
      h->plain_ca = vx_strdup(ca);
      h->plain_set = !ca || h->plain_ca; /* a copy that failed: set again next time */
    }
  }

  /* headers last: built into h->hdrs, which the handle owns (and wipes) if we raise */
  for (i = 1; i <= r.nheaders; i++) {
    lua_rawgeti(L, r.headers, (int)i); /* checked by vx_readrequest */
    l = curl_slist_append(h->hdrs, lua_tostring(L, -1));
    if (!l) vx_curlerror(L, "not enough memory for the request headers");
    h->hdrs = l;
    lua_pop(L, 1);
  }
  if (r.token) {
    /* built in C memory (no Lua string holds the header), wiped after the copy */
    static const char prefix[] = "Authorization: Bearer ";
    size_t hlen = sizeof prefix - 1 + r.tokenlen + 1;
    char *hdr = malloc(hlen);
    if (!hdr) vx_curlerror(L, "not enough memory for the request headers");
    memcpy(hdr, prefix, sizeof prefix - 1);
    memcpy(hdr + sizeof prefix - 1, r.tokentext, r.tokenlen);
    hdr[hlen - 1] = '\0';
    l = curl_slist_append(h->hdrs, hdr);
    OPENSSL_cleanse(hdr, hlen);
    free(hdr);
    if (!l) vx_curlerror(L, "not enough memory for the request headers");
    h->hdrs = l;
  }
  if (curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->hdrs) != CURLE_OK) {
    vx_forget_headers(h);
    vx_curlerror(L, "libcurl refused option CURLOPT_HTTPHEADER");
  }

  vx_bufreset(&h->body);
  vx_bufreset(&h->head);
  h->headtotal = 0;
  h->errbuf[0] = '\0';
  lua_settop(L, top);
  return r.u.https;
}

/* Turns a finished transfer (rc, status, buffers) into true, decoded[, headers] | false, err.
 * The request's headers (the token among them) and large buffers go with the exchange. */
static int vx_result(lua_State *L, vx_handle *h, CURLcode rc) {
  long status = 0, conns = 0;
  int n;
  h->requests++;
  if (curl_easy_getinfo(h->easy, CURLINFO_NUM_CONNECTS, &conns) == CURLE_OK) h->connects += conns;
  if (curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK) status = 0;
  vx_forget_headers(h);
  if (h->body.overflow == 2 || h->head.overflow == 2) {
    vx_bufreset(&h->body);
    vx_bufreset(&h->head);
    lua_pushboolean(L, 0);
    vx_pusherror(L, vx_tags_conn, "out of memory while receiving the response");
    return 2;
  }
  if (rc != CURLE_OK) {
    lua_pushboolean(L, 0);
    vx_pushcurlerror(L, h, rc, status);
    n = 2;
  } else {
    n = 0;
    if (h->names_only && !h->want_headers && status >= 200 && status <= 299) {
      /* a page the scan cannot take exactly as the decoder would goes to the decoder */
      lua_pushboolean(L, 1);
      if (vx_pushpagenames(L, h->body.data ? h->body.data : "", h->body.len)) n = 2;
      else lua_pop(L, 1);
    }
    if (!n) n = vx_classify(L, status, h->head.data, h->head.len, h->body.data, h->body.len, h->want_headers);
  }
  vx_bufreset(&h->body);
  vx_bufreset(&h->head);
  return n;
}

/* handle:call(req [, token]) -> true, decoded[, headers] | false, err
 * (the headers of a successful answer only when req.want_headers is true)
 * One blocking HTTP exchange. Transport, HTTP and shape failures are returned as error objects;
 * bad arguments raise. */
static int handle_call(lua_State *L) {
  vx_handle *h = vx_checkhandle(L, 1);
  CURLcode rc;
  if (h->state == VX_RUNNING) return vx_valueerror(L, "vertexops handle is busy with a transfer");
  lua_settop(L, 3);
  vx_prepare(L, h, 3);
  rc = curl_easy_perform(h->easy); /* the callbacks only fill h->body and h->head */
  return vx_result(L, h, rc);
}

/* handle:share(share): the handle uses share's connection cache from now on */
static int handle_share(lua_State *L) {
  vx_handle *h = vx_checkhandle(L, 1);
  vx_sharestate *st = vx_checkshare(L, 2);
  vx_sharestate *old = h->share;
  if (old == st) return 0;
  if (h->state == VX_RUNNING) return vx_valueerror(L, "vertexops handle is busy with a transfer");
  VX_SETOPT(L, h->easy, CURLOPT_SHARE, st->sh);
  st->refs++;
  h->share = st;
  if (old) {
    old->refs--;
    vx_share_release(old);
  }
  return 0;
}

/* handle:start(req, multi [, token [, slot]]): starts the request as a non-blocking transfer in
 * multi. With a slot (an integer > 0), once finished the transfer's slot is given by
 * multi:finished() (multi.c). */
static int handle_start(lua_State *L) {
  vx_handle *h = vx_checkhandle(L, 1);
  vx_multi *m;
  lua_Integer slot = 0;
  int https;
  lua_settop(L, 5);
  vx_checkmulti(L, 3);
  if (h->state == VX_RUNNING) return vx_valueerror(L, "vertexops handle is busy with a transfer");
  if (!lua_isnil(L, 5)) {
    lua_Number d = lua_type(L, 5) == LUA_TNUMBER ? lua_tonumber(L, 5) : 0;
    if (!(d >= 1 && d <= 9007199254740992.0) || d != floor(d))
      return vx_valueerror(L, "handle:start: slot must be an integer > 0");
    slot = (lua_Integer)d;
  }
  vx_unqueue(h); /* a finished transfer of this handle whose slot was never taken */
  https = vx_prepare(L, h, 4); /* keeps the multi at index 3 alive on the stack */
  m = lua_touserdata(L, 3); /* checked above; vx_prepare runs no Lua that could close it */
  VX_SETOPT(L, h->easy, CURLOPT_PRIVATE, (void *)h);
  /* https: wait to multiplex rather than open more connections. Never for http://, where there is
   * no HTTP/2 to wait for (CURL_HTTP_VERSION_2TLS): libcurl 7.88 can leave such a transfer waiting
   * for ever on a connection a failed allocation broke (make torture, fuzz/torture/multi.lua). */
  VX_SETOPT(L, h->easy, CURLOPT_PIPEWAIT, https ? 1L : 0L);
  if (!vx_attach(m, h)) {
    vx_forget_headers(h);
    return vx_curlerror(L, "curl_multi_add_handle failed");
  }
  /* libcurl's own timeout ends the transfer; multi:perform ends it one second later if libcurl
   * has lost it (multi.c) */
  h->deadline = vx_monotonic() + (double)vx_ms(h->timeout) / 1000.0 + 1.0;
  h->slot = slot;
  h->state = VX_RUNNING;
  return 0;
}

/* handle:done() -> true once a non-blocking transfer has finished */
static int handle_done(lua_State *L) {
  vx_handle *h = vx_checkudarg(L, 1, VX_HANDLE_MT, "vertexops handle");
  lua_pushboolean(L, h->state == VX_DONE);
  return 1;
}

/* handle:finish() -> the results of a finished non-blocking transfer, as handle:call gives them */
static int handle_finish(lua_State *L) {
  vx_handle *h = vx_checkhandle(L, 1);
  if (h->state != VX_DONE) return vx_valueerror(L, "vertexops handle: no finished transfer");
  h->state = VX_IDLE;
  lua_settop(L, 1);
  return vx_result(L, h, h->rc);
}

/* handle:stats() -> {requests = n, connects = n, buffered = bytes, held_headers = n}
 * buffered: answer buffers kept for the next exchange; held_headers: request header lines still
 * held (0 between exchanges: the token goes with its exchange). */
static int handle_stats(lua_State *L) {
  vx_handle *h = vx_checkudarg(L, 1, VX_HANDLE_MT, "vertexops handle");
  struct curl_slist *l;
  int held = 0;
  for (l = h->hdrs; l; l = l->next) held++;
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)h->requests);
  lua_setfield(L, -2, "requests");
  lua_pushinteger(L, (lua_Integer)h->connects);
  lua_setfield(L, -2, "connects");
  lua_pushinteger(L, (lua_Integer)(h->body.cap + h->head.cap));
  lua_setfield(L, -2, "buffered");
  lua_pushinteger(L, held);
  lua_setfield(L, -2, "held_headers");
  return 1;
}

/* Sets field k of the table on top to seconds of libcurl time info (a curl_off_t of microseconds),
 * when libcurl knows it. */
static void vx_settime(lua_State *L, CURL *e, CURLINFO info, const char *k) {
  curl_off_t us = 0;
  if (curl_easy_getinfo(e, info, &us) != CURLE_OK || us < 0) return;
  lua_pushnumber(L, (lua_Number)us / 1e6);
  lua_setfield(L, -2, k);
}

/* handle:info([t]) -> {status, connect, tls, first_byte, total (seconds from the transfer's start),
 * bytes_sent, bytes_received (head and body)} of the handle's last transfer, as libcurl measured
 * it (CURLINFO_*_TIME_T), in t when given (the hooks' meter: lua/vertexops/hooks.lua), else in a
 * new table. No header, URL or secret. */
static int handle_info(lua_State *L) {
  vx_handle *h = vx_checkhandle(L, 1);
  CURL *e = h->easy;
  long status = 0, head = 0, req = 0;
  curl_off_t up = 0, down = 0;
  if (lua_type(L, 2) == LUA_TTABLE) lua_settop(L, 2);
  else lua_createtable(L, 0, 8);
  if (curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status > 0) {
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "status");
  }
  vx_settime(L, e, CURLINFO_CONNECT_TIME_T, "connect");
  vx_settime(L, e, CURLINFO_APPCONNECT_TIME_T, "tls");
  vx_settime(L, e, CURLINFO_STARTTRANSFER_TIME_T, "first_byte");
  vx_settime(L, e, CURLINFO_TOTAL_TIME_T, "total");
  /* sent: the request head plus the body uploaded; received: the answer's head plus its body */
  if (curl_easy_getinfo(e, CURLINFO_REQUEST_SIZE, &req) != CURLE_OK || req < 0) req = 0;
  if (curl_easy_getinfo(e, CURLINFO_SIZE_UPLOAD_T, &up) != CURLE_OK || up < 0) up = 0;
  if (curl_easy_getinfo(e, CURLINFO_HEADER_SIZE, &head) != CURLE_OK || head < 0) head = 0;
  if (curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &down) != CURLE_OK || down < 0) down = 0;
  lua_pushinteger(L, (lua_Integer)req + (lua_Integer)up);
  lua_setfield(L, -2, "bytes_sent");
  lua_pushinteger(L, (lua_Integer)head + (lua_Integer)down);
  lua_setfield(L, -2, "bytes_received");
  return 1;
}

static int handle_isclosed(lua_State *L) {
  vx_handle *h = vx_checkudarg(L, 1, VX_HANDLE_MT, "vertexops handle");
  lua_pushboolean(L, h->easy == NULL);
  return 1;
}

static int handle_tostring(lua_State *L) {
  vx_handle *h = vx_checkudarg(L, 1, VX_HANDLE_MT, "vertexops handle");
  if (h->easy) lua_pushfstring(L, "vertexops.handle (%p)", (void *)h);
  else lua_pushliteral(L, "vertexops.handle (closed)");
  return 1;
}

static const luaL_Reg handle_methods[] = {
    {"call", handle_call},     {"start", handle_start}, {"done", handle_done},
    {"finish", handle_finish}, {"share", handle_share}, {"stats", handle_stats},
    {"info", handle_info},
    {"close", handle_close},   {"is_closed", handle_isclosed}, {NULL, NULL}};

static const luaL_Reg handle_funcs[] = {{"handle", core_handle}, {NULL, NULL}};

void vx_handle_open(lua_State *L) {
  vx_newclass(L, VX_HANDLE_MT, handle_close, handle_tostring, handle_methods);
  luaL_setfuncs(L, handle_funcs, 0);
}
