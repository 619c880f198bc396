/*
 * vx.h: what the parts of vertexops.core share -- limits, the handle structs, the error tags and
 * the functions that cross files. Everything else stays static inside its file.
 *
 * The parts (one file per concern, joined by module.c's list of vx_*_open):
 *   module.c   luaopen_vertexops_core, libcurl's global init (once per process)
 *   error.c    error objects, argument checks, libcurl result codes -> tags
 *   url.c      the one URL grammar (scheme, host, port), for endpoints and request URLs
 *   options.c  the option schema (one table: name, type, range, default, environment variable,
 *              doc line), the check of options made from it, core.OPTIONS
 *   request.c  names, regions, endpoints, core.build
 *   reader.c   a built request as the transports read it (vx_readrequest: method, URL, token,
 *              headers, body), checked once for libcurl (handle.c) and the cosocket wire (h1.c)
 *   buf.c      the capped buffers libcurl's callbacks fill
 *   json.c     JSON -> Lua (private cjson instance, depth and stack checks)
 *   response.c status + headers + body -> result or tagged error (core.classify)
 *   h1.c       HTTP/1.1 request bytes and a strict response parser (the cosocket transport)
 *   handle.c   the easy handle: prepare, call, start/finish, result
 *   multi.c    the multi handle: non-blocking transfers
 *   share.c    the connection cache shared by a client's handles
 *   jwt.c      base64url and RS256 for service-account JWTs
 *   sigv4.c    AWS Signature Version 4 for the aws1 subject token
 *   sys.c      clock, sleep, isatty
 *   spawn.c    core.spawn: a program run without a shell, output capped, killed at a timeout
 *   redis.c    core.redis: a Redis connection (libhiredis) for option rate.redis outside nginx
 *
 * Invariants kept in every file:
 *  - no Lua API call that can raise runs inside a libcurl callback: callbacks only append to
 *    C buffers owned by the handle userdata (buf.c);
 *  - everything allocated before a possible raise is owned by a userdata or freed first;
 *  - handles are born closed; __gc and __close are one idempotent function;
 *  - C that pushes per input element checks the stack (json.c, response.c);
 *  - character classes are ASCII (VX_IS*), never the locale's;
 *  - every libcurl return code is checked; a refused option fails the request (VX_SETOPT);
 *  - no mutable C globals except libcurl's once-only init (module.c).
 */
#ifndef VERTEXOPS_VX_H
#define VERTEXOPS_VX_H

#include <stddef.h>

#include <curl/curl.h>

#include "compat.h"

/* The release (semver, docs/contract.md "Stability and versions"): the one place it is written.
 * core.version, vertexops._VERSION, the User-Agent, `vertexops --version` and the release
 * rockspecs (make dist) read it. */
#define VX_VERSION "1.0.0"
#define VX_HANDLE_MT "vertexops.handle"
#define VX_ERROR_MT "vertexops.error"
#define VX_SHARE_MT "vertexops.share"
#define VX_MULTI_MT "vertexops.multi"
#define VX_NAMES_PAGE_MT "vertexops.names_page"
#define VX_JSON_KEY "vertexops.json"
#define VX_MAX_BODY ((size_t)32 << 20)   /* response bodies larger than this are refused */
#define VX_MAX_HEAD ((size_t)256 << 10)  /* response headers larger than this are refused */
#define VX_MAX_NAME 1024
#define VX_MAX_TIMEOUT 31536000.0        /* one year, the Workflows limit for long-running calls */
#define VX_EXCHANGE_TIMEOUT 60.0       /* seconds of one exchange when a request names none */
#define VX_CONNECT_TIMEOUT 10.0        /* seconds to connect when a request names none */
#define VX_MAX_DEPTH 128                 /* JSON nesting we decode (Google's parsers stop at 100) */
#define VX_MAX_HOST_CONNECTIONS 10      /* a multi handle's connections per host (multi.c) */

/* The oldest libcurl we run on: CURLOPT_PROTOCOLS_STR is 7.85.0 (curl_multi_poll 7.66,
 * CURLMOPT_MAX_CONCURRENT_STREAMS 7.67). Checked when building and again when loading. */
