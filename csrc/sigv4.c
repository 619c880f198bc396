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

/* The request's string fields (the strings stay referenced by the request table at 1). */
typedef struct {
  const char *method, *path, *query, *payload, *region, *service, *ak, *sk, *date;
  size_t mlen, plen, qlen, bodylen, rlen, slen, aklen, sklen, dlen;
} sigv4_args;

/* Read the arguments: each field's type (TypeError), in the order the fields are listed. */
static void sigv4_readargs(lua_State *L, sigv4_args *r) {
  r->method = sigv4_field(L, "method", 0, &r->mlen);
  r->path = sigv4_field(L, "path", 0, &r->plen);
  r->query = sigv4_field(L, "query", 1, &r->qlen);
  r->payload = sigv4_field(L, "payload", 1, &r->bodylen);
  r->region = sigv4_field(L, "region", 0, &r->rlen);
  r->service = sigv4_field(L, "service", 0, &r->slen);
  r->ak = sigv4_field(L, "access_key", 0, &r->aklen);
  r->sk = sigv4_field(L, "secret_key", 0, &r->sklen);
  r->date = sigv4_field(L, "date", 0, &r->dlen);
}

/* Check the arguments' values (ValueError), before the headers are looked at. */
static void sigv4_checkargs(lua_State *L, const sigv4_args *r) {
  if (r->mlen == 0 || strspn(r->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != r->mlen)
    vx_valueerror(L, "sigv4: 'method' must be an upper-case HTTP method");
  if (r->plen == 0 || r->path[0] != '/' || strcspn(r->path, " \r\n\t") != r->plen || strlen(r->path) != r->plen)
    vx_valueerror(L, "sigv4: 'path' must start with '/' and hold no space or control character");
  if (strcspn(r->query, " \r\n\t") != r->qlen || strlen(r->query) != r->qlen)
    vx_valueerror(L, "sigv4: 'query' must hold no space or control character");
  if (r->rlen == 0 || strlen(r->region) != r->rlen || strcspn(r->region, "/ \r\n\t") != r->rlen)
    vx_valueerror(L, "sigv4: 'region' must be a non-empty name without '/' or space");
  if (r->slen == 0 || strlen(r->service) != r->slen || strcspn(r->service, "/ \r\n\t") != r->slen)
    vx_valueerror(L, "sigv4: 'service' must be a non-empty name without '/' or space");
  if (r->aklen == 0 || strlen(r->ak) != r->aklen || strcspn(r->ak, "/ ,\r\n\t") != r->aklen)
    vx_valueerror(L, "sigv4: 'access_key' must be a non-empty key id without '/', ',' or space");
  if (r->sklen == 0 || r->sklen > SIGV4_MAX_SECRET)
    vx_valueerror(L, "sigv4: 'secret_key' must be non-empty and at most %d bytes", SIGV4_MAX_SECRET);
  if (r->dlen != 16 || strspn(r->date, "0123456789") != 8 || r->date[8] != 'T' ||
      strspn(r->date + 9, "0123456789") != 6 || r->date[15] != 'Z')
    vx_valueerror(L, "sigv4: 'date' must be YYYYMMDDTHHMMSSZ");
}

/* Check the headers table at 2 (pass 1: types and sizes; nothing allocated yet, raising is
 * safe); returns their number, *total the bytes of their names and values. */
static size_t sigv4_checkheaders(lua_State *L, size_t *total) {
  size_t nh = 0;
  *total = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    size_t kl, vl;
    const char *k, *v;
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      vx_typeerror(L, "sigv4: 'headers' must map strings to strings");
    k = lua_tolstring(L, -2, &kl);
    v = lua_tolstring(L, -1, &vl);
    if (kl == 0 || strcspn(k, ":\r\n\t ") != kl || strlen(k) != kl)
      vx_valueerror(L, "sigv4: a header name is empty or holds ':', space or a control character");
    if (vl > SIGV4_MAX_PART || strcspn(v, "\r\n") != vl || strlen(v) != vl)
      vx_valueerror(L, "sigv4: the value of header '%s' holds a line break or NUL, or is too long", k);
    nh++;
    *total += kl + vl + 2;
    lua_pop(L, 1);
  }
  if (nh == 0 || nh > 256) vx_valueerror(L, "sigv4: 'headers' must hold 1 to 256 headers");
  return nh;
}

