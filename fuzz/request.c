/*
 * fuzz/request: request building and validation. fuzz/request.lua splits the input into fields
 * and drives core.build(call, name, region, opts, wait), core.check_options and core.check_url.
 * Aborts (see fuzz/request.lua) when a built URL holds a control byte, space or byte >= 0x7F, does
 * not start with the endpoint, or its escaped name/filter/page_token do not decode back; or when a
 * failure is not an error object tagged TypeError or ValueError.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_drive(fz_state(FUZZ_DIR "/request.lua"), data, size);
  return 0;
}
