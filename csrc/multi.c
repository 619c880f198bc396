/* multi.c: the multi handle (vertexops.multi) -- non-blocking transfers, HTTP/2 multiplexing.
 * It keeps a list of the easy handles added to it, so either side can be collected first. */
#include <stdio.h>
#include <string.h>

/* The streams one HTTP/2 connection carries at Google's front ends (SETTINGS_MAX_CONCURRENT_STREAMS),
 * also libcurl's own default: what vx_cap counts a connection for. */
#define VX_HOST_STREAMS 100L

#include "vx.h"

/* Takes h out of its multi handle (if it is in one). Safe from __gc of either side. */
void vx_detach(vx_handle *h) {
  vx_multi *m = h->multi;
  if (!m) return;
  /* from __gc too, where nothing can be raised: a failure here leaves nothing to undo */
  if (m->multi && h->easy) (void)curl_multi_remove_handle(m->multi, h->easy);
  if (h->prev) h->prev->next = h->next;
  else m->head = h->next;
  if (h->next) h->next->prev = h->prev;
  h->prev = h->next = NULL;
  h->multi = NULL;
}

/* Takes h out of the finished queue it waits in (if any). Safe from __gc of either side. */
void vx_unqueue(vx_handle *h) {
  vx_multi *m = h->fmulti;
  vx_handle **p, *prev = NULL;
  if (!m) return;
  for (p = &m->fhead; *p; prev = *p, p = &(*p)->fnext)
    if (*p == h) {
      *p = h->fnext;
      if (m->ftail == h) m->ftail = prev;
      break;
    }
  h->fnext = NULL;
  h->fmulti = NULL;
}

/* h's transfer in m has finished (rc): it leaves m, and with a slot it joins m's finished queue. */
static void vx_finished(vx_multi *m, vx_handle *h, CURLcode rc) {
  h->rc = rc;
  h->state = VX_DONE;
  vx_detach(h);
  if (h->slot > 0 && !h->fmulti) { /* at the tail: taken in the order they finished */
    h->fmulti = m;
    h->fnext = NULL;
    if (m->ftail) m->ftail->fnext = h;
    else m->fhead = h;
    m->ftail = h;
  }
}

/* Adds h to m (libcurl and m's list); returns 0 when libcurl refuses. */
int vx_attach(vx_multi *m, vx_handle *h) {
  if (curl_multi_add_handle(m->multi, h->easy) != CURLM_OK) return 0;
  h->multi = m;
  h->prev = NULL;
  h->next = m->head;
  if (m->head) m->head->prev = h;
  m->head = h;
  return 1;
}

vx_multi *vx_checkmulti(lua_State *L, int idx) {
  vx_multi *m = vx_checkudarg(L, idx, VX_MULTI_MT, "vertexops multi handle");
  if (!m->multi) vx_valueerror(L, "attempt to use a closed vertexops multi handle");
  return m;
}

/* core.multi() -> a new multi handle (HTTP/2 multiplexing on) */
static int core_multi(lua_State *L) {
  vx_multi *m = lua_newuserdata(L, sizeof *m);
  memset(m, 0, sizeof *m); /* born closed */
  luaL_getmetatable(L, VX_MULTI_MT);
  lua_setmetatable(L, -2);
  if (!vx_curl_ready()) return vx_curlerror(L, "curl_global_init failed");
  m->multi = curl_multi_init();
  if (!m->multi) return vx_curlerror(L, "curl_multi_init failed");
  /* libcurl caps streams per connection at 100 and opens more connections past that; let the
   * server's own limit (SETTINGS_MAX_CONCURRENT_STREAMS: 100 at Google's front ends) decide
   * instead. Past that limit libcurl would open one new connection per waiting transfer (a TLS
   * handshake each, and no multiplexing on them until their SETTINGS arrive): cap the
   * connections per host, so transfers past streams x connections queue inside libcurl until a
   * stream is free (handle.c sets PIPEWAIT: wait for a multiplexed connection rather than open
   * one). */
  if (curl_multi_setopt(m->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX) != CURLM_OK ||
      curl_multi_setopt(m->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L) != CURLM_OK ||
      curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)VX_MAX_HOST_CONNECTIONS) != CURLM_OK)
    return vx_curlerror(L, "libcurl refused the multiplexing options");
  return 1;
}

/* __gc, __close and close(): idempotent; takes every running transfer out first */
static int multi_close(lua_State *L) {
  vx_multi *m = vx_checkudarg(L, 1, VX_MULTI_MT, "vertexops multi handle");
  while (m->head) vx_detach(m->head);
  while (m->fhead) vx_unqueue(m->fhead);
  if (m->multi) curl_multi_cleanup(m->multi);
  m->multi = NULL;
  return 0;
}

