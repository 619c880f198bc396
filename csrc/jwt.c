/* jwt.c: what service-account JWTs need from C -- base64url and RS256 signatures (OpenSSL). The
 * claims and the token exchange are policy, in lua/vertexops/auth/service_account.lua. */
#include <stdint.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "vx.h"

/* core.b64url(s) -> s in base64url without padding (RFC 7515) */
static int core_b64url(lua_State *L) {
  size_t n, i, out;
  const unsigned char *s = (const unsigned char *)vx_checkstringarg(L, 1, "data", &n);
  char *p;
  if (n > ((size_t)64 << 20)) return vx_valueerror(L, "b64url: input too large");
  p = lua_newuserdata(L, 4 * ((n + 2) / 3) + 1); /* scratch space the GC owns */
  out = (size_t)EVP_EncodeBlock((unsigned char *)p, s, (int)n);
  while (out > 0 && p[out - 1] == '=') out--;
  for (i = 0; i < out; i++) {
    if (p[i] == '+') p[i] = '-';
    else if (p[i] == '/') p[i] = '_';
  }
  lua_pushlstring(L, p, out);
  return 1;
}

/* The pass-phrase callback: there is none to give (an encrypted key fails at once). */
static int vx_nopassphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  *(int *)u = 1;
  return -1;
}

/* core.rs256(pem, data) -> signature | nil, reason
 * Signs data with SHA-256 and the RSA private key in pem (PKCS#8 or PKCS#1). The reason never
 * contains key material. */
static int core_rs256(lua_State *L) {
  size_t pemlen, datalen, siglen = 0;
  const char *pem = vx_checkstringarg(L, 1, "pem", &pemlen);
  const char *data = vx_checkstringarg(L, 2, "data", &datalen);
  const char *why = NULL;
  BIO *bio = NULL;
  EVP_PKEY *key = NULL;
  EVP_MD_CTX *md = NULL;
  unsigned char *sig = NULL;
  unsigned char out[2048]; /* RSA keys up to 16384 bits */
  int encrypted = 0;
  if (pemlen > INT32_MAX) {
    lua_pushnil(L);
    lua_pushliteral(L, "private key too large");
    return 2;
  }
  bio = BIO_new_mem_buf(pem, (int)pemlen);
  /* never OpenSSL's default pass-phrase callback, which prompts on the terminal */
  if (bio) key = PEM_read_bio_PrivateKey(bio, NULL, vx_nopassphrase, &encrypted);
  if (!key && encrypted)
    why = "private_key is encrypted; vertexops never asks for a pass phrase (use an unencrypted key)";
  else if (!key) why = "private_key is not a PEM private key";
  else if (EVP_PKEY_base_id(key) != EVP_PKEY_RSA) why = "private_key is not an RSA key";
  if (!why) {
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, NULL, &siglen, (const unsigned char *)data, datalen) != 1 ||
        (sig = OPENSSL_malloc(siglen)) == NULL ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)data, datalen) != 1)
      why = "signing with the private key failed";
  }
  ERR_clear_error(); /* OpenSSL's queue may name the PEM parser's state; never surface it */
  if (!why && siglen > sizeof out) why = "signature too large";
  if (!why) memcpy(out, sig, siglen);
  /* free everything before any Lua call that could raise */
  OPENSSL_free(sig);
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
  BIO_free(bio);
  if (why) {
    lua_pushnil(L);
    lua_pushstring(L, why);
    return 2;
  }
  lua_pushlstring(L, (const char *)out, siglen);
  return 1;
}

static const luaL_Reg jwt_funcs[] = {{"b64url", core_b64url}, {"rs256", core_rs256}, {NULL, NULL}};

void vx_jwt_open(lua_State *L) { luaL_setfuncs(L, jwt_funcs, 0); }
