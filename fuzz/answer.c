/*
 * fuzz/answer: answer classification. Drives the real vx_result of csrc/vertexops.c (included
 * here so its static functions are reachable) on a handle whose header and body buffers hold the
 * input, with curl_easy_getinfo replaced by fz_getinfo so the status comes from the input too:
 *   byte 0: bits 0-4 pick a libcurl result (0: CURLE_OK), bit 5 want_headers, bit 6 the body
 *           overflowed its limit, bit 7 the headers did;
 *   then the header block up to the first "\r\n\r\n" (its first line "HTTP/x NNN" gives the
 *   status), then the body.
 * fuzz/answer.lua checks the outcome; this file aborts when vx_result leaves the Lua stack
 * unbalanced (more than one value beyond its results) or returns another count than 2 (3 for a success with want_headers).
 */
#define CURL_DISABLE_TYPECHECK
#include <curl/curl.h>
static long fz_status;
static CURLcode fz_getinfo(CURL *e, CURLINFO info, ...);
#undef curl_easy_getinfo
#define curl_easy_getinfo fz_getinfo
#include "../csrc/vertexops.c"
#undef curl_easy_getinfo
#include "fuzz.h"

/* CURLINFO_RESPONSE_CODE is the input's status; every other long is 0 */
static CURLcode fz_getinfo(CURL *e, CURLINFO info, ...) {
  va_list ap;
  (void)e;
  va_start(ap, info);
  if ((info & CURLINFO_TYPEMASK) == CURLINFO_LONG) *va_arg(ap, long *) = info == CURLINFO_RESPONSE_CODE ? fz_status : 0;
  va_end(ap);
  return CURLE_OK;
}

static const CURLcode fz_codes[] = {
    CURLE_OK, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_CONNECT, CURLE_SSL_CONNECT_ERROR,
    CURLE_PEER_FAILED_VERIFICATION, CURLE_OPERATION_TIMEDOUT, CURLE_WRITE_ERROR, CURLE_RECV_ERROR,
    CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_PARTIAL_FILE,
    CURLE_SSL_CACERT_BADFILE, CURLE_UNSUPPORTED_PROTOCOL, CURLE_ABORTED_BY_CALLBACK};

static const uint8_t *fz_data;
static size_t fz_size;

/* fuzz.classify(): the input's outcome through vx_result, as handle:call would return it */
static int fz_classify(lua_State *L) {
  vx_handle h;
  const uint8_t *p = fz_data + 1, *end = fz_data + fz_size, *sep;
  int flags = fz_data[0], n, top;
  size_t i;
  memset(&h, 0, sizeof h);
  for (sep = p; sep + 4 <= end && memcmp(sep, "\r\n\r\n", 4) != 0; sep++) {
  }
  if (sep + 4 > end) sep = end;
  fz_status = 0;
  if (sep - p > 9 && memcmp(p, "HTTP/", 5) == 0) {
    const uint8_t *s = memchr(p, ' ', (size_t)(sep - p));
    for (i = 1; s && s + i < sep && i <= 9 && s[i] >= '0' && s[i] <= '9'; i++)
      fz_status = fz_status * 10 + (s[i] - '0');
  }
  h.head.data = (char *)p; /* vx_result only reads them */
  h.head.len = (size_t)(sep - p);
  h.body.data = sep + 4 <= end ? (char *)sep + 4 : NULL;
  h.body.len = sep + 4 <= end ? (size_t)(end - sep - 4) : 0;
  h.body.overflow = (flags >> 6) & 1;
  h.head.overflow = (flags >> 7) & 1;
  h.want_headers = (flags >> 5) & 1;
  lua_settop(L, 0);
  top = lua_gettop(L);
  n = vx_result(L, &h, fz_codes[(flags & 31) % (sizeof fz_codes / sizeof fz_codes[0])]);
  /* an error result may sit above the headers table it was made from: at most one extra value */
  if (lua_gettop(L) < top + n || lua_gettop(L) > top + n + 1) fz_fail("stack", "vx_result left the stack unbalanced");
  if (n != 2 && !(n == 3 && lua_toboolean(L, 1) && h.want_headers)) fz_fail("results", "unexpected count");
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int ready;
  lua_State *L = fz_state(FUZZ_DIR "/answer.lua");
  if (!ready) {
    lua_pushcfunction(L, fz_classify);
    lua_setglobal(L, "fuzz_classify");
    ready = 1;
  }
  if (size == 0) return 0;
  fz_data = data;
  fz_size = size;
  fz_drive(L, data, size);
  return 0;
}
