/*
 * http.c - the HTTPS client of wecom.core.
 *
 * One code path: everything runs on a libcurl multi handle.  s:submit() adds
 * a transfer, s:poll() drives the multi and hands back finished transfers,
 * and s:request() is submit + drive until that one transfer has finished.
 *
 * On Linux the multi is driven by its socket interface over an epoll set:
 * libcurl only looks at the connections that had activity (or a due
 * timer).  curl_multi_perform visits every transfer and checks each one's
 * socket with a poll() of its own, which costs O(transfers) system calls per
 * round at 64 in flight.  Elsewhere perform + curl_multi_poll it is.
 *
 * A session owns a CURLM, a CURLSH (connections, TLS sessions, DNS) and a
 * pool of idle easy handles, so sequential and concurrent calls reuse
 * keep-alive connections and TLS sessions.
 *
 * No Lua error may unwind through libcurl frames: the callbacks only append
 * to C buffers, and Lua values are built after curl has returned.  Request
 * tables are read (and may raise) before any C resource is taken.
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#if defined(__linux__)
#define WECOM_HTTP_EPOLL 1
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>
#endif

#include "wecom.h"

#define SESSION_MT               "wecom.core.http_session"
#define METHOD(name)             SESSION_MT ":" name    /* the call as Lua code writes it */
#define DEFAULT_TIMEOUT          5.0
#define DEFAULT_MAX_BODY         (8 * 1024 * 1024)  /* API responses */
#define DEFAULT_MAX_CONNECTIONS  64
#define DEFAULT_USER_AGENT       "wecom-lua/" WECOM_CORE_VERSION
#define MAX_IDLE_HANDLES         64
#define MAX_HEADER_BYTES         (256 * 1024)       /* the response's header block */
#define KEEP_BUFFER_BYTES        (16 * 1024)  /* larger buffers are freed on reuse */
#define MAX_BODY_LIMIT           1073741824   /* the largest max_body: 1 GiB */

/* ===== libcurl global init ===== */

/* curl_global_init is not thread-safe; run it exactly once per process.
 * These two statics are written once and then only read. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ===== growable byte buffers (filled from libcurl callbacks) ===== */

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} buffer;