#define VX_MIN_CURL 0x075500
#define VX_MIN_CURL_TEXT "7.85.0"
#if LIBCURL_VERSION_NUM < VX_MIN_CURL
#error "vertexops needs libcurl 7.85.0 or newer"
#endif

/* Character classes are ASCII, never the locale's (isalnum & co. follow setlocale). */
#define VX_ISDIGIT(c) ((c) >= '0' && (c) <= '9')
#define VX_ISLOWER(c) ((c) >= 'a' && (c) <= 'z')
#define VX_ISUPPER(c) ((c) >= 'A' && (c) <= 'Z')
#define VX_ISALNUM(c) (VX_ISDIGIT(c) || VX_ISLOWER(c) || VX_ISUPPER(c))
#define VX_ISSPACE(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' || (c) == '\f' || (c) == '\v')
#define VX_ISXDIGIT(c) (VX_ISDIGIT(c) || ((c) >= 'a' && (c) <= 'f') || ((c) >= 'A' && (c) <= 'F'))
#define VX_TOLOWER(c) (VX_ISUPPER(c) ? (c) - 'A' + 'a' : (c))

/* --- error.c: every raise is a tagged error object --- */
extern const char *const vx_tags_failed[];         /* ConnectionFailedError, ConnectionError */
extern const char *const vx_tags_failed_timeout[]; /* ... and TimeoutError */
extern const char *const vx_tags_conn[];           /* ConnectionError */
extern const char *const vx_tags_timeout[];        /* TimeoutError */
extern const char *const vx_tags_response[];       /* ResponseTypeError */
extern const char *const vx_tags_http[];           /* HttpError */

