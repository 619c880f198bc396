/* sigv4.c: AWS Signature Version 4 (header signing) with OpenSSL, for the aws1 credential source
 * of external_account files. A pure function: the request's parts, the credentials and the time
 * in; the canonical request, the string to sign and the Authorization header out. Which headers
 * a request carries and how it is serialized are policy, in lua/vertexops/auth/aws.lua. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "vx.h"

#define SIGV4_MAX_SECRET 512
#define SIGV4_MAX_PART ((size_t)1 << 20)

typedef struct {
  char *a; /* header name (lowercased) or query key */
  char *b; /* header value (trimmed) or query value */
} sigv4_pair;

static int sigv4_cmp(const void *x, const void *y) {
  const sigv4_pair *p = x, *q = y;
  int c = strcmp(p->a, q->a);
  return c ? c : strcmp(p->b, q->b);
}

static void sigv4_hex(const unsigned char *d, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  size_t i;
  for (i = 0; i < n; i++) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  out[2 * n] = '\0';
}

static void sigv4_sha256hex(const char *p, size_t n, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
  sigv4_hex(md, len, out);
}

static void sigv4_hmac(const unsigned char *key, size_t keylen, const char *msg, size_t n,
                       unsigned char out[32]) {
  unsigned int len = 32;
  HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, n, out, &len);
}

/* t[k] as a string (TypeError naming k otherwise); optional: "" when absent */
static const char *sigv4_field(lua_State *L, const char *k, int optional, size_t *len) {
  int ty = vx_rawfield(L, 1, k);
  const char *s;
  if (ty == LUA_TNIL && optional) {
    lua_pop(L, 1);
    *len = 0;
    return "";
  }
  if (ty != LUA_TSTRING) vx_typeerror(L, "sigv4: '%s' must be a string, got %s", k, luaL_typename(L, -1));
  s = lua_tolstring(L, -1, len);
  if (*len > SIGV4_MAX_PART) vx_valueerror(L, "sigv4: '%s' is longer than 1 MiB", k);
  lua_pop(L, 1); /* still referenced by the table at 1 */
  return s;
}

/* core.sigv4{method, path, query?, headers = {name = value}, payload?, region, service,
 *            access_key, secret_key, date = "YYYYMMDDTHHMMSSZ"}
 *   -> {authorization, signature, signed_headers, canonical_request, string_to_sign}
 * path is the canonical URI as given (not normalized again); query is split at '&' and its
 * name=value pairs sorted (they are taken as already URI-encoded); header names are lowercased
 * and sorted, values trimmed with inner runs of spaces made one. Every header given is signed
 * (x-amz-date and host are the caller's to include). No message carries the secret key. */