static int buffer_append(buffer *b, const char *p, size_t n)
{
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 1024;
        char *data;
        while (cap - b->len < n) {
            if (cap > ((size_t)-1) / 2)
                return -1;
            cap *= 2;
        }
        data = realloc(b->data, cap);
        if (data == NULL)
            return -1;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static void buffer_clear(buffer *b)
{
    if (b->cap > KEEP_BUFFER_BYTES) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    b->len = 0;
}

static void buffer_free(buffer *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ===== transfers ===== */

typedef struct transfer {
    struct transfer *prev, *next;   /* in exactly one session list */
    CURL *easy;
    struct curl_slist *headers;
    char *secret_part;              /* the URL's query + fragment, for scrubbing */
    buffer body;
    buffer head;                    /* raw header lines of the last response */
    size_t max_body;
    lua_Integer id;
    CURLcode result;
    int finished;
    int body_too_large;             /* over max_body */
    int head_too_large;             /* over MAX_HEADER_BYTES */
    int out_of_memory;
    char errbuf[CURL_ERROR_SIZE];
} transfer;

typedef struct {
    transfer *head, *tail;
    int count;
} transfer_list;

static void list_push(transfer_list *l, transfer *t)
{
    t->next = NULL;
    t->prev = l->tail;
    if (l->tail)
        l->tail->next = t;
    else
        l->head = t;
    l->tail = t;
    l->count++;
}

static void list_remove(transfer_list *l, transfer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        l->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        l->tail = t->prev;
    t->prev = t->next = NULL;
    l->count--;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    transfer *t = ud;
    size_t len = size * n;
    if (len > t->max_body - t->body.len) {
        t->body_too_large = 1;
        return 0;   /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (buffer_append(&t->body, p, len) != 0) {
        t->out_of_memory = 1;
        return 0;
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    transfer *t = ud;
    size_t len = size * n;
    /* A status line starts a new response (1xx, proxy CONNECT): keep only
     * the headers of the last one. */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        t->head.len = 0;
    if (len > MAX_HEADER_BYTES - t->head.len) {
        t->head_too_large = 1;
        return 0;
    }
    if (buffer_append(&t->head, p, len) != 0) {
        t->out_of_memory = 1;
        return 0;
    }
    return len;
}

static void transfer_reset(transfer *t)
{
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    free(t->secret_part);
    t->secret_part = NULL;
    buffer_clear(&t->body);
    buffer_clear(&t->head);
    t->result = CURLE_OK;
    t->finished = t->body_too_large = t->head_too_large = t->out_of_memory = 0;
    t->errbuf[0] = '\0';
}

static void transfer_free(transfer *t)
{
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->secret_part);
    buffer_free(&t->body);
    buffer_free(&t->head);
    free(t);
}

/* ===== sessions ===== */

typedef struct {
    CURLM *multi;
    CURLSH *share;
    transfer_list idle;      /* reusable easy handles */
    transfer_list running;   /* added to the multi */
    transfer_list done;      /* finished, result not yet handed to Lua */
    lua_Integer next_id;
    char *ca_file;
    char *proxy;
    char *noproxy;
    char *user_agent;
    long timeout_ms;
    long connect_timeout_ms;  /* 0: only the total timeout applies */
    size_t max_body;
    long max_connections;
    int reuse;
    int allow_http;
#ifdef WECOM_HTTP_EPOLL
    int epfd;                /* the sockets libcurl wants watched */
    double timer_at;         /* libcurl's timeout (monotonic seconds), < 0: none */
#endif
} session;

static void session_destroy(session *s)
{
    transfer *t;
    while ((t = s->running.head) != NULL) {
        list_remove(&s->running, t);
        curl_multi_remove_handle(s->multi, t->easy);
        transfer_free(t);
    }
    while ((t = s->done.head) != NULL) {
        list_remove(&s->done, t);
        transfer_free(t);
    }
    while ((t = s->idle.head) != NULL) {
        list_remove(&s->idle, t);
        transfer_free(t);
    }
    if (s->multi)
        curl_multi_cleanup(s->multi);
    if (s->share)
        curl_share_cleanup(s->share);
#ifdef WECOM_HTTP_EPOLL
    if (s->epfd >= 0)
        close(s->epfd);
#endif
    free(s->ca_file);
    free(s->proxy);
    free(s->noproxy);
    free(s->user_agent);
    free(s);
}

static const wecom_class session_class;    /* defined with the methods, below */

static session *check_session(lua_State *L, const char *where)
{
    session **ud = wecom_check_object(L, 1, &session_class, where);
    if (*ud == NULL)
        wecom_closed(L, where, "http session");
    return *ud;
}

/* ===== option parsing (may raise; runs before C resources are taken) ===== */

static long seconds_to_ms(double seconds)
{
    return (long)ceil(seconds * 1000.0);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d;
    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *failed = 1;
    return d;
}

static const char *const session_keys[] = {
    "ca_file", "timeout", "connect_timeout", "proxy", "noproxy", "user_agent",
    "max_body", "max_connections", "reuse", "allow_http", NULL
};

#ifdef WECOM_HTTP_EPOLL
/* An idle connection's socket stays in the epoll set, "parked" (no events
 * asked for, this bit in its data), so the next request on it costs one
 * epoll_ctl instead of three.  Only an error or a hang-up can be reported
 * for a parked socket: it is taken out of the set then. */
#define PARKED ((uint64_t)1 << 32)

/* libcurl says which socket to watch for what (no Lua in here).  A socket
 * libcurl closed has left the epoll set by itself; a failed epoll_ctl
 * surfaces as a transfer that times out. */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    session *s = (session *)userp;
    struct epoll_event ev;
    (void)easy;
    (void)socketp;
    memset(&ev, 0, sizeof ev);
    if (what == CURL_POLL_REMOVE) {
        ev.data.u64 = (uint64_t)(uint32_t)fd | PARKED;
        epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
        return 0;
    }
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    ev.data.u64 = (uint64_t)(uint32_t)fd;
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev) != 0 && errno == ENOENT)
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

/* libcurl's one timer: -1 stops it, 0 means "call me now". */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    session *s = (session *)userp;
    (void)multi;
    s->timer_at = timeout_ms < 0 ? -1 : wecom_clock(CLOCK_MONOTONIC) + timeout_ms / 1000.0;
    return 0;
}
#endif

