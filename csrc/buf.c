/* buf.c: the growable, capped byte buffers libcurl's callbacks fill (no Lua call in here: the
 * callbacks run inside libcurl). */
#include <stdlib.h>
#include <string.h>

#include "vx.h"

size_t vx_bufappend(vx_buf *b, const char *p, size_t n) {
  if (b->len + n > b->limit) {
    b->overflow = 1;
    return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
  }
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : VX_BUF_FIRST;
    char *d;
    while (cap < b->len + n + 1) cap *= 2;
    d = realloc(b->data, cap);
    if (!d) {
      b->overflow = 2;
      return 0;
    }
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return n;
}

void vx_bufkeep(vx_buf *b, size_t keep) {
  b->len = 0;
  b->overflow = 0;
  if (b->cap > keep) { /* give a large buffer back after use */
    free(b->data);
    b->data = NULL;
    b->cap = 0;
  }
}

void vx_bufreset(vx_buf *b) { vx_bufkeep(b, VX_BUF_KEEP); }
