/* h1.c: HTTP/1.1 on the wire for transports that own their socket (the nginx cosocket transport,
 * lua/vertexops/transport/cosocket.lua): core.h1() parses a response fed in pieces of any size;
 * core.h1_request writes the bytes of a request that reader.c has read and checked (as for
 * libcurl). Pure: no I/O, no libcurl call.
 *
 * The parser (vertexops.h1 userdata) owns only C memory (capped vx_bufs, freed by its one
 * idempotent __gc/__close); nothing inside the byte loop calls Lua. It is strict: a status line
 * HTTP/1.0 or 1.1 with three digits, CRLF line ends (no bare CR or LF, no NUL or other control
 * byte), header names of token characters followed at once by ':', no obs-fold, one valid
 * Content-Length (repeats must agree) or Transfer-Encoding: chunked (not both), hex chunk sizes
 * checked against the body cap as they are read. 1xx answers are skipped (101 is refused: we never
 * ask to switch). Malformed framing is a ConnectionError (as libcurl's CURLE_WEIRD_SERVER_REPLY);
 * an answer over VX_MAX_HEAD / VX_MAX_BODY is the ResponseTypeError the libcurl path raises, with
 * the status as code once it is known.
 *
 * The header block it gives (p:result, p:classify) is what libcurl's header callback would have
 * collected: the final status line, its header lines, the empty line, then any chunked trailers --
 * so core.classify treats both transports' answers alike. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vx.h"

#define VX_H1_MT "vertexops.h1"
#define VX_H1_MAX_CHUNK_LINE 4096 /* a chunk-size line, extensions included */

enum {
  H1_STATUS, H1_HEADER, H1_BODY_LEN, H1_BODY_CLOSE, H1_CHUNK_SIZE, H1_CHUNK_DATA, H1_CHUNK_END,
  H1_TRAILER, H1_DONE, H1_ERROR
};
enum { H1E_NONE, H1E_PROTO, H1E_HEAD, H1E_BODY, H1E_NOMEM, H1E_CLOSED };

typedef struct {
  int open;
  int state, err;
  vx_buf line;              /* the line being read (status, header, chunk size, trailer) */
  vx_buf head;              /* status line, header lines, empty line, trailers */
  vx_buf body;
  size_t headtotal;         /* head bytes of every response read, 1xx ones included */
  size_t remaining;         /* bytes left of the body (Content-Length) or of the chunk */
  size_t received;          /* bytes fed, all told */
  size_t cl;                /* Content-Length, when has_cl */
  long status;              /* of the response being read; 0 before its status line */
  int minor;                /* HTTP/1.minor */
  int has_cl, has_te, conn_close, extra;
  int connect;              /* core.h1("CONNECT"): the answer of a proxy to CONNECT */
  char msg[160];
} vx_h1;

/* token characters (RFC 9110 5.6.2): a table, not a strchr per byte of every header name */
static const unsigned char vx_tchars[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1,
    ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
    ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
    ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1};

static int vx_istchar(int c) { return vx_tchars[(unsigned char)c]; }

/* field-value bytes: HTAB, SP, visible ASCII, obs-text (>= 0x80); never NUL, CR, LF, DEL or others */
static int vx_isvaluechar(unsigned char c) { return c == '\t' || (c >= ' ' && c != 0x7f); }

/* Whether the eight bytes at s are all field-value bytes with no HTAB (a word test: none below 0x20,
 * none DEL). */
static int vx_valueword(const char *s) {
  const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
  uint64_t x, d;
  memcpy(&x, s, 8);
  d = x ^ (ones * 0x7f); /* a zero byte where x has a DEL */
  /* (y - 0x01..) & ~y & 0x80..: nonzero iff y has a zero byte; of x - 0x20..: a byte below 0x20 */
  return !(((x - ones * 0x20) & ~x & highs) | ((d - ones) & ~d & highs));
}

/* The length of the longest prefix of s[0..n) made of field-value bytes (vx_isvaluechar): n when all
 * are. Eight bytes a step while vx_valueword holds, byte by byte from a word where it does not (HTAB
 * is allowed): an answer's head is read through here once, at about a byte an instruction instead
 * of five (issue 19 §4). */