/* core.http_session([opts]) -> session */
static int l_http_session(lua_State *L)
{
    const char *ca_file = NULL, *proxy = NULL, *noproxy = NULL, *user_agent = NULL;
    double timeout = DEFAULT_TIMEOUT, connect_timeout = 0;
    long timeout_ms, connect_timeout_ms = 0;
    size_t max_body = DEFAULT_MAX_BODY, max_connections = DEFAULT_MAX_CONNECTIONS;
    int reuse = 1, allow_http = 0, failed = 0;
    session **ud;
    session *s;
    wecom_opts o;

    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    wecom_opts_init(&o, L, 1, SESSION_MT, "opts", session_keys);
    ca_file = wecom_opt_field_string(&o, "ca_file", NULL);
    proxy = wecom_opt_field_string(&o, "proxy", NULL);
    noproxy = wecom_opt_field_string(&o, "noproxy", NULL);
    user_agent = wecom_opt_field_string(&o, "user_agent", NULL);
    wecom_opt_field_seconds(&o, "timeout", &timeout);
    timeout_ms = seconds_to_ms(timeout);
    if (wecom_opt_field_seconds(&o, "connect_timeout", &connect_timeout))
        connect_timeout_ms = seconds_to_ms(connect_timeout);
    max_body = (size_t)wecom_opt_field_integer(&o, "max_body", (lua_Integer)max_body, 1, MAX_BODY_LIMIT);
    max_connections = (size_t)wecom_opt_field_integer(&o, "max_connections",
                                                       (lua_Integer)max_connections, 1, 10000);
    reuse = wecom_opt_field_boolean(&o, "reuse", reuse);
    allow_http = wecom_opt_field_boolean(&o, "allow_http", allow_http);

    pthread_once(&curl_once, curl_init_once);
    if (curl_init_result != CURLE_OK)
        return luaL_error(L, SESSION_MT ": libcurl initialisation failed: %s",
                          curl_easy_strerror(curl_init_result));

    /* metatable first, so __gc owns whatever gets allocated below */
    ud = lua_newuserdata(L, sizeof *ud);
    *ud = NULL;
    luaL_getmetatable(L, SESSION_MT);
    lua_setmetatable(L, -2);

    s = calloc(1, sizeof *s);
    if (s == NULL)
        return luaL_error(L, SESSION_MT ": out of memory");
    *ud = s;
#ifdef WECOM_HTTP_EPOLL
    s->epfd = -1;
    s->timer_at = -1;
#endif
    s->next_id = 1;
    s->timeout_ms = timeout_ms;
    s->connect_timeout_ms = connect_timeout_ms;
    s->max_body = max_body;
    s->max_connections = (long)max_connections;
    s->reuse = reuse;
    s->allow_http = allow_http;
    s->ca_file = dup_or_null(ca_file, &failed);
    s->proxy = dup_or_null(proxy, &failed);
    s->noproxy = dup_or_null(noproxy, &failed);
    s->user_agent = dup_or_null(user_agent ? user_agent : DEFAULT_USER_AGENT, &failed);
    s->multi = curl_multi_init();
    s->share = curl_share_init();
    if (failed || s->multi == NULL || s->share == NULL)
        return luaL_error(L, SESSION_MT ": out of memory");   /* __gc frees the partial session */

    /* One lua_State drives a session, so the share needs no lock callbacks. */
    if (curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK
        || curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK
        || curl_share_setopt(s->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK)
        return luaL_error(L, SESSION_MT ": libcurl share setup failed");

    curl_multi_setopt(s->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, s->max_connections);
    /* without this the idle cache shrinks to 4x the handles in flight, which
     * is zero between sequential calls */
    curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, s->max_connections);
#ifdef WECOM_HTTP_EPOLL
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0)
        return luaL_error(L, SESSION_MT ": epoll_create1 failed");
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(s->multi, CURLMOPT_SOCKETDATA, (void *)s);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(s->multi, CURLMOPT_TIMERDATA, (void *)s);
#endif
    return 1;
}

/* ===== request tables ===== */

typedef struct {
    const char *method;
    const char *url;
    size_t url_len;
    const char *body;
    size_t body_len;
    int has_body;
    int header_index;   /* stack index of a "Name: value\n..." string, or 0 */
    long timeout_ms;
    long connect_timeout_ms;
    size_t max_body;
} request_spec;

static const char *const request_keys[] = {
    "method", "url", "headers", "body", "timeout", "connect_timeout", "max_body", NULL
};

static int is_token_char(int c)
{
    return c > 32 && c < 127 && strchr("()<>@,;:\\\"/[]?={}", c) == NULL;
}

/* Collects the header table into one Lua string of "Name: value" lines so the
 * curl_slist can be built later without touching Lua. */
