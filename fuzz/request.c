/*
 * fuzz/request: request building and validation. fuzz/request.lua splits the input into fields
 * and drives core.build(call, name, region, opts, wait), core.check_options, core.check_url and
 * core.h1_request (the request reader of both transports, csrc/reader.c, and the URL grammar,
 * csrc/url.c, it shares with endpoints).
 * Aborts (see fuzz/request.lua) when a built URL holds a control byte, space or byte >= 0x7F, does
 * not start with the endpoint, or its escaped name/filter/page_token do not decode back; when an
 * endpoint check_url accepts is refused as a request URL or read with another host or port; when
 * h1_request writes a bare CR/LF/NUL or a line too many; or when a failure is not an error object
 * tagged TypeError or ValueError (AuthError for a token).
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_drive(fz_state(FUZZ_DIR "/request.lua"), data, size);
  return 0;
}