/* Ends, as timed out, every transfer still in m one second past its own timeout. libcurl 7.88
 * can lose a transfer after a failed allocation inside curl_multi_perform (make torture,
 * fuzz/torture/multi.lua): it stays "running", its CURLOPT_TIMEOUT_MS never fires, and whoever
 * waits for it would wait for ever. */
static void vx_expire(vx_multi *m, int *running) {
  vx_handle *h = m->head, *next;
  double now = vx_monotonic();
  for (; h; h = next) {
    next = h->next;
    if (h->state == VX_RUNNING && now > h->deadline) {
      snprintf(h->errbuf, sizeof h->errbuf, "Operation timed out (the transfer outlived its timeout in libcurl)");
      vx_finished(m, h, CURLE_OPERATION_TIMEDOUT);
      if (*running > 0) (*running)--;
    }
  }
}

/* Caps m's connections per host at what its transfers need: one per VX_HOST_STREAMS of them, plus
 * one to replace a connection that is closing (after a GOAWAY its streams drain while the next one
 * is set up), at most VX_MAX_HOST_CONNECTIONS. libcurl 7.88 does not wait for a connection that is
 * still in its TLS handshake (CURLOPT_PIPEWAIT only waits while the host's multiplexing is
 * unknown): without the cap every transfer started in that time opens a connection of its own,
 * which then serves that one request (bench/RESULTS.md, "Fleet": 47 connections for 100,000
 * cancels where 21 do). Set before each perform, where libcurl connects. */
static void vx_cap(vx_multi *m) {
  long n = 0, want;
  const vx_handle *h;
  for (h = m->head; h; h = h->next) n++;
  want = (n + VX_HOST_STREAMS - 1) / VX_HOST_STREAMS + 1;
  if (want > VX_MAX_HOST_CONNECTIONS) want = VX_MAX_HOST_CONNECTIONS;
  (void)curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, want); /* an assignment in libcurl */
}

/* multi:perform() -> transfers still running. Marks finished handles done (handle:done()). */
static int multi_perform(lua_State *L) {
  vx_multi *m = vx_checkmulti(L, 1);
  int running = 0, left = 0;
  CURLMsg *msg;
  CURLMcode mc;
  vx_cap(m);
  mc = curl_multi_perform(m->multi, &running);
  if (mc != CURLM_OK) return vx_curlerror(L, "curl_multi_perform: %s", curl_multi_strerror(mc));
  while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
    vx_handle *h = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h) != CURLE_OK || !h) continue;
    vx_finished(m, h, msg->data.result);
  }
  vx_expire(m, &running);
  lua_pushinteger(L, running);
  return 1;
}

/* multi:finished([t]) -> n: the slots of the transfers started with one (handle:start's 5th
 * argument) that have finished since the last call, n of them, into t[1..n] (which empties the
 * queue); without t, how many wait there (the queue left as it is). Whoever started them learns
 * which finished without asking each handle (lua/vertexops/fleet.lua, a window's direct sends). */
static int multi_finished(lua_State *L) {
  vx_multi *m = vx_checkmulti(L, 1);
  lua_Integer n = 0;
  vx_handle *h;
  if (lua_isnoneornil(L, 2)) {
    for (h = m->fhead; h; h = h->fnext) n++;
  } else {
    vx_checktablearg(L, 2, "multi:finished's argument");
    while ((h = m->fhead) != NULL) {
      lua_pushinteger(L, h->slot);
      lua_rawseti(L, 2, (int)++n);
      vx_unqueue(h);
    }
  }
  lua_pushinteger(L, n);
  return 1;
}

/* multi:wait(seconds): blocks until a transfer has something to do, or seconds have passed. */
static int multi_wait(lua_State *L) {
  vx_multi *m = vx_checkmulti(L, 1);
  double secs = lua_isnoneornil(L, 2) ? 1 : vx_checknumberarg(L, 2, "seconds");
  int ms = !(secs > 0) ? 0 : secs > 60 ? 60000 : (int)(secs * 1000 + 0.5); /* NaN: 0 */
  CURLMcode mc = curl_multi_poll(m->multi, NULL, 0, ms, NULL);
  if (mc != CURLM_OK) return vx_curlerror(L, "curl_multi_poll: %s", curl_multi_strerror(mc));
  return 0;
}

static const luaL_Reg multi_methods[] = {
    {"perform", multi_perform}, {"wait", multi_wait}, {"finished", multi_finished}, {"close", multi_close}, {NULL, NULL}};

static const luaL_Reg multi_funcs[] = {{"multi", core_multi}, {NULL, NULL}};

void vx_multi_open(lua_State *L) {
  vx_newclass(L, VX_MULTI_MT, multi_close, NULL, multi_methods);
  luaL_setfuncs(L, multi_funcs, 0);
  lua_pushinteger(L, VX_MAX_HOST_CONNECTIONS); /* core.MAX_HOST_CONNECTIONS: the documented cap */
  lua_setfield(L, -2, "MAX_HOST_CONNECTIONS");
}