static void read_headers(const wecom_opts *o, request_spec *spec)
{
    lua_State *L = o->L;
    int headers, acc;

    lua_getfield(L, o->idx, "headers");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    if (!lua_istable(L, -1))
        wecom_bad_arg(L, -1, o->where, "req.headers", "a table");
    headers = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, headers) != 0) {
        size_t nlen, vlen, i;
        const char *name, *value;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            wecom_usage(L, o->where, "req.headers must map string names to string values");
        name = lua_tolstring(L, -2, &nlen);
        value = lua_tolstring(L, -1, &vlen);
        if (nlen == 0)
            wecom_usage(L, o->where, "req.headers: a header name must not be empty");
        for (i = 0; i < nlen; i++)
            if (!is_token_char((unsigned char)name[i]))
                wecom_usage(L, o->where, "req.headers: header name '%s' has an invalid character", name);
        for (i = 0; i < vlen; i++)
            if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
                wecom_usage(L, o->where, "req.headers: header '%s' has a CR, LF or NUL in its value", name);
        lua_pop(L, 1);
    }
    lua_pushliteral(L, "");
    acc = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, headers) != 0) {
        lua_pushvalue(L, acc);
        if (lua_rawlen(L, -2) == 0)   /* curl's way to send an empty header */
            lua_pushfstring(L, "%s;\n", lua_tostring(L, -3));
        else
            lua_pushfstring(L, "%s: %s\n", lua_tostring(L, -3), lua_tostring(L, -2));
        lua_concat(L, 2);
        lua_replace(L, acc);
        lua_pop(L, 1);
    }
    lua_remove(L, headers);
    spec->header_index = lua_gettop(L);
}

static void read_request(lua_State *L, session *s, int req, const char *where, request_spec *spec)
{
    static const char *const no_body[] = { "GET", "HEAD", NULL };
    double seconds;
    size_t i;
    wecom_opts o;

    wecom_opts_init(&o, L, req, where, "req", request_keys);
    memset(spec, 0, sizeof *spec);
    spec->timeout_ms = s->timeout_ms;
    spec->connect_timeout_ms = s->connect_timeout_ms;
    spec->max_body = s->max_body;

    spec->url = wecom_opt_field_string(&o, "url", &spec->url_len);
    if (spec->url == NULL) {
        lua_getfield(L, req, "url");
        wecom_bad_arg(L, -1, where, "req.url", "a string");
    }
    spec->method = wecom_opt_field_string(&o, "method", &i);
    if (spec->method == NULL) {
        spec->method = "GET";
    } else {
        int upper = i > 0 && i <= 16;
        while (upper && i-- > 0)
            upper = isupper((unsigned char)spec->method[i]) != 0;
        if (!upper)
            wecom_usage(L, where, "req.method must be 1..16 upper-case letters (got '%s')",
                        spec->method);
    }
    lua_getfield(L, req, "body");
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            wecom_bad_arg(L, -1, where, "req.body", "a string");
        spec->body = lua_tolstring(L, -1, &spec->body_len);   /* NUL bytes allowed */
        spec->has_body = 1;
    }
    lua_pop(L, 1);
    for (i = 0; spec->has_body && no_body[i] != NULL; i++)
        if (strcmp(spec->method, no_body[i]) == 0)
            wecom_usage(L, where, "a %s request cannot have a body", spec->method);

    if (wecom_opt_field_seconds(&o, "timeout", &seconds))
        spec->timeout_ms = seconds_to_ms(seconds);
    if (wecom_opt_field_seconds(&o, "connect_timeout", &seconds))
        spec->connect_timeout_ms = seconds_to_ms(seconds);
    spec->max_body = (size_t)wecom_opt_field_integer(&o, "max_body", (lua_Integer)spec->max_body,
                                                     1, MAX_BODY_LIMIT);
    read_headers(&o, spec);
}

/* ===== submitting ===== */

static transfer *take_transfer(session *s)
{
    transfer *t = s->idle.head;
    if (t != NULL) {
        list_remove(&s->idle, t);
        curl_easy_reset(t->easy);
        return t;
    }
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->easy = curl_easy_init();
    if (t->easy == NULL) {
        free(t);
        return NULL;
    }
    return t;
}

static void recycle_transfer(session *s, transfer *t)
{
    transfer_reset(t);
    if (s->idle.count >= MAX_IDLE_HANDLES)
        transfer_free(t);
    else
        list_push(&s->idle, t);
}

#define SETOPT(opt, val) \
    do { if (curl_easy_setopt(e, (opt), (val)) != CURLE_OK) return -1; } while (0)