static size_t vx_valuespan(const char *s, size_t n) {
  size_t i = 0;
  if (n >= 8) {
    while (n - i >= 8 && vx_valueword(s + i)) i += 8;
    /* the bytes left, fewer than eight: the last eight bytes as one word (some read again) */
    if (i == n || (n - i < 8 && vx_valueword(s + n - 8))) return n;
  }
  for (; i < n; i++)
    if (!vx_isvaluechar((unsigned char)s[i])) return i;
  return n;
}

static int h1_fail(vx_h1 *p, int err, const char *what) {
  p->err = err;
  p->state = H1_ERROR;
  if (what) {
    size_t n = strlen(what);
    if (n >= sizeof p->msg) n = sizeof p->msg - 1;
    memcpy(p->msg, what, n);
    p->msg[n] = '\0';
  }
  return 0;
}

static int h1_append(vx_h1 *p, vx_buf *b, const char *s, size_t n) {
  if (vx_bufappend(b, s, n) != n)
    return h1_fail(p, b->overflow == 2 ? H1E_NOMEM : b == &p->body ? H1E_BODY : H1E_HEAD, NULL);
  return 1;
}

/* Whether s[0..n) is lit, ignoring case. lit: lower-case letters and '-' only; s: bytes of a header
 * name or value, checked already (token or field-value bytes), where b | 0x20 is a lower-case letter
 * or '-' only for that letter in either case, or '-' itself (0x0d | 0x20 is '-' too, but a CR is
 * neither): one OR a byte instead of a case test. */
static int h1_ieq(const char *s, size_t n, const char *lit) {
  size_t i, m = strlen(lit);
  if (n != m) return 0;
  for (i = 0; i < n; i++)
    if (((unsigned char)s[i] | 0x20) != (unsigned char)lit[i]) return 0;
  return 1;
}

/* The status line (without CRLF): HTTP/1.0 or HTTP/1.1, SP, three digits (100-999), then nothing
 * or SP and a reason phrase. */
static int h1_status(vx_h1 *p, const char *s, size_t n) {
  if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ' ||
      !VX_ISDIGIT(s[9]) || !VX_ISDIGIT(s[10]) || !VX_ISDIGIT(s[11]) || s[9] == '0')
    return h1_fail(p, H1E_PROTO, "malformed HTTP response: bad status line");
  if (n > 12 && s[12] != ' ') return h1_fail(p, H1E_PROTO, "malformed HTTP response: bad status line");
  if (n > 13 && vx_valuespan(s + 13, n - 13) != n - 13)
    return h1_fail(p, H1E_PROTO, "malformed HTTP response: control byte in the status line");
  p->minor = s[7] - '0';
  p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
  p->has_cl = p->has_te = p->conn_close = 0;
  p->cl = 0;
  p->head.len = 0; /* a new response starts (after a 1xx): its head replaces the last one */
  return 1;
}

/* Splits a header line (without CRLF; s[n] is its CR) into name and trimmed value; 0 when
 * malformed. */
static int h1_field(vx_h1 *p, const char *s, size_t n, size_t *nlen, const char **v, size_t *vlen) {
  size_t i;
  const char *e;
  if (s[0] == ' ' || s[0] == '\t')
    return h1_fail(p, H1E_PROTO, "malformed HTTP response: folded header line (obs-fold)");
  for (i = 0; vx_istchar((unsigned char)s[i]); i++) /* (s[n], a CR, is no token byte: it stops) */
    ;
  if (i >= n || s[i] != ':')
    return h1_fail(p, H1E_PROTO, i < n && memchr(s + i, ':', n - i)
                                     ? "malformed HTTP response: invalid header name"
                                     : "malformed HTTP response: header line without a colon");
  if (i == 0) return h1_fail(p, H1E_PROTO, "malformed HTTP response: empty header name");
  *nlen = i;
  if (vx_valuespan(s + i + 1, n - i - 1) != n - i - 1)
    return h1_fail(p, H1E_PROTO, "malformed HTTP response: control byte in a header value");
  *v = s + *nlen + 1;
  e = s + n;
  while (*v < e && (**v == ' ' || **v == '\t')) (*v)++;
  while (e > *v && (e[-1] == ' ' || e[-1] == '\t')) e--;
  *vlen = (size_t)(e - *v);
  return 1;
}

