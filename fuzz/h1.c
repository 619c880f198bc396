/*
 * fuzz/h1: the HTTP/1.1 response parser of the cosocket transport (csrc/h1.c). fuzz/h1.lua feeds
 * the input (after its first byte, the split seed) to core.h1() whole, then in pieces whose sizes
 * come from the seed, then one byte at a time, ending with p:eof() when more was wanted; aborts
 * (see fuzz/h1.lua) when the three disagree, when an outcome is not "done" or "nil, error object"
 * tagged ConnectionError / ResponseTypeError, when a done response breaks the caps or its
 * classification is not what core.classify gives (nor p:finish's, which must leave the parser reset),
 * or the Lua stack is left unbalanced (fuzz/fuzz.h).
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_drive(fz_state(FUZZ_DIR "/h1.lua"), data, size);
  return 0;
}