/* Sets every option of a (reset) easy handle; no Lua calls in here. */
static int configure(session *s, transfer *t, const request_spec *spec, const char *header_lines)
{
    CURL *e = t->easy;
    const char *q;

    SETOPT(CURLOPT_PRIVATE, (void *)t);
    SETOPT(CURLOPT_SHARE, s->share);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_URL, spec->url);
    SETOPT(CURLOPT_PROTOCOLS_STR, s->allow_http ? "https,http" : "https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    /* verification is not optional */
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (s->ca_file) {
        SETOPT(CURLOPT_CAINFO, s->ca_file);
        SETOPT(CURLOPT_CAPATH, (char *)NULL);   /* replace, not extend, the system store */
    }
    /* libcurl reads https_proxy/no_proxy itself unless CURLOPT_PROXY is set */
    if (s->proxy)
        SETOPT(CURLOPT_PROXY, s->proxy);
    if (s->noproxy)
        SETOPT(CURLOPT_NOPROXY, s->noproxy);
    SETOPT(CURLOPT_USERAGENT, s->user_agent);
    SETOPT(CURLOPT_TIMEOUT_MS, spec->timeout_ms);
    if (spec->connect_timeout_ms > 0)
        SETOPT(CURLOPT_CONNECTTIMEOUT_MS, spec->connect_timeout_ms);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    if (!s->reuse) {
        SETOPT(CURLOPT_FRESH_CONNECT, 1L);
        SETOPT(CURLOPT_FORBID_REUSE, 1L);
    }
    SETOPT(CURLOPT_ERRORBUFFER, t->errbuf);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, (void *)t);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)t);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)spec->max_body);

    if (strcmp(spec->method, "GET") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(spec->method, "HEAD") == 0) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        if (strcmp(spec->method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, spec->method);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(spec->has_body ? spec->body_len : 0));
        SETOPT(CURLOPT_COPYPOSTFIELDS, spec->has_body ? spec->body : "");
    }

    /* "Expect: 100-continue" would cost a round trip on larger POSTs */
    t->headers = curl_slist_append(NULL, "Expect:");
    if (t->headers == NULL)
        return -1;
    while (header_lines && *header_lines) {
        const char *nl = strchr(header_lines, '\n');
        size_t len = (size_t)(nl - header_lines);
        char line[8192];
        struct curl_slist *l;
        char *heap = NULL, *p = line;
        if (len >= sizeof line) {
            heap = malloc(len + 1);
            if (heap == NULL)
                return -1;
            p = heap;
        }
        memcpy(p, header_lines, len);
        p[len] = '\0';
        l = curl_slist_append(t->headers, p);
        free(heap);
        if (l == NULL)
            return -1;
        t->headers = l;
        header_lines = nl + 1;
    }
    SETOPT(CURLOPT_HTTPHEADER, t->headers);

    q = strpbrk(spec->url, "?#");
    if (q != NULL && q[1] != '\0') {
        t->secret_part = strdup(q);
        if (t->secret_part == NULL)
            return -1;
    }
    t->max_body = spec->max_body;
    return 0;
}

#undef SETOPT

/* Reads the request at stack index req and adds it to the multi. Returns the
 * transfer; raises on bad arguments or when resources run out. */
static transfer *submit(lua_State *L, session *s, int req, const char *where)
{
    request_spec spec;
    const char *header_lines = NULL;
    transfer *t;
    CURLMcode mc;

    read_request(L, s, req, where, &spec);
    if (spec.header_index)
        header_lines = lua_tostring(L, spec.header_index);
    t = take_transfer(s);
    if (t == NULL)
        luaL_error(L, "%s: out of memory", where);
    if (configure(s, t, &spec, header_lines) != 0) {
        transfer_reset(t);
        transfer_free(t);
        luaL_error(L, "%s: out of memory configuring the request", where);
    }
    mc = curl_multi_add_handle(s->multi, t->easy);
    if (mc != CURLM_OK) {
        transfer_reset(t);
        transfer_free(t);
        luaL_error(L, "%s: curl_multi_add_handle: %s", where, curl_multi_strerror(mc));
    }
    t->id = s->next_id++;
    list_push(&s->running, t);
    if (spec.header_index)
        lua_remove(L, spec.header_index);
    return t;
}

/* ===== driving the multi (no Lua calls) ===== */