/* A header of the response (not a trailer): framing and connection fields. */
static int h1_header(vx_h1 *p, const char *s, size_t n) {
  size_t nlen, vlen, i;
  const char *v;
  if (!h1_field(p, s, n, &nlen, &v, &vlen)) return 0;
  if (h1_ieq(s, nlen, "content-length")) {
    size_t cl = 0;
    if (vlen == 0) return h1_fail(p, H1E_PROTO, "malformed HTTP response: empty Content-Length");
    for (i = 0; i < vlen; i++) {
      if (!VX_ISDIGIT(v[i])) return h1_fail(p, H1E_PROTO, "malformed HTTP response: bad Content-Length");
      if (cl <= VX_MAX_BODY) cl = cl * 10 + (size_t)(v[i] - '0'); /* past the cap: stays past it */
    }
    if (p->has_cl && cl != p->cl)
      return h1_fail(p, H1E_PROTO, "malformed HTTP response: conflicting Content-Length headers");
    p->has_cl = 1;
    p->cl = cl;
  } else if (h1_ieq(s, nlen, "transfer-encoding")) {
    if (p->has_te) return h1_fail(p, H1E_PROTO, "malformed HTTP response: repeated Transfer-Encoding");
    if (!h1_ieq(v, vlen, "chunked"))
      return h1_fail(p, H1E_PROTO, "malformed HTTP response: unsupported Transfer-Encoding");
    p->has_te = 1;
  } else if (h1_ieq(s, nlen, "connection")) {
    size_t start = 0;
    for (i = 0; i <= vlen; i++) {
      if (i == vlen || v[i] == ',') {
        size_t a = start, b = i;
        while (a < b && (v[a] == ' ' || v[a] == '\t')) a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t')) b--;
        if (h1_ieq(v + a, b - a, "close")) p->conn_close = 1;
        start = i + 1;
      }
    }
  }
  return 1;
}

/* The empty line ending a head: what comes next. */
static int h1_endofhead(vx_h1 *p) {
  if (p->status < 200) {
    if (p->status == 101)
      return h1_fail(p, H1E_PROTO, "malformed HTTP response: 101 Switching Protocols was not asked for");
    p->status = 0;
    p->state = H1_STATUS; /* an interim answer: the real one follows */
    return 1;
  }
  if (p->connect && p->status <= 299) {
    /* a tunnel: a 2xx answer to CONNECT ends with its head (RFC 9110 9.3.6: any Content-Length or
     * Transfer-Encoding in it is ignored); what follows belongs to the tunnel */
    p->state = H1_DONE;
    return 1;
  }
  if (p->has_cl && p->has_te)
    return h1_fail(p, H1E_PROTO, "malformed HTTP response: both Content-Length and Transfer-Encoding");
  if (p->status == 204 || p->status == 304) {
    p->state = H1_DONE;
  } else if (p->has_te) {
    p->state = H1_CHUNK_SIZE;
  } else if (p->has_cl) {
    if (p->cl > VX_MAX_BODY) return h1_fail(p, H1E_BODY, NULL);
    p->remaining = p->cl;
    p->state = p->cl ? H1_BODY_LEN : H1_DONE;
  } else {
    p->state = H1_BODY_CLOSE; /* delimited by the end of the connection */
  }
  return 1;
}

