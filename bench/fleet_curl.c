/*
 * The floor for cancel_all: raw libcurl multi in C doing the same sweep vertexops does -- list
 * pages of {parent}/operations (filter done=false, pageSize P) and cancel every operation listed,
 * at most WINDOW requests in flight (the page fetch among them), HTTP/2 multiplexed over TLS,
 * the same headers per request. The next page is fetched once the current one is all dispatched,
 * as cancel_all does. No JSON library: names and the page token are read off the text.
 *
 *   fleet_curl ENDPOINT CA_FILE PARENT WINDOW PAGE_SIZE
 *
 * Prints one JSON line: {"calls":N,"pages":P,"seconds":S,"rss_kb":K,"failed":F}.
 */
#include "raw_curl.h"

typedef struct {
  char *data;
  size_t len, cap;
} buf;

typedef struct {
  CURL *e;
  struct curl_slist *h;
  buf body;
  int is_list;
} slot;

static size_t sink(char *p, size_t s, size_t n, void *ud) {
  buf *b = ud;
  size_t k = s * n;
  if (b->len + k + 1 > b->cap) {
    size_t cap = (b->len + k + 1) * 2;
    char *d = realloc(b->data, cap);
    if (!d) return 0;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, k);
  b->len += k;
  b->data[b->len] = '\0';
  return k;
}

static void start(CURLM *m, slot *sl, const char *url, const char *ca, const char *name, int post) {
  if (!sl->e) sl->e = curl_easy_init();
  else curl_easy_reset(sl->e);
  sl->body.len = 0;
  sl->h = headers(post ? "name" : "parent", name, strlen(name), post);
  sl->is_list = !post;
  setup(sl->e, url, ca, sl->h, post);
  curl_easy_setopt(sl->e, CURLOPT_WRITEFUNCTION, sink);
  curl_easy_setopt(sl->e, CURLOPT_WRITEDATA, &sl->body);
  curl_easy_setopt(sl->e, CURLOPT_PRIVATE, (char *)sl);
  curl_multi_add_handle(m, sl->e);
}

/* the value of the next "key":"..." in s (JSON's \/ undone) copied to out; returns the text after it */
static const char *field(const char *s, const char *key, char *out, size_t size) {
  const char *p = strstr(s, key), *q;
  size_t n = 0;
  if (!p) return NULL;
  for (q = p + strlen(key); *q && *q != '"' && n + 1 < size; q++) {
    if (*q == '\\' && q[1]) q++;
    out[n++] = *q;
  }
  out[n] = '\0';
  return q;
}

int main(int argc, char **argv) {
  const char *endpoint, *ca, *parent;
  int window, psize, i, in_flight = 0, calls = 0, failed = 0, pages = 0, listing = 0, more = 1;
  char **names = NULL, token[256] = "", url[2048];
  int nnames = 0, next = 0;
  slot *slots, **free_slots;
  int nfree;
  CURLM *m;
  double t0, t1;
  if (argc < 6) {
    fprintf(stderr, "usage: fleet_curl ENDPOINT CA_FILE PARENT WINDOW PAGE_SIZE\n");
    return 2;
  }
  endpoint = argv[1];
  ca = argv[2];
  parent = argv[3];
  window = atoi(argv[4]);
  psize = atoi(argv[5]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  m = multi();
  slots = calloc((size_t)window, sizeof *slots);
  free_slots = calloc((size_t)window, sizeof *free_slots);
  for (i = 0; i < window; i++) free_slots[i] = &slots[window - 1 - i];
  nfree = window;
  t0 = now();
  for (;;) {
    int running, left;
    CURLMsg *msg;
    /* the next page once this one is all dispatched */
    if (more && !listing && next >= nnames && nfree > 0) {
      slot *sl = free_slots[--nfree];
      snprintf(url, sizeof url, "%s/v1beta1/%s/operations?filter=done%%3Dfalse&pageSize=%d%s%s", endpoint, parent,
               psize, token[0] ? "&pageToken=" : "", token);
      for (i = 0; i < nnames; i++) free(names[i]);
      nnames = next = 0;
      start(m, sl, url, ca, parent, 0);
      listing = 1;
      in_flight++;
    }
    while (next < nnames && nfree > 0) {
      slot *sl = free_slots[--nfree];
      snprintf(url, sizeof url, "%s/v1beta1/%s:cancel", endpoint, names[next]);
      start(m, sl, url, ca, names[next], 1);
      next++;
      in_flight++;
    }
    if (in_flight == 0 && !more && next >= nnames) break;
    curl_multi_perform(m, &running);
    while ((msg = curl_multi_info_read(m, &left)) != NULL) {
      slot *sl;
      long code = 0;
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
      curl_easy_getinfo(sl->e, CURLINFO_RESPONSE_CODE, &code);
      curl_multi_remove_handle(m, sl->e);
      curl_slist_free_all(sl->h);
      sl->h = NULL;
      in_flight--;
      if (sl->is_list) {
        const char *p = sl->body.data ? sl->body.data : "";
        char name[1024];
        int cap = 0;
        listing = 0;
        pages++;
        if (msg->data.result != CURLE_OK || code != 200) {
          fprintf(stderr, "list failed: %d %ld\n", (int)msg->data.result, code);
          return 1;
        }
        more = field(p, "\"nextPageToken\":\"", token, sizeof token) != NULL;
        while ((p = field(p, "\"name\":\"", name, sizeof name)) != NULL) {
          if (nnames == cap) {
            cap = cap ? cap * 2 : 1024;
            names = realloc(names, (size_t)cap * sizeof *names);
          }
          names[nnames++] = strdup(name);
        }
      } else {
        calls++;
        if (msg->data.result != CURLE_OK || code != 200) failed++;
      }
      free_slots[nfree++] = sl;
    }
    if (in_flight > 0) curl_multi_poll(m, NULL, 0, 10, NULL); /* 10 ms, as cancel_all: see RESULTS.md */
  }
  t1 = now();
  printf("{\"calls\":%d,\"pages\":%d,\"seconds\":%.6f,\"rss_kb\":%ld,\"failed\":%d}\n", calls, pages, t1 - t0,
         rss_kb(), failed);
  for (i = 0; i < window; i++) {
    if (slots[i].e) curl_easy_cleanup(slots[i].e);
    free(slots[i].body.data);
  }
  for (i = 0; i < nnames; i++) free(names[i]);
  free(names);
  free(slots);
  free(free_slots);
  curl_multi_cleanup(m);
  curl_global_cleanup();
  return failed ? 1 : 0;
}
