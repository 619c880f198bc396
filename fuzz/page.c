/*
 * fuzz/page: cancel_all's listing read for names only. fuzz/page.lua drives core.page_names(body)
 * (csrc/json.c, vx_pushpagenames) with the input as a listing page's body and holds it to the full
 * path: core.classify decoding the page and operation.check checking each operation, as
 * Client:_list does. Aborts (see fuzz/page.lua) when page_names raises, returns anything but nil
 * or a page of names, takes a page the full path refuses, or reads one differently.
 */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_drive(fz_state(FUZZ_DIR "/page.lua"), data, size);
  return 0;
}