/* Copies a header value into w trimmed, inner runs of spaces and tabs made one space; returns
 * the end of what it wrote (after the NUL). */
static char *sigv4_trimvalue(char *w, const char *v, size_t vl) {
  size_t j;
  int space = 0;
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
  return w;
}

/* Canonical headers (pass 2 over the table at 2): lowercased names, trimmed values into the
 * arena at w, sorted; a name given twice is a ValueError (the arena is a userdata: no leak).
 * Returns the arena's next free byte. */
static char *sigv4_canonheaders(lua_State *L, sigv4_pair *hs, size_t nh, char *w) {
  size_t i = 0, j;
  lua_pushnil(L);
  while (lua_next(L, 2)) { /* no Lua call here can raise */
    size_t kl, vl;
    const char *k = lua_tolstring(L, -2, &kl), *v = lua_tolstring(L, -1, &vl);
    hs[i].a = w;
    for (j = 0; j < kl; j++) *w++ = (k[j] >= 'A' && k[j] <= 'Z') ? (char)(k[j] + 32) : k[j];
    *w++ = '\0';
    hs[i].b = w;
    w = sigv4_trimvalue(w, v, vl);
    i++;
    lua_pop(L, 1);
  }
  qsort(hs, nh, sizeof *hs, sigv4_cmp);
  for (i = 1; i < nh; i++)
    if (strcmp(hs[i - 1].a, hs[i].a) == 0) vx_valueerror(L, "sigv4: header '%s' is given twice", hs[i].a);
  return w;
}

/* The query's nq pairs into the arena at w, sorted by name then value; a pair without '=' gets
 * an empty value. */
static void sigv4_canonquery(const char *query, sigv4_pair *qs, size_t nq, char *w) {
  const char *p = query;
  size_t i;
  for (i = 0; i < nq; i++) {
    const char *end = strchr(p, '&'), *eq;
    size_t n = end ? (size_t)(end - p) : strlen(p);
    size_t kn;
    eq = memchr(p, '=', n);
    kn = eq ? (size_t)(eq - p) : n;
    qs[i].a = w;
    memcpy(w, p, kn);
    w += kn;
    *w++ = '\0';
    qs[i].b = w;
    if (eq) {
      memcpy(w, eq + 1, n - kn - 1);
      w += n - kn - 1;
    }
    *w++ = '\0';
    p += n + 1;
  }
  if (nq) qsort(qs, nq, sizeof *qs, sigv4_cmp);
}

/* Appends the header names joined by ';' (the signed headers). */
static void sigv4_addsigned(luaL_Buffer *b, const sigv4_pair *hs, size_t nh) {
  size_t i;
  for (i = 0; i < nh; i++) {
    if (i) luaL_addchar(b, ';');
    luaL_addstring(b, hs[i].a);
  }
}

/* Pushes the canonical request: method, path, query, header lines, signed headers, payload hash. */
static void sigv4_pushcanonical(lua_State *L, const sigv4_args *r, const sigv4_pair *hs, size_t nh,
                                const sigv4_pair *qs, size_t nq) {
  char hash[65];
  size_t i;
  luaL_Buffer b;
  sigv4_sha256hex(r->payload, r->bodylen, hash);
  luaL_buffinit(L, &b);
  luaL_addlstring(&b, r->method, r->mlen);
  luaL_addchar(&b, '\n');
  luaL_addlstring(&b, r->path, r->plen);
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
  sigv4_addsigned(&b, hs, nh);
  luaL_addchar(&b, '\n');
  luaL_addlstring(&b, hash, 64);
  luaL_pushresult(&b);
}

/* Pushes the scope (date/region/service/aws4_request), then the string to sign of the canonical
 * request at cr. */
static void sigv4_pushtosign(lua_State *L, const sigv4_args *r, int cr) {
  char stamp[9], hash[65];
  size_t n;
  const char *s = lua_tolstring(L, cr, &n);
  sigv4_sha256hex(s, n, hash);
  memcpy(stamp, r->date, 8);
  stamp[8] = '\0';
  lua_pushfstring(L, "%s/%s/%s/aws4_request", stamp, r->region, r->service);
  lua_pushfstring(L, "AWS4-HMAC-SHA256\n%s\n%s\n%s", r->date, lua_tostring(L, -1), hash);
}

