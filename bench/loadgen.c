/* bench/loadgen.c: N concurrent HTTP/1.1 requests, each on a connection of its own, all started at
 * once (libcurl multi), with a ping request sent every PING_MS milliseconds beside them, one at a
 * time, timed from its start to its last byte. The load specs of the OpenResty host
 * (spec/09_hosts_openresty_load_spec.lua) and bench/run.lua use it.
 *
 *   loadgen URL_PREFIX FIRST N SUFFIX PING_URL PING_MS
 *
 * Request i (0 <= i < N) gets URL_PREFIX, FIRST + i, SUFFIX. One line per ended transfer on stdout:
 *   R <http status> <ms> <1 if the body has "cancelled":true, else 0> <curl code>
 *   P <ms> <http status>
 * and at the end: W <wall ms from the first start to the last request's end>. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define BODY_MAX 4096

struct xfer {
  CURL *easy;
  size_t len;
  char body[BODY_MAX + 1];
};

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  struct xfer *x = ud;
  size_t len = size * n, room = BODY_MAX - x->len;
  if (len > room) len = room;
  memcpy(x->body + x->len, data, len);
  x->len += len;
  x->body[x->len] = 0;
  return size * n;
}

static CURL *make(struct xfer *x, const char *url) {
  CURL *e = curl_easy_init();
  if (!e) return NULL;
  x->easy = e;
  x->len = 0;
  x->body[0] = 0;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 120000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  return e;
}

static void sleep_ms(double ms) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ms / 1e3);
  ts.tv_nsec = (long)((ms - ts.tv_sec * 1e3) * 1e6);
  nanosleep(&ts, NULL);
}

static volatile sig_atomic_t stop;
static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

/* The pinging process: until SIGTERM. */
static int pinger(const char *url, long ping_ms) {
  struct xfer x;
  CURL *e;
  signal(SIGTERM, on_term);
  memset(&x, 0, sizeof x);
  if (!(e = make(&x, url))) return 1;
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
  while (!stop) {
    double t0 = now_ms(), total = 0;
    long status = 0;
    x.len = 0;
    if (curl_easy_perform(e) == CURLE_OK) {
      curl_easy_getinfo(e, CURLINFO_TOTAL_TIME, &total);
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    } else {
      total = (now_ms() - t0) / 1e3;
    }
    if (stop) break;
    printf("P %.1f %ld\n", total * 1e3, status);
    fflush(stdout);
    t0 = ping_ms - (now_ms() - t0);
    if (t0 > 0) sleep_ms(t0);
  }
  curl_easy_cleanup(e);
  return 0;
}

int main(int argc, char **argv) {
  CURLM *multi;
  struct xfer *xs;
  pid_t child;
  char url[4096];
  long first, n, ping_ms, running_reqs, i;
  int still = 0;
  double start, wall = 0;

  if (argc != 7) {
    fprintf(stderr, "usage: loadgen URL_PREFIX FIRST N SUFFIX PING_URL PING_MS\n");
    return 2;
  }
  first = atol(argv[2]);
  n = atol(argv[3]);
  ping_ms = atol(argv[6]);
  if (n < 1 || ping_ms < 1) return 2;
  if (curl_global_init(CURL_GLOBAL_DEFAULT)) return 1;
  setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines: the pinger writes to the same pipe */
  child = fork();
  if (child < 0) return 1;
  if (child == 0) _exit(pinger(argv[5], ping_ms));
  sleep_ms(200);
  multi = curl_multi_init();
  xs = calloc((size_t)n, sizeof *xs);
  if (!multi || !xs) return 1;
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, n + 16);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);

  start = now_ms();
  for (i = 0; i < n; i++) {
    snprintf(url, sizeof url, "%s%ld%s", argv[1], first + i, argv[4]);
    if (!make(&xs[i], url) || curl_multi_add_handle(multi, xs[i].easy)) return 1;
  }
  running_reqs = n;
  while (running_reqs > 0) {
    CURLMsg *msg;
    int left;
    if (curl_multi_perform(multi, &still)) return 1;
    while ((msg = curl_multi_info_read(multi, &left))) {
      struct xfer *x;
      long status = 0;
      double total = 0;
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(msg->easy_handle, CURLINFO_TOTAL_TIME, &total);
      printf("R %ld %.1f %d %d\n", status, total * 1e3, strstr(x->body, "\"cancelled\":true") != NULL,
             (int)msg->data.result);
      curl_multi_remove_handle(multi, x->easy);
      curl_easy_cleanup(x->easy);
      x->easy = NULL;
      running_reqs--;
      wall = now_ms() - start;
    }
    if (running_reqs > 0 && curl_multi_poll(multi, NULL, 0, 5, NULL)) return 1;
  }
  printf("W %.1f\n", wall);
  fflush(stdout);
  kill(child, SIGTERM);
  waitpid(child, NULL, 0);
  curl_multi_cleanup(multi);
  free(xs);
  curl_global_cleanup();
  return 0;
}