/* A chunk-size line (without CRLF): hex digits, optional BWS and ;extensions. */
static int h1_chunksize(vx_h1 *p, const char *s, size_t n) {
  size_t i = 0, size = 0, room = VX_MAX_BODY - p->body.len;
  while (i < n && VX_ISXDIGIT(s[i])) {
    int c = (unsigned char)s[i++];
    size_t d = (size_t)(VX_ISDIGIT(c) ? c - '0' : VX_TOLOWER(c) - 'a' + 10);
    if (size > room / 16 || size * 16 + d > room) return h1_fail(p, H1E_BODY, NULL); /* no overflow */
    size = size * 16 + d;
  }
  if (i == 0) return h1_fail(p, H1E_PROTO, "malformed HTTP response: bad chunk size");
  while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
  if (i < n && s[i] != ';') return h1_fail(p, H1E_PROTO, "malformed HTTP response: bad chunk size");
  if (vx_valuespan(s + i, n - i) != n - i)
    return h1_fail(p, H1E_PROTO, "malformed HTTP response: control byte in a chunk extension");
  p->remaining = size;
  p->state = size ? H1_CHUNK_DATA : H1_TRAILER;
  return 1;
}

/* One complete line of the current state, its CRLF after s[n - 1]. Each state's reading refuses a
 * CR or NUL anywhere in the line (the bytes of a status line, of header and trailer fields and of
 * chunk-size lines are all checked, one class or another; a chunk's end is empty): h1_line tells
 * them apart when it failed. */
static int h1_linestate(vx_h1 *p, const char *s, size_t n) {
  switch (p->state) {
  case H1_STATUS:
    if (!h1_status(p, s, n)) return 0;
    p->state = H1_HEADER;
    return h1_append(p, &p->head, s, n + 2);
  case H1_HEADER:
    if (!h1_append(p, &p->head, s, n + 2)) return 0;
    return n == 0 ? h1_endofhead(p) : h1_header(p, s, n);
  case H1_CHUNK_SIZE:
    return h1_chunksize(p, s, n);
  case H1_CHUNK_END:
    if (n != 0) return h1_fail(p, H1E_PROTO, "malformed HTTP response: chunk data longer than its size");
    p->state = H1_CHUNK_SIZE;
    return 1;
  case H1_TRAILER:
    if (n == 0) {
      p->state = H1_DONE;
      return 1;
    } else {
      size_t nlen, vlen;
      const char *v;
      if (!h1_field(p, s, n, &nlen, &v, &vlen)) return 0;
      return h1_append(p, &p->head, s, n + 2);
    }
  }
  return h1_fail(p, H1E_PROTO, "malformed HTTP response");
}

/* One complete line (CRLF included) of the current state. A line with a CR or NUL inside fails as
 * that, whatever else is wrong with it: as if that were checked first (no pass of its own over
 * every line: a failed one is searched for them). */
static int h1_line(vx_h1 *p, const char *s, size_t n) {
  if (n < 2 || s[n - 2] != '\r')
    return h1_fail(p, H1E_PROTO, "malformed HTTP response: a line ends with LF alone");
  if (h1_linestate(p, s, n - 2)) return 1;
  if (memchr(s, '\r', n - 2) || memchr(s, '\0', n - 2))
    h1_fail(p, H1E_PROTO, "malformed HTTP response: CR or NUL inside a line");
  return 0;
}