void vx_pusherror(lua_State *L, const char *const *tags, const char *msg);
int vx_raise(lua_State *L, const char *tag, const char *fmt, ...);
#define vx_typeerror(L, ...) vx_raise((L), "TypeError", __VA_ARGS__)
#define vx_valueerror(L, ...) vx_raise((L), "ValueError", __VA_ARGS__)
/* libcurl or the system could not give us a resource: the exchange fails (nothing was sent) */
#define vx_curlerror(L, ...) vx_raise((L), "ConnectionError", __VA_ARGS__)
/* every libcurl option is checked: a refused one fails the request (closed), never ignored */
#define VX_SETOPT(L, e, opt, val)                                                             \
  do {                                                                                        \
    if (curl_easy_setopt((e), (opt), (val)) != CURLE_OK)                                      \
      vx_curlerror((L), "libcurl refused option " #opt);                                      \
  } while (0)

const char *vx_checkstringarg(lua_State *L, int idx, const char *what, size_t *len);
lua_Number vx_checknumberarg(lua_State *L, int idx, const char *what);
void vx_checktablearg(lua_State *L, int idx, const char *what);
void *vx_checkudarg(lua_State *L, int idx, const char *mt, const char *what);
int vx_rawfield(lua_State *L, int idx, const char *k);
const char *const *vx_curl_tags(CURLcode rc, long sent);
int vx_curl_certfailure(CURLcode rc);
void vx_pushcertfailure(lua_State *L, const char *detail);

/* --- module.c --- */
int vx_curl_ready(void);
void vx_newclass(lua_State *L, const char *name, lua_CFunction close, lua_CFunction tostring,
                 const luaL_Reg *methods);
const char *vx_curlversion(void);

/* --- url.c --- */
/* What vx_scanurl found: offsets into the URL text. */
typedef struct {
  int https;             /* https:// (else http://) */
  int v6;                /* the host is an IPv6 literal (host, hostlen: without the brackets) */
  int ip;                /* the host is an IP address (IPv6, or digits and dots only) */
  unsigned port;         /* as written, else 443 or 80 */
  size_t host, hostlen;
  size_t authority, authlen; /* host[:port] as written */
  size_t path;           /* where the path starts (its '/'), the query with it; the length when none */
  size_t stop;           /* on a fault: where it is */
} vx_url;
enum {
  VX_URL_OK,
  VX_URL_SCHEME,    /* neither https:// nor http:// */
  VX_URL_V6_OPEN,   /* '[' without ']' */
  VX_URL_V6_BAD,    /* a byte other than hex digits, ':' and '.' between the brackets, or too short */
  VX_URL_HOSTCHAR,  /* a byte not allowed in a host name (at stop) */
  VX_URL_NOHOST,    /* nothing between the scheme and ':' or '/' */
  VX_URL_PORT,      /* ':' without 1 to 65535 */
  VX_URL_PORTEND,   /* a good port followed by something other than '/' */
  VX_URL_AFTERHOST, /* an IPv6 literal followed by something other than ':' or '/' */
  VX_URL_FAULTS     /* how many: the size of a caller's table of words for them */
};
int vx_scanurl(const char *s, size_t n, vx_url *u);
int vx_urlfault(lua_State *L, const char *const *words, int rc, const char *s, const vx_url *u);

/* --- request.c, options.c --- */
int vx_tokenok(const char *t, size_t n);
/* A resource name at idx by Google's generic grammar (request.c): kind 'o' an operation, 'p' a list
 * parent; what names the argument in messages; *loc NULL for a name without a location. */
const char *vx_checkname(lua_State *L, int idx, const char *what, int kind, const char **loc,
                         size_t *loclen);
void vx_checkendpoint(lua_State *L, int idx); /* ValueError unless an endpoint template */
void vx_checkoptions(lua_State *L, int idx);  /* TypeError/ValueError for a bad options table */
const char *vx_optiondefault(const char *name); /* an option's default string (the schema's) */
/* jobs and publisher models' operations (csrc/jobs.c), built with request.c's parts */
int vx_buildjob(lua_State *L);
int vx_isjobkind(const char *kind);  /* "operations" or a collection of jobs */
int vx_ispublisherop(const char *name, size_t n); /* an operation of a publisher model */
extern const char vx_jobkinds_doc[]; /* the collections of jobs, for messages */
/* request.c's parts, one of each decision for every kind of call: the bytes and segments of a
 * resource name, percent-encoding, the REST version, region + base URL + header lines, the request
 * table, the URL (base/version/path[suffix][/collection?list query]) */
int vx_checkpath(lua_State *L, const char *what, const char *s, size_t len, const char **seg,
                 size_t *seglen, int max);
void vx_addescaped(luaL_Buffer *b, const char *s, size_t n);
const char *vx_version(lua_State *L, int opts); /* pushes the value read */
void vx_pushcallparts(lua_State *L, int regidx, int opts, const char *loc, size_t loclen, int body,
                      const char *rkey, const char *rval, size_t rlen);
int vx_newrequest(lua_State *L, const char *call, const char *method, int regidx);
void vx_pushurl(lua_State *L, int base, int opts, const char *path, size_t pathlen, const char *suffix,
                const char *collection);

/* --- reader.c --- */
/* A request as a transport reads it: every field checked, the strings anchored on the Lua stack
 * by vx_readrequest (valid while the caller leaves the stack above the request in place). */
typedef struct {
  const char *method;
  int has_body;          /* POST, PUT: a body goes with it (empty when the request has none) */
  const char *url;
  size_t urllen;
  vx_url u;
  int headers;           /* stack index of the header lines (a list of "Name: value"), 0: none */
  size_t nheaders;
  int body;              /* stack index of the body string, 0: none */
  const char *bodytext;
  size_t bodylen;
  int token;             /* stack index of the token string, 0: none */
  const char *tokentext;
  size_t tokenlen;
} vx_request;
void vx_readrequest(lua_State *L, int idx, int tokidx, vx_request *r);

/* --- buf.c --- */
typedef struct {
  char *data;
  size_t len, cap, limit;
  int overflow; /* 1: over limit, 2: out of memory */
} vx_buf;
/* A buffer's first allocation, doubled as it fills: most answers' head and body fit in it (a
 * cancel's answer is "{}", its head a few hundred bytes). Each handle has two; with 4 KiB each,
 * 1,000 handles made at once by a cancel_many touched 8 MiB of fresh pages (issue 20 §3). */
#define VX_BUF_FIRST ((size_t)512)
size_t vx_bufappend(vx_buf *b, const char *p, size_t n);
/* Empties b for reuse; its memory is given back when over keep bytes (vx_bufreset: VX_BUF_KEEP). */
#define VX_BUF_KEEP ((size_t)1 << 20)
void vx_bufkeep(vx_buf *b, size_t keep);
void vx_bufreset(vx_buf *b);

/* --- json.c, response.c --- */
int vx_pushjson(lua_State *L, const char *s, size_t n);
int vx_pushpagenames(lua_State *L, const char *body, size_t len);
int vx_classify(lua_State *L, long status, const char *head, size_t hlen, const char *body, size_t blen,
                int want_headers);
enum { VX_OVER_BODY, VX_OVER_HEAD, VX_OVER_LINE };
void vx_pushoversize(lua_State *L, int what, long status);

/* --- share.c --- */
/* A connection cache (with DNS and TLS sessions) shared by the handles of one client, so its
 * blocking calls and its non-blocking transfers use the same connections. Allocated apart from
 * its userdata: it lives until both the userdata and every handle using it are gone, in
 * whatever order the garbage collector finalizes them. */
typedef struct vx_sharestate {
  CURLSH *sh;
  int refs;   /* handles using it */
  int orphan; /* its userdata was closed or collected */
} vx_sharestate;

typedef struct {
  vx_sharestate *st; /* NULL when closed */
} vx_share;

void vx_share_release(vx_sharestate *st);
vx_sharestate *vx_checkshare(lua_State *L, int idx);

/* --- handle.c, multi.c --- */
struct vx_multi;

typedef struct vx_handle {
  CURL *easy;                /* NULL when closed */
  struct curl_slist *hdrs;   /* headers of the request in flight (the token among them) */
  vx_buf body, head;          /* head: the last response's head (after any 1xx) */
  size_t headtotal;          /* head bytes of every response of the exchange, 1xx ones included */
  char *default_cainfo, *default_capath;
  int plain_set;             /* the connection options are those of a request with no proxy or client
                                certificate and CA file plain_ca (NULL: the system store) */
  char *plain_ca;
  long requests, connects;
  /* non-blocking transfers: the multi handle it runs in, its place in that multi's list */
  struct vx_multi *multi;
  struct vx_handle *prev, *next;
  int state;                 /* VX_IDLE, VX_RUNNING, VX_DONE */
  int want_headers;          /* return the headers of a successful answer too */
  int names_only;            /* a listing page: its operations' names only (json.c, vx_pushpagenames) */
  vx_sharestate *share;      /* the connection cache it uses, if shared */
  CURLcode rc;               /* result of a finished non-blocking transfer */
  double timeout;            /* the request's timeout in seconds (req.timeout), as vx_prepare read it */
  double deadline;           /* a running transfer's timeout (monotonic seconds), plus a grace */
  /* a transfer started with a slot (handle:start's 5th argument, > 0): once finished it waits in
   * its multi's finished queue (fmulti's, linked by fnext) until multi:finished() takes its slot */
  lua_Integer slot;
  struct vx_multi *fmulti;
  struct vx_handle *fnext;
  char errbuf[CURL_ERROR_SIZE];
} vx_handle;

enum { VX_IDLE, VX_RUNNING, VX_DONE };

typedef struct vx_multi {
  CURLM *multi;              /* NULL when closed */
  vx_handle *head;           /* transfers added and not yet removed */
  vx_handle *fhead, *ftail;  /* finished transfers with a slot, not yet taken by multi:finished(),
                                in the order they finished */
} vx_multi;

void vx_detach(vx_handle *h);
void vx_unqueue(vx_handle *h);
double vx_monotonic(void);
int vx_attach(vx_multi *m, vx_handle *h);
vx_multi *vx_checkmulti(lua_State *L, int idx);

/* --- each part registers its metatables and core.* functions into the table on the stack top --- */
void vx_error_open(lua_State *L);
void vx_options_open(lua_State *L);
void vx_request_open(lua_State *L);
void vx_json_open(lua_State *L);
void vx_response_open(lua_State *L);
void vx_h1_open(lua_State *L);
void vx_handle_open(lua_State *L);
void vx_multi_open(lua_State *L);
void vx_share_open(lua_State *L);
void vx_jwt_open(lua_State *L);
void vx_sigv4_open(lua_State *L);
void vx_sys_open(lua_State *L);
void vx_spawn_open(lua_State *L);
void vx_redis_open(lua_State *L);

#endif
