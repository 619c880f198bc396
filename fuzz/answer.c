/*
 * fuzz/answer: answer classification. fuzz/answer.lua drives core.classify(status, header_block,
 * body [, want_headers]), the pure classification handle:call and handle:finish end in, with the
 * input: byte 0 bit 0 want_headers, bit 1 a status outside 100..999 is passed as is; then the
 * header block up to the first "\r\n\r\n" (its first line "HTTP/x NNN" gives the status), then
 * the body. Aborts (see fuzz/answer.lua) when an outcome is not "true, table[, headers]" or
 * "false, error object" with a contract tag, or the Lua stack is left unbalanced (fuzz/fuzz.h).
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_drive(fz_state(FUZZ_DIR "/answer.lua"), data, size);
  return 0;
}