/* Moves finished transfers from running to done; returns how many. */
static int collect_finished(session *s)
{
    CURLMsg *msg;
    int left, n = 0;
    while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
        transfer *t = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        if (t == NULL)
            continue;
        t->result = msg->data.result;
        t->finished = 1;
        curl_multi_remove_handle(s->multi, t->easy);
        list_remove(&s->running, t);
        list_push(&s->done, t);
        n++;
    }
    return n;
}

#ifdef WECOM_HTTP_EPOLL
#define MAX_EVENTS 64

/* Waits up to wait_ms (0: not at all; never past libcurl's timer) for
 * socket activity, hands it to libcurl, then runs the timer if it is due. */
static CURLMcode step(session *s, int wait_ms)
{
    struct epoll_event ev[MAX_EVENTS];
    int running = 0, n, i;
    CURLMcode mc = CURLM_OK;
    if (s->timer_at >= 0 && wait_ms > 0) {
        double left = s->timer_at - wecom_clock(CLOCK_MONOTONIC);
        if (left <= 0)
            wait_ms = 0;
        else if (left * 1000 < wait_ms)
            wait_ms = (int)ceil(left * 1000);
    }
    n = epoll_wait(s->epfd, ev, MAX_EVENTS, wait_ms);
    for (i = 0; i < n && mc == CURLM_OK; i++) {
        int fd = (int)(uint32_t)ev[i].data.u64;
        int bits;
        if (ev[i].data.u64 & PARKED) {
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
            continue;
        }
        bits = (ev[i].events & EPOLLIN ? CURL_CSELECT_IN : 0)
             | (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0)
             | (ev[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        mc = curl_multi_socket_action(s->multi, fd, bits, &running);
    }
    if (mc == CURLM_OK && s->timer_at >= 0 && s->timer_at <= wecom_clock(CLOCK_MONOTONIC)) {
        s->timer_at = -1;      /* libcurl sets it again if it wants */
        mc = curl_multi_socket_action(s->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    return mc;
}

/* One round: what is ready, collect, and wait up to wait_ms for socket
 * activity when nothing finished. Returns a CURLMcode. */
static CURLMcode drive(session *s, int wait_ms)
{
    CURLMcode mc = step(s, 0);
    if (mc != CURLM_OK)
        return mc;
    if (collect_finished(s) == 0 && s->running.count > 0 && wait_ms > 0) {
        mc = step(s, wait_ms);
        if (mc != CURLM_OK)
            return mc;
        collect_finished(s);
    }
    return CURLM_OK;
}
#else
/* One round: perform, collect, and wait up to wait_ms for socket activity
 * when nothing finished. Returns a CURLMcode. */
static CURLMcode drive(session *s, int wait_ms)
{
    int running = 0;
    CURLMcode mc = curl_multi_perform(s->multi, &running);
    if (mc != CURLM_OK)
        return mc;
    if (collect_finished(s) == 0 && s->running.count > 0 && wait_ms > 0) {
        mc = curl_multi_poll(s->multi, NULL, 0, wait_ms, NULL);
        if (mc != CURLM_OK)
            return mc;
        mc = curl_multi_perform(s->multi, &running);
        if (mc != CURLM_OK)
            return mc;
        collect_finished(s);
    }
    return CURLM_OK;
}
#endif

/* ===== results into Lua (after curl returned) ===== */

static const char *error_kind(CURLcode rc)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return "timeout";
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return "tls";
    default:
        return "transport";
    }
}

/* Replaces every occurrence of needle in s (in place; the text never grows). */
static void cut_all(char *s, const char *needle, const char *replacement)
{
    size_t nlen = strlen(needle), rlen = strlen(replacement);
    char *p;
    if (nlen == 0)
        return;
    if (rlen > nlen)
        rlen = 0;
    while ((p = strstr(s, needle)) != NULL) {
        memcpy(p, replacement, rlen);
        memmove(p + rlen, p + nlen, strlen(p + nlen) + 1);
    }
}

/* Credentials travel in the query string (access_token=...): never let any
 * part of it reach an error message. */
static void scrub(char *msg, const char *secret_part)
{
    char *p;
    if (secret_part)
        cut_all(msg, secret_part, "?...");
    /* belt and braces: anything after a '?' up to whitespace or a quote */
    for (p = strchr(msg, '?'); p != NULL; p = strchr(p + 1, '?')) {
        size_t n = strcspn(p + 1, " \t\r\n'\"");
        if (n > 3) {
            memcpy(p + 1, "...", 3);
            memmove(p + 4, p + 1 + n, strlen(p + 1 + n) + 1);
        }
    }
}

/* The failure of a finished transfer: its message (scrubbed) into msg,
 * its kind as the result, its CURLcode into *code.  Every size limit
 * reports CURLE_FILESIZE_EXCEEDED (as the cosocket transport does), so a
 * caller tells an over-size response from a broken connection by code. */
static const char *describe_failure(const transfer *t, char *msg, size_t size, CURLcode *code)
{
    CURLcode rc = t->result;
    size_t len;

    if (t->head_too_large) {
        rc = CURLE_FILESIZE_EXCEEDED;
        snprintf(msg, size, "response headers exceed the size limit (%d bytes)", MAX_HEADER_BYTES);
    } else if (t->body_too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        rc = CURLE_FILESIZE_EXCEEDED;
        snprintf(msg, size, "response body exceeds the size limit (max_body %lu bytes)",
                 (unsigned long)t->max_body);
    } else if (t->out_of_memory) {
        snprintf(msg, size, "out of memory while receiving the response");
    } else if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
        snprintf(msg, size, "%s: the URL must be https:// (http:// only with allow_http)",
                 curl_easy_strerror(rc));
    } else {
        snprintf(msg, size, "%s", curl_easy_strerror(rc));
        len = strlen(t->errbuf);
        while (len > 0 && (t->errbuf[len - 1] == '\n' || t->errbuf[len - 1] == '\r'))
            len--;
        if (len > 0) {
            size_t at = strlen(msg);
            snprintf(msg + at, size - at, ": %.*s", (int)len, t->errbuf);
        }
    }
    scrub(msg, t->secret_part);
    *code = rc;
    return error_kind(rc);
}

/* request()'s failure: nil, message, kind, curl_code. */
static int push_failure(lua_State *L, const transfer *t)
{
    char msg[CURL_ERROR_SIZE + 256];
    CURLcode rc;
    const char *kind = describe_failure(t, msg, sizeof msg, &rc);
    int n = wecom_fail(L, msg, kind);

    lua_pushinteger(L, (lua_Integer)rc);
    return n + 1;
}

/* The same in a poll() entry: err = message, code = kind, curl_code. */
static void set_failure_fields(lua_State *L, const transfer *t)
{
    char msg[CURL_ERROR_SIZE + 256];
    CURLcode rc;
    const char *kind = describe_failure(t, msg, sizeof msg, &rc);

    lua_pushstring(L, msg);
    lua_setfield(L, -2, "err");
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "code");
    lua_pushinteger(L, (lua_Integer)rc);
    lua_setfield(L, -2, "curl_code");
}

