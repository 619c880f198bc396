/*
 * What the raw libcurl floors (bench/raw_curl.c, bench/fleet_curl.c) share: the clock, the peak
 * RSS, the headers vertexops sends and the easy and multi handles tuned as vertexops tunes its own
 * (HTTP/2 over TLS, PIPEWAIT, multiplexing). Static: each floor is one file with this header.
 */
#ifndef RAW_CURL_H
#define RAW_CURL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = 0;
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) kb = atol(line + 6);
  fclose(f);
  return kb;
}

/* the headers vertexops sends (Content-Type for a POST), with x-goog-request-params: key= the n
 * bytes of value, its slashes escaped */
static struct curl_slist *headers(const char *key, const char *value, size_t n, int post) {
  struct curl_slist *h = NULL;
  char params[1200], *p = params;
  size_t i;
  h = curl_slist_append(h, "Accept: application/json");
  if (post) h = curl_slist_append(h, "Content-Type: application/json");
  h = curl_slist_append(h, "User-Agent: raw-libcurl");
  h = curl_slist_append(h, "x-goog-api-client: gl-c raw-libcurl");
  p += snprintf(p, 64, "x-goog-request-params: %s=", key);
  for (i = 0; i < n && value[i] && p < params + sizeof params - 4; i++) {
    if (value[i] == '/') p += sprintf(p, "%%2F");
    else *p++ = value[i];
  }
  *p = '\0';
  h = curl_slist_append(h, params);
  h = curl_slist_append(h, "Authorization: Bearer test-token");
  return h;
}

/* sets up e for one call to url (an empty POST body for a POST, GET otherwise) */
static void setup(CURL *e, const char *url, const char *ca, struct curl_slist *h, int post) {
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_CAINFO, ca);
  curl_easy_setopt(e, CURLOPT_CAPATH, NULL);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  if (post) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
}

/* a multi handle multiplexing HTTP/2 streams */
static CURLM *multi(void) {
  CURLM *m = curl_multi_init();
  curl_multi_setopt(m, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
  curl_multi_setopt(m, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
  return m;
}

#endif