/* Consumes bytes; stops at the end of the response or at the first error. */
static void h1_feed(vx_h1 *p, const char *s, size_t n) {
  size_t i = 0;
  p->received += n;
  while (i < n && p->state != H1_DONE && p->state != H1_ERROR) {
    switch (p->state) {
    case H1_BODY_LEN:
    case H1_CHUNK_DATA: {
      size_t take = n - i < p->remaining ? n - i : p->remaining;
      if (!h1_append(p, &p->body, s + i, take)) return;
      i += take;
      p->remaining -= take;
      if (p->remaining == 0) p->state = p->state == H1_BODY_LEN ? H1_DONE : H1_CHUNK_END;
      break;
    }
    case H1_BODY_CLOSE:
      if (!h1_append(p, &p->body, s + i, n - i)) return;
      i = n;
      break;
    default: { /* a line */
      const char *eol = memchr(s + i, '\n', n - i);
      size_t take = eol ? (size_t)(eol - (s + i)) + 1 : n - i;
      int headline = p->state == H1_STATUS || p->state == H1_HEADER || p->state == H1_TRAILER;
      if (headline) {
        if (take > VX_MAX_HEAD - p->headtotal) {
          h1_fail(p, H1E_HEAD, NULL);
          return;
        }
        p->headtotal += take;
      } else if (take > VX_H1_MAX_CHUNK_LINE - p->line.len) {
        h1_fail(p, H1E_PROTO, "malformed HTTP response: chunk size line too long");
        return;
      }
      if (eol && p->line.len == 0) { /* the whole line is in these bytes: read it where it is */
        i += take;
        if (!h1_line(p, s + i - take, take)) return;
        break;
      }
      if (!h1_append(p, &p->line, s + i, take)) return;
      i += take;
      if (eol) {
        size_t len = p->line.len;
        p->line.len = 0; /* the bytes stay where they are while h1_line reads them */
        if (!h1_line(p, p->line.data, len)) return;
      }
    }
    }
  }
  if (i < n && p->state == H1_DONE) {
    p->extra = 1; /* bytes after the response: no reuse */
    /* a tunnel's first bytes are ours (the TLS ClientHello): a proxy that sends any first is broken */
    if (p->connect && p->status <= 299)
      h1_fail(p, H1E_PROTO, "malformed CONNECT answer: the proxy sent bytes after its 2xx answer");
  }
}

/* --- the parser userdata --- */

static vx_h1 *h1_check(lua_State *L, int idx) {
  vx_h1 *p = vx_checkudarg(L, idx, VX_H1_MT, "vertexops h1 parser");
  if (!p->open) vx_valueerror(L, "attempt to use a closed vertexops h1 parser");
  return p;
}

/* __gc, __close and close(): idempotent */
static int h1_close(lua_State *L) {
  vx_h1 *p = vx_checkudarg(L, 1, VX_H1_MT, "vertexops h1 parser");
  p->open = 0;
  free(p->line.data);
  free(p->head.data);
  free(p->body.data);
  memset(&p->line, 0, sizeof p->line);
  memset(&p->head, 0, sizeof p->head);
  memset(&p->body, 0, sizeof p->body);
  return 0;
}

/* core.h1([method]) -> a parser for one response; "CONNECT": a proxy's answer to CONNECT (a 2xx one
 * ends with its head, and nothing may follow it) */
static int core_h1(lua_State *L) {
  vx_h1 *p;
  int connect = 0;
  if (!lua_isnoneornil(L, 1)) {
    const char *m = vx_checkstringarg(L, 1, "method", NULL);
    if (strcmp(m, "CONNECT") != 0) vx_valueerror(L, "core.h1: method must be nil or \"CONNECT\"");
    connect = 1;
  }
  p = lua_newuserdata(L, sizeof *p);
  memset(p, 0, sizeof *p); /* born closed: nothing to free yet */
  luaL_getmetatable(L, VX_H1_MT);
  lua_setmetatable(L, -2);
  p->line.limit = VX_MAX_HEAD;
  p->head.limit = VX_MAX_HEAD;
  p->body.limit = VX_MAX_BODY;
  p->state = H1_STATUS;
  p->connect = connect;
  p->open = 1; /* its buffers are allocated as bytes come, and freed by close */
  return 1;
}

/* Pushes nil, err for the parser's error. */
static int h1_pusherror(lua_State *L, vx_h1 *p) {
  lua_pushnil(L);
  if (p->err == H1E_HEAD || p->err == H1E_BODY) {
    vx_pushoversize(L, p->err == H1E_BODY ? VX_OVER_BODY : VX_OVER_HEAD, p->status);
  } else if (p->err == H1E_NOMEM) {
    vx_pusherror(L, vx_tags_conn, "out of memory while receiving the response");
  } else {
    vx_pusherror(L, vx_tags_conn, p->msg);
  }
  return 2;
}

/* p:feed(bytes) -> true (the response is complete), false (more bytes needed) or nil, err (a
 * malformed or oversize answer: close the connection). Bytes past the end of the response are
 * dropped and forbid keeping the connection. */