/* Parses raw header lines into { ["lower-name"] = "v1, v2" }. */
static void push_headers(lua_State *L, const buffer *head)
{
    const char *p = head->data, *end = head->data + head->len;
    int tbl;
    lua_newtable(L);
    tbl = lua_gettop(L);
    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon, *v, *ve;
        luaL_Buffer b;
        const char *c;

        if (line_end > p && line_end[-1] == '\r')
            line_end--;
        colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon == NULL || colon == p || (end - p >= 5 && memcmp(p, "HTTP/", 5) == 0)
            || *p == ' ' || *p == '\t') {
            p = eol ? eol + 1 : end;
            continue;
        }
        v = colon + 1;
        while (v < line_end && (*v == ' ' || *v == '\t'))
            v++;
        ve = line_end;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;

        luaL_buffinit(L, &b);
        for (c = p; c < colon; c++)
            luaL_addchar(&b, (char)tolower((unsigned char)*c));
        luaL_pushresult(&b);                 /* name */
        lua_pushvalue(L, -1);
        lua_rawget(L, tbl);                  /* name, old */
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            lua_pushlstring(L, v, (size_t)(ve - v));
        } else {
            lua_pushliteral(L, ", ");
            lua_pushlstring(L, v, (size_t)(ve - v));
            lua_concat(L, 3);
        }
        lua_rawset(L, tbl);
        p = eol ? eol + 1 : end;
    }
}

static void push_response(lua_State *L, const transfer *t)
{
    long status = 0, connects = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)status);
    lua_setfield(L, -2, "status");
    push_headers(L, &t->head);
    lua_setfield(L, -2, "headers");
    lua_pushlstring(L, t->body.len ? t->body.data : "", t->body.len);
    lua_setfield(L, -2, "body");
    lua_pushinteger(L, (lua_Integer)connects);
    lua_setfield(L, -2, "new_connections");
}

static int transfer_failed(const transfer *t)
{
    return t->result != CURLE_OK || t->body_too_large || t->head_too_large || t->out_of_memory;
}