/* Key derivation and signature: the HMAC chain from "AWS4" .. secret over date, region, service
 * and "aws4_request", then over the string to sign; sig gets its hex. Calls no Lua function
 * (nothing can raise between the key's copy and its cleansing) and allocates nothing. */
static void sigv4_sign(const sigv4_args *r, const char *sts, size_t stslen, char sig[65]) {
  unsigned char k1[32], k2[32];
  unsigned char kkey[SIGV4_MAX_SECRET + 4];
  memcpy(kkey, "AWS4", 4);
  memcpy(kkey + 4, r->sk, r->sklen);
  sigv4_hmac(kkey, r->sklen + 4, r->date, 8, k1);
  sigv4_hmac(k1, 32, r->region, r->rlen, k2);
  sigv4_hmac(k2, 32, r->service, r->slen, k1);
  sigv4_hmac(k1, 32, "aws4_request", 12, k2);
  sigv4_hmac(k2, 32, sts, stslen, k1);
  sigv4_hex(k1, 32, sig);
  OPENSSL_cleanse(kkey, sizeof kkey);
  OPENSSL_cleanse(k1, sizeof k1);
  OPENSSL_cleanse(k2, sizeof k2);
}

/* The result table, from the strings at top+1 (canonical request), top+2 (signed headers),
 * top+3 (scope) and top+4 (string to sign). */
static void sigv4_pushresult(lua_State *L, int top, const char *ak, const char *sig) {
  lua_createtable(L, 0, 6);
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
}

/* core.sigv4{method, path, query?, headers = {name = value}, payload?, region, service,
 *            access_key, secret_key, date = "YYYYMMDDTHHMMSSZ"}
 *   -> {authorization, signature, signed_headers, canonical_request, string_to_sign, scope}
 * path is the canonical URI as given (not normalized again); query is split at '&' and its
 * name=value pairs sorted (they are taken as already URI-encoded); header names are lowercased
 * and sorted, values trimmed with inner runs of spaces made one. Every header given is signed
 * (x-amz-date and host are the caller's to include). No message carries the secret key.
 * Memory: the pairs live in a userdata (collected on any error); the digests are one-shot
 * (EVP_Digest, HMAC: no context to free); the key is cleansed in sigv4_sign. */
static int core_sigv4(lua_State *L) {
  sigv4_args r;
  size_t nh, nq = 0, total, i;
  sigv4_pair *hs, *qs;
  char *w, sig[65];
  luaL_Buffer b;
  int top;
  vx_checktablearg(L, 1, "sigv4 request");
  lua_settop(L, 1);
  sigv4_readargs(L, &r);
  sigv4_checkargs(L, &r);
  if (vx_rawfield(L, 1, "headers") != LUA_TTABLE)
    return vx_typeerror(L, "sigv4: 'headers' must be a table, got %s", luaL_typename(L, -1));
  nh = sigv4_checkheaders(L, &total); /* stack: 1 request, 2 headers */
  for (i = 0; i < r.qlen; i++)
    if (r.query[i] == '&') nq++;
  nq = r.qlen ? nq + 1 : 0;
  hs = lua_newuserdata(L, (nh + nq) * sizeof(sigv4_pair) + total + 2 * r.qlen + 2 * nq + 16); /* 3 */
  qs = hs + nh;
  w = sigv4_canonheaders(L, hs, nh, (char *)(qs + nq));
  sigv4_canonquery(r.query, qs, nq, w);

  top = lua_gettop(L);
  sigv4_pushcanonical(L, &r, hs, nh, qs, nq); /* top+1 */
  luaL_buffinit(L, &b);
  sigv4_addsigned(&b, hs, nh);
  luaL_pushresult(&b);                     /* top+2 */
  sigv4_pushtosign(L, &r, top + 1);        /* top+3 scope, top+4 string to sign */
  {
    size_t n;
    const char *sts = lua_tolstring(L, top + 4, &n);
    sigv4_sign(&r, sts, n, sig);
  }
  sigv4_pushresult(L, top, r.ak, sig);
  return 1;
}

static const luaL_Reg sigv4_funcs[] = {{"sigv4", core_sigv4}, {NULL, NULL}};

void vx_sigv4_open(lua_State *L) { luaL_setfuncs(L, sigv4_funcs, 0); }