static int h1_feedl(lua_State *L) {
  vx_h1 *p = h1_check(L, 1);
  size_t n;
  const char *s = vx_checkstringarg(L, 2, "bytes", &n);
  h1_feed(p, s, n);
  if (p->state == H1_ERROR) return h1_pusherror(L, p);
  lua_pushboolean(L, p->state == H1_DONE);
  return 1;
}

/* p:eof(): the peer closed the connection -> true when that completes the response (a body
 * delimited by the close), else nil, err (ConnectionError). */
static int h1_eof(lua_State *L) {
  vx_h1 *p = h1_check(L, 1);
  if (p->state == H1_BODY_CLOSE) p->state = H1_DONE;
  if (p->state != H1_DONE && p->state != H1_ERROR)
    h1_fail(p, H1E_CLOSED, p->received == 0 ? "server closed the connection without an answer (empty reply)"
                                            : "server closed the connection before the answer was complete");
  if (p->state == H1_ERROR) return h1_pusherror(L, p);
  lua_pushboolean(L, 1);
  return 1;
}

/* May the connection carry another request? HTTP/1.1, no Connection: close, the body framed by
 * length or chunks and read whole, nothing after it. */
static int h1_reusable(const vx_h1 *p) {
  return p->state == H1_DONE && p->minor == 1 && !p->conn_close && !p->extra &&
         (p->has_cl || p->has_te || p->status == 204 || p->status == 304);
}

static int h1_keepalive(lua_State *L) {
  vx_h1 *p = h1_check(L, 1);
  lua_pushboolean(L, h1_reusable(p));
  return 1;
}

static void h1_checkdone(lua_State *L, vx_h1 *p) {
  if (p->state != H1_DONE) vx_valueerror(L, "the HTTP response is not complete");
}

/* p:result() -> status, header_block, body, keepalive (a complete response only) */
static int h1_result(lua_State *L) {
  vx_h1 *p = h1_check(L, 1);
  h1_checkdone(L, p);
  lua_pushinteger(L, (lua_Integer)p->status);
  lua_pushlstring(L, p->head.data ? p->head.data : "", p->head.len);
  lua_pushlstring(L, p->body.data ? p->body.data : "", p->body.len);
  lua_pushboolean(L, h1_reusable(p));
  return 4;
}

/* p:classify([want_headers]) -> what handle:call returns for this answer (core.classify on it,
 * without copying the body into a Lua string) */
static int h1_classify(lua_State *L) {
  vx_h1 *p = h1_check(L, 1);
  int want = lua_toboolean(L, 2);
  h1_checkdone(L, p);
  lua_settop(L, 1); /* the parser (owner of the buffers) stays on the stack */
  return vx_classify(L, p->status, p->head.data, p->head.len, p->body.data, p->body.len, want);
}

/* The keep argument at idx of p:reset and p:finish: at most VX_BUF_KEEP (1 MiB) bytes a buffer. */
static size_t h1_keeparg(lua_State *L, int idx) {
  size_t keep = VX_BUF_KEEP;
  if (!lua_isnoneornil(L, idx)) {
    double k = vx_checknumberarg(L, idx, "keep");
    if (!(k >= 0)) {
      vx_valueerror(L, "keep must be a number of bytes >= 0");
      return 0;
    }
    if (k < (double)keep) keep = (size_t)k;
  }
  return keep;
}

/* p, ready for another response as core.h1() (or core.h1("CONNECT")) made it, its buffers kept
 * for it, up to keep bytes each. */
static void h1_reset(vx_h1 *p, size_t keep) {
  vx_buf line = p->line, head = p->head, body = p->body;
  int connect = p->connect;
  vx_bufkeep(&line, keep);
  vx_bufkeep(&head, keep);
  vx_bufkeep(&body, keep);
  memset(p, 0, sizeof *p);
  p->line = line;
  p->head = head;
  p->body = body;
  p->state = H1_STATUS;
  p->connect = connect;
  p->open = 1;
}