/* ===== session methods ===== */

/* s:submit(req) -> id */
static int l_submit(lua_State *L)
{
    session *s = check_session(L, METHOD("submit"));
    transfer *t = submit(L, s, 2, METHOD("submit"));
    lua_pushinteger(L, t->id);
    return 1;
}

/* s:request(req) -> res | nil, message, kind, curl_code */
static int l_request(lua_State *L)
{
    session *s = check_session(L, METHOD("request"));
    transfer *t = submit(L, s, 2, METHOD("request"));
    int n;
    while (!t->finished) {
        CURLMcode mc = drive(s, 1000);
        if (mc != CURLM_OK)
            return luaL_error(L, METHOD("request") ": libcurl multi: %s", curl_multi_strerror(mc));
    }
    /* t stays in the done list until its Lua value exists, so a memory
     * error while building it leaks nothing */
    if (transfer_failed(t)) {
        n = push_failure(L, t);
    } else {
        push_response(L, t);
        n = 1;
    }
    list_remove(&s->done, t);
    recycle_transfer(s, t);
    return n;
}

/* s:poll([timeout_seconds]) -> { {id=, res=} | {id=, err=, code=, curl_code=}, ... }
 * Waits until something finished, the timeout passed, or nothing is in
 * flight; without a timeout it waits for the next completion. */
static int l_poll(lua_State *L)
{
    session *s = check_session(L, METHOD("poll"));
    double timeout = lua_isnoneornil(L, 2) ? -1 : wecom_check_seconds(L, 2, METHOD("poll"), "timeout", 0);
    double waited = 0;
    int n = 0;
    CURLMcode mc;

    mc = drive(s, 0);
    while (mc == CURLM_OK && s->done.count == 0 && s->running.count > 0) {
        int wait_ms = 1000;
        if (timeout >= 0) {
            double left = timeout - waited;
            if (left <= 0)
                break;
            wait_ms = left * 1000 < 1000 ? (int)ceil(left * 1000) : 1000;
        }
        {
            double started = wecom_clock(CLOCK_MONOTONIC);
            mc = drive(s, wait_ms);
            waited += wecom_clock(CLOCK_MONOTONIC) - started;
        }
    }
    if (mc != CURLM_OK)
        return luaL_error(L, METHOD("poll") ": libcurl multi: %s", curl_multi_strerror(mc));

    lua_createtable(L, s->done.count, 0);
    while (s->done.head != NULL) {
        transfer *t = s->done.head;
        lua_createtable(L, 0, 4);
        lua_pushinteger(L, t->id);
        lua_setfield(L, -2, "id");
        if (transfer_failed(t)) {
            set_failure_fields(L, t);
        } else {
            push_response(L, t);
            lua_setfield(L, -2, "res");
        }
        lua_rawseti(L, -2, ++n);
        list_remove(&s->done, t);
        recycle_transfer(s, t);
    }
    return 1;
}

/* s:pending() -> submitted requests whose result poll() has not returned */
static int l_pending(lua_State *L)
{
    session **ud = wecom_check_object(L, 1, &session_class, METHOD("pending"));
    session *s = *ud;
    lua_pushinteger(L, s ? s->running.count + s->done.count : 0);
    return 1;
}

/* close(), __gc and __close: idempotent */
static int session_close(lua_State *L)
{
    session **ud = wecom_check_object(L, 1, &session_class, METHOD("close"));
    if (*ud != NULL) {
        session *s = *ud;
        *ud = NULL;
        session_destroy(s);
    }
    return 0;
}

static int session_tostring(lua_State *L)
{
    session **ud = wecom_check_object(L, 1, &session_class, "tostring");

    if (*ud == NULL)
        lua_pushfstring(L, "%s (closed): %p", SESSION_MT, (void *)ud);
    else
        lua_pushfstring(L, "%s (%d pending): %p", SESSION_MT,
                        (*ud)->running.count + (*ud)->done.count, (void *)ud);
    return 1;
}

/* ===== registration ===== */

static const luaL_Reg session_methods[] = {
    { "request", l_request },
    { "submit", l_submit },
    { "poll", l_poll },
    { "pending", l_pending },
    { NULL, NULL }
};

static const wecom_class session_class = {
    SESSION_MT, session_methods, session_close, session_tostring
};

void wecom_http_open(lua_State *L)
{
    wecom_class_register(L, &session_class);
    lua_pushcfunction(L, l_http_session);
    lua_setfield(L, -2, "http_session");
}
