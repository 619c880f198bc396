/*
 * The floor: raw libcurl in C sending the same cancel requests vertexops sends (same headers,
 * empty POST body, HTTP/2 over TLS), with nothing else on top.
 *
 *   raw_curl seq   URL CA_FILE N          one reused easy handle, N sequential calls
 *   raw_curl multi URL CA_FILE N CONC [MAXCONN]  one multi handle, N calls, CONC at a time,
 *                                         multiplexed over at most MAXCONN connections (default
 *                                         ceil(CONC / 100): Google's 100 streams per connection)
 *
 * Prints one JSON line: {"calls":N,"seconds":S,"rss_kb":K,"failed":F}.
 */
#include "raw_curl.h"

static size_t sink(char *p, size_t s, size_t n, void *ud) {
  (void)p;
  (void)ud;
  return s * n;
}

static CURL *easy(const char *url, const char *ca, struct curl_slist *h) {
  CURL *e = curl_easy_init();
  setup(e, url, ca, h, 1);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
  return e;
}

int main(int argc, char **argv) {
  const char *mode, *url, *ca;
  int n, conc, i, failed = 0;
  struct curl_slist *h;
  double t0, t1;
  long code, maxconn;
  if (argc < 5) {
    fprintf(stderr, "usage: raw_curl seq|multi URL CA_FILE N [CONC]\n");
    return 2;
  }
  mode = argv[1];
  url = argv[2];
  ca = argv[3];
  n = atoi(argv[4]);
  conc = argc > 5 ? atoi(argv[5]) : 100;
  maxconn = argc > 6 ? atol(argv[6]) : (conc + 99) / 100;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  {
    const char *name = strstr(url, "/v1beta1/");
    name = name ? name + 9 : "";
    h = headers("name", name, strcspn(name, ":"), 1);
  }
  t0 = now();
  if (strcmp(mode, "seq") == 0) {
    CURL *e = easy(url, ca, h);
    for (i = 0; i < n; i++) {
      code = 0;
      if (curl_easy_perform(e) != CURLE_OK) failed++;
      else if (curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code), code != 200) failed++;
    }
    curl_easy_cleanup(e);
  } else {
    CURLM *m = multi();
    CURL **pool = calloc((size_t)conc, sizeof *pool);
    int started = 0, done = 0, running = 0, left;
    /* past the server's stream limit, wait for a free stream rather than open a connection per
     * request (with PIPEWAIT, the same tuning vertexops' multi handle has) */
    if (maxconn > 0) curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, maxconn);
    for (i = 0; i < conc && started < n; i++, started++) {
      pool[i] = easy(url, ca, h);
      curl_multi_add_handle(m, pool[i]);
    }
    while (done < n) {
      CURLMsg *msg;
      curl_multi_perform(m, &running);
      while ((msg = curl_multi_info_read(m, &left)) != NULL) {
        CURL *e;
        if (msg->msg != CURLMSG_DONE) continue;
        e = msg->easy_handle;
        code = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
        if (msg->data.result != CURLE_OK || code != 200) failed++;
        done++;
        curl_multi_remove_handle(m, e);
        if (started < n) {
          started++;
          curl_multi_add_handle(m, e); /* reuse the easy handle for the next call */
        } else {
          curl_easy_cleanup(e);
        }
      }
      if (done < n) curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    curl_multi_cleanup(m);
    free(pool);
  }
  t1 = now();
  curl_slist_free_all(h);
  printf("{\"calls\":%d,\"seconds\":%.6f,\"rss_kb\":%ld,\"failed\":%d}\n", n, t1 - t0, rss_kb(), failed);
  curl_global_cleanup();
  return failed ? 1 : 0;
}