/* p:reset([keep]) -> p, ready for another response as core.h1() (or core.h1("CONNECT")) made it,
 * its buffers kept for it (up to 1 MiB each: vx_bufreset; with keep, up to keep bytes each): the
 * cosocket transport keeps parsers per worker instead of making and collecting one per exchange. */
static int h1_resetl(lua_State *L) {
  vx_h1 *p = h1_check(L, 1);
  h1_reset(p, h1_keeparg(L, 2));
  lua_settop(L, 1);
  return 1;
}

/* Pushes a complete answer's keepalive, then what vx_classify gives for it, and resets p (keeping up
 * to keep bytes a buffer): p:finish and p:take. The answer's values are copied out before the
 * reset. Returns the number pushed. */
static int h1_pushfinish(lua_State *L, vx_h1 *p, int want, size_t keep) {
  int n;
  lua_pushboolean(L, h1_reusable(p));
  n = vx_classify(L, p->status, p->head.data, p->head.len, p->body.data, p->body.len, want);
  h1_reset(p, keep);
  return 1 + n;
}

/* p:finish([want_headers [, keep]]) -> keepalive, then what p:classify(want_headers) gives; p reset
 * as p:reset(keep) does, ready for the next response. What the cosocket transport asks of a
 * complete answer, in one call instead of three: inside nginx each C call ends a LuaJIT trace, about
 * 560 instructions a call (issue 19 §4). The answer's values are copied out before the reset. */
static int h1_finish(lua_State *L) {
  vx_h1 *p = h1_check(L, 1);
  int want = lua_toboolean(L, 2);
  size_t keep = h1_keeparg(L, 3);
  h1_checkdone(L, p);
  lua_settop(L, 1); /* the parser (owner of the buffers) stays on the stack */
  return h1_pushfinish(L, p, want, keep);
}

/* p:take(bytes [, want_headers [, keep]]) -> p:feed(bytes) and, when that completes the answer,
 * p:finish(want_headers, keep) with the answer's status, in one call: false (more bytes needed),
 * nil, err (as p:feed), or true, status, keepalive, then what p:classify(want_headers) gives, the
 * parser reset. The status is the final answer's (after any 1xx), read before the reset. The
 * cosocket transport's read of an answer that comes in one piece is then one C call, not two
 * (inside nginx each ends a LuaJIT trace; issue 19 §4). */
static int h1_take(lua_State *L) {
  vx_h1 *p = h1_check(L, 1);
  size_t n;
  const char *s = vx_checkstringarg(L, 2, "bytes", &n);
  int want = lua_toboolean(L, 3);
  size_t keep = h1_keeparg(L, 4);
  h1_feed(p, s, n);
  if (p->state == H1_ERROR) return h1_pusherror(L, p);
  if (p->state != H1_DONE) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_settop(L, 1); /* the parser (owner of the buffers) stays on the stack */
  lua_pushboolean(L, 1);
  lua_pushinteger(L, (lua_Integer)p->status);
  return 2 + h1_pushfinish(L, p, want, keep);
}

/* p:received() -> bytes fed so far */
static int h1_received(lua_State *L) {
  vx_h1 *p = h1_check(L, 1);
  lua_pushinteger(L, (lua_Integer)p->received);
  return 1;
}

/* p:status() -> the answer's status (nil before its status line): for the hooks' attempt info */
static int h1_statusl(lua_State *L) {
  vx_h1 *p = h1_check(L, 1);
  if (p->status <= 0) return 0;
  lua_pushinteger(L, (lua_Integer)p->status);
  return 1;
}

static int h1_isclosed(lua_State *L) {
  vx_h1 *p = vx_checkudarg(L, 1, VX_H1_MT, "vertexops h1 parser");
  lua_pushboolean(L, !p->open);
  return 1;
}

static int h1_tostring(lua_State *L) {
  vx_h1 *p = vx_checkudarg(L, 1, VX_H1_MT, "vertexops h1 parser");
  if (p->open) lua_pushfstring(L, "vertexops.h1 (%p)", (void *)p);
  else lua_pushliteral(L, "vertexops.h1 (closed)");
  return 1;
}