static int core_sigv4(lua_State *L) {
  size_t mlen, plen, qlen, bodylen, rlen, slen, aklen, sklen, dlen, nh = 0, nq = 0, total = 0, i;
  const char *method, *path, *query, *payload, *region, *service, *ak, *sk, *date;
  char *arena, *w;
  sigv4_pair *hs, *qs;
  char hash[65], sig[65];
  unsigned char k1[32], k2[32];
  unsigned char kkey[SIGV4_MAX_SECRET + 4];
  luaL_Buffer b;
  int top;
  vx_checktablearg(L, 1, "sigv4 request");
  lua_settop(L, 1);
  method = sigv4_field(L, "method", 0, &mlen);
  path = sigv4_field(L, "path", 0, &plen);
  query = sigv4_field(L, "query", 1, &qlen);
  payload = sigv4_field(L, "payload", 1, &bodylen);
  region = sigv4_field(L, "region", 0, &rlen);
  service = sigv4_field(L, "service", 0, &slen);
  ak = sigv4_field(L, "access_key", 0, &aklen);
  sk = sigv4_field(L, "secret_key", 0, &sklen);
  date = sigv4_field(L, "date", 0, &dlen);
  if (mlen == 0 || strspn(method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != mlen)
    return vx_valueerror(L, "sigv4: 'method' must be an upper-case HTTP method");
  if (plen == 0 || path[0] != '/' || strcspn(path, " \r\n\t") != plen || strlen(path) != plen)
    return vx_valueerror(L, "sigv4: 'path' must start with '/' and hold no space or control character");
  if (strcspn(query, " \r\n\t") != qlen || strlen(query) != qlen)
    return vx_valueerror(L, "sigv4: 'query' must hold no space or control character");
  if (rlen == 0 || strlen(region) != rlen || strcspn(region, "/ \r\n\t") != rlen)
    return vx_valueerror(L, "sigv4: 'region' must be a non-empty name without '/' or space");
  if (slen == 0 || strlen(service) != slen || strcspn(service, "/ \r\n\t") != slen)
    return vx_valueerror(L, "sigv4: 'service' must be a non-empty name without '/' or space");
  if (aklen == 0 || strlen(ak) != aklen || strcspn(ak, "/ ,\r\n\t") != aklen)
    return vx_valueerror(L, "sigv4: 'access_key' must be a non-empty key id without '/', ',' or space");
  if (sklen == 0 || sklen > SIGV4_MAX_SECRET)
    return vx_valueerror(L, "sigv4: 'secret_key' must be non-empty and at most %d bytes", SIGV4_MAX_SECRET);
  if (dlen != 16 || strspn(date, "0123456789") != 8 || date[8] != 'T' ||
      strspn(date + 9, "0123456789") != 6 || date[15] != 'Z')
    return vx_valueerror(L, "sigv4: 'date' must be YYYYMMDDTHHMMSSZ");

  /* pass 1: the headers' types and sizes (nothing allocated yet: raising is safe) */
  if (vx_rawfield(L, 1, "headers") != LUA_TTABLE)
    return vx_typeerror(L, "sigv4: 'headers' must be a table, got %s", luaL_typename(L, -1));
  /* stack: 1 request, 2 headers */
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    size_t kl, vl;
    const char *k, *v;
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      return vx_typeerror(L, "sigv4: 'headers' must map strings to strings");
    k = lua_tolstring(L, -2, &kl);
    v = lua_tolstring(L, -1, &vl);
    if (kl == 0 || strcspn(k, ":\r\n\t ") != kl || strlen(k) != kl)
      return vx_valueerror(L, "sigv4: a header name is empty or holds ':', space or a control character");
    if (vl > SIGV4_MAX_PART || strcspn(v, "\r\n") != vl || strlen(v) != vl)
      return vx_valueerror(L, "sigv4: the value of header '%s' holds a line break or NUL, or is too long", k);
    nh++;
    total += kl + vl + 2;
    lua_pop(L, 1);
  }
  if (nh == 0 || nh > 256) return vx_valueerror(L, "sigv4: 'headers' must hold 1 to 256 headers");
  for (i = 0; i < qlen; i++)
    if (query[i] == '&') nq++;
  nq = qlen ? nq + 1 : 0;
  arena = lua_newuserdata(L, (nh + nq) * sizeof(sigv4_pair) + total + 2 * qlen + 2 * nq + 16); /* 3 */
  hs = (sigv4_pair *)(void *)arena;
  qs = hs + nh;
  w = (char *)(qs + nq);

  /* pass 2: lowercased names, trimmed values (no Lua call here can raise) */
  i = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    size_t kl, vl, j;
    const char *k = lua_tolstring(L, -2, &kl), *v = lua_tolstring(L, -1, &vl);
    int space = 0;
    hs[i].a = w;
    for (j = 0; j < kl; j++) *w++ = (k[j] >= 'A' && k[j] <= 'Z') ? (char)(k[j] + 32) : k[j];
    *w++ = '\0';
    hs[i].b = w;
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
    for (j = 0; j < vl; j++) {
      if (v[j] == ' ' || v[j] == '\t') {
        if (!space) *w++ = ' ';
        space = 1;
      } else {
        *w++ = v[j];
        space = 0;
      }
    }
    *w++ = '\0';
    i++;
    lua_pop(L, 1);
  }
  qsort(hs, nh, sizeof *hs, sigv4_cmp);
  for (i = 1; i < nh; i++)
    if (strcmp(hs[i - 1].a, hs[i].a) == 0)
      return vx_valueerror(L, "sigv4: header '%s' is given twice", hs[i].a);

  /* the query's pairs, sorted by name then value; a pair without '=' gets an empty value */
  if (nq) {
    const char *p = query;
    for (i = 0; i < nq; i++) {
      const char *end = strchr(p, '&'), *eq;
      size_t n = end ? (size_t)(end - p) : strlen(p);
      eq = memchr(p, '=', n);
      qs[i].a = w;
      memcpy(w, p, eq ? (size_t)(eq - p) : n);
      w += eq ? (size_t)(eq - p) : n;
      *w++ = '\0';
      qs[i].b = w;
      if (eq) {
        memcpy(w, eq + 1, n - (size_t)(eq - p) - 1);
        w += n - (size_t)(eq - p) - 1;
      }
      *w++ = '\0';
      p += n + 1;
    }
    qsort(qs, nq, sizeof *qs, sigv4_cmp);
  }

  /* the canonical request */
  sigv4_sha256hex(payload, bodylen, hash);
  top = lua_gettop(L);
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, method, mlen);
  luaL_addchar(&b, '\n');
  luaL_addlstring(&b, path, plen);
  luaL_addchar(&b, '\n');
  for (i = 0; i < nq; i++) {
    if (i) luaL_addchar(&b, '&');
    luaL_addstring(&b, qs[i].a);
    luaL_addchar(&b, '=');
    luaL_addstring(&b, qs[i].b);
  }
  luaL_addchar(&b, '\n');
  for (i = 0; i < nh; i++) {
    luaL_addstring(&b, hs[i].a);
    luaL_addchar(&b, ':');
    luaL_addstring(&b, hs[i].b);
    luaL_addchar(&b, '\n');
  }
  luaL_addchar(&b, '\n');
  for (i = 0; i < nh; i++) {
    if (i) luaL_addchar(&b, ';');
    luaL_addstring(&b, hs[i].a);
  }
  luaL_addchar(&b, '\n');
  luaL_addlstring(&b, hash, 64);
  luaL_pushresult(&b); /* top+1: canonical request */
  {
    size_t n;
    const char *cr = lua_tolstring(L, top + 1, &n);
    sigv4_sha256hex(cr, n, hash);
  }
  /* signed headers: top+2 */
  luaL_buffinit(L, &b);
  for (i = 0; i < nh; i++) {
    if (i) luaL_addchar(&b, ';');
    luaL_addstring(&b, hs[i].a);
  }
  luaL_pushresult(&b);
  /* the scope (top+3) and the string to sign (top+4) */
  {
    char stamp[9];
    memcpy(stamp, date, 8);
    stamp[8] = '\0';
    lua_pushfstring(L, "%s/%s/%s/aws4_request", stamp, region, service);
  }
  lua_pushfstring(L, "AWS4-HMAC-SHA256\n%s\n%s\n%s", date, lua_tostring(L, top + 3), hash);

  /* the signing key: HMAC chain from "AWS4" .. secret, cleansed after use */
  memcpy(kkey, "AWS4", 4);
  memcpy(kkey + 4, sk, sklen);
  sigv4_hmac(kkey, sklen + 4, date, 8, k1);
  sigv4_hmac(k1, 32, region, rlen, k2);
  sigv4_hmac(k2, 32, service, slen, k1);
  sigv4_hmac(k1, 32, "aws4_request", 12, k2);
  {
    size_t n;
    const char *sts = lua_tolstring(L, top + 4, &n);
    sigv4_hmac(k2, 32, sts, n, k1);
  }
  sigv4_hex(k1, 32, sig);
  OPENSSL_cleanse(kkey, sizeof kkey);
  OPENSSL_cleanse(k1, sizeof k1);
  OPENSSL_cleanse(k2, sizeof k2);

  lua_createtable(L, 0, 5); /* top+5 */
  lua_pushfstring(L, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", ak,
                  lua_tostring(L, top + 3), lua_tostring(L, top + 2), sig);
  lua_setfield(L, -2, "authorization");
  lua_pushstring(L, sig);
  lua_setfield(L, -2, "signature");
  lua_pushvalue(L, top + 2);
  lua_setfield(L, -2, "signed_headers");
  lua_pushvalue(L, top + 1);
  lua_setfield(L, -2, "canonical_request");
  lua_pushvalue(L, top + 4);
  lua_setfield(L, -2, "string_to_sign");
  lua_pushvalue(L, top + 3);
  lua_setfield(L, -2, "scope");
  return 1;
}

static const luaL_Reg sigv4_funcs[] = {{"sigv4", core_sigv4}, {NULL, NULL}};

void vx_sigv4_open(lua_State *L) { luaL_setfuncs(L, sigv4_funcs, 0); }