/* --- the request bytes --- */

/* Pushes the target of a read request: {scheme, host (IPv6 without brackets), port, authority,
 * ip}, what the transport connects to. */
static void h1_pushtarget(lua_State *L, const vx_request *r) {
  lua_createtable(L, 0, 5);
  lua_pushstring(L, r->u.https ? "https" : "http");
  lua_setfield(L, -2, "scheme");
  lua_pushlstring(L, r->url + r->u.host, r->u.hostlen);
  lua_setfield(L, -2, "host");
  lua_pushinteger(L, (lua_Integer)r->u.port);
  lua_setfield(L, -2, "port");
  lua_pushlstring(L, r->url + r->u.authority, r->u.authlen);
  lua_setfield(L, -2, "authority");
  lua_pushboolean(L, r->u.ip);
  lua_setfield(L, -2, "ip");
}

/* core.h1_request(req [, token]) -> parts, target
 * The HTTP/1.1 request for a built request (core.build's method, url, headers, body), read by
 * vx_readrequest (reader.c) as handle:call reads it: the same TypeError, ValueError and AuthError.
 * parts is a list of strings to send in order (the token is its own element, the very string
 * given), target {scheme, host, port, authority, ip}. Writes bytes only: the socket is the
 * caller's (lua/vertexops/transport/cosocket.lua, which joins the parts once per request and token:
 * nginx sends one string cheaper than a list). */
static int core_h1_request(lua_State *L) {
  vx_request r;
  size_t i;
  int target, parts, k = 0;
  luaL_Buffer b;
  lua_settop(L, 2);
  vx_readrequest(L, 1, 2, &r);
  h1_pushtarget(L, &r);
  target = lua_gettop(L);
  lua_createtable(L, 4, 0);
  parts = lua_gettop(L);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, r.method);
  luaL_addchar(&b, ' ');
  if (r.u.path < r.urllen) luaL_addlstring(&b, r.url + r.u.path, r.urllen - r.u.path);
  else luaL_addchar(&b, '/');
  luaL_addstring(&b, " HTTP/1.1\r\nHost: ");
  luaL_addlstring(&b, r.url + r.u.authority, r.u.authlen);
  luaL_addstring(&b, "\r\n");
  for (i = 1; i <= r.nheaders; i++) {
    lua_rawgeti(L, r.headers, (int)i);
    luaL_addvalue(&b);
    luaL_addstring(&b, "\r\n");
  }
  if (r.has_body) {
    char cl[48];
    snprintf(cl, sizeof cl, "Content-Length: %lu\r\n", (unsigned long)r.bodylen);
    luaL_addstring(&b, cl);
  }
  luaL_addstring(&b, r.token ? "Authorization: Bearer " : "\r\n");
  luaL_pushresult(&b);
  lua_rawseti(L, parts, ++k);
  if (r.token) {
    lua_pushvalue(L, r.token);
    lua_rawseti(L, parts, ++k);
    lua_pushliteral(L, "\r\n\r\n");
    lua_rawseti(L, parts, ++k);
  }
  if (r.bodylen) {
    lua_pushvalue(L, r.body);
    lua_rawseti(L, parts, ++k);
  }
  lua_pushvalue(L, target);
  return 2;
}

static const luaL_Reg h1_methods[] = {
    {"feed", h1_feedl},         {"eof", h1_eof},     {"result", h1_result},
    {"classify", h1_classify},  {"keepalive", h1_keepalive}, {"received", h1_received},
    {"status", h1_statusl},     {"close", h1_close},        {"is_closed", h1_isclosed},
    {"reset", h1_resetl},       {"finish", h1_finish},      {"take", h1_take},
    {NULL, NULL}};

static const luaL_Reg h1_funcs[] = {{"h1", core_h1}, {"h1_request", core_h1_request}, {NULL, NULL}};

void vx_h1_open(lua_State *L) {
  vx_newclass(L, VX_H1_MT, h1_close, h1_tostring, h1_methods);
  luaL_setfuncs(L, h1_funcs, 0);
}
