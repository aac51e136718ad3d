/*
 * wecom.h - internal interface between the parts of the wecom.core module.
 *
 * The core is one Lua module built from several translation units; only
 * luaopen_wecom_core is exported (everything else has hidden visibility).
 * Each part registers its functions into the module table that sits on the
 * top of the stack when its *_open function is called.
 *
 * How every function of wecom.core fails (one convention, written here
 * once; util.c holds the helpers that implement it):
 *
 * - A bad argument is the caller's bug: it raises a string that names the
 *   call as Lua code writes it and the argument, at the caller's line:
 *       wecom.core.crypter: aes_key must be 43 characters of base64 (got 12 bytes)
 *       wecom.core.http_session:request: req.url must be a string (got nil)
 *   (wecom_usage, wecom_bad_arg, the wecom_check_* and wecom_opt_* readers).
 *   Using a closed object raises the same way; running out of memory, or
 *   a library state that cannot be, raises as Lua itself does.
 * - A runtime failure (network, server, Redis, a file, a message that does
 *   not verify, decrypt or parse) returns
 *       nil, message [, code [, detail]]
 *   message: one line, never a secret, token or key; code: what a program
 *   branches on, where there is more than one way to fail:
 *       crypter methods, callback_open   the WXBizMsgCrypt code (-40001 ... -40011)
 *       http_session:request             "timeout" | "tls" | "transport"; detail:
 *                                        libcurl's CURLcode
 *       redis                            "redis" (an error reply) | "io" | "protocol"
 *   (wecom_fail, wecom_fail_code).
 * - Answers that are not failures stay plain values: false from
 *   crypter:verify (mismatch), lock:lock (still taken after the timeout),
 *   token_lock (held elsewhere) and redis reader:get_reply (incomplete),
 *   false from callback_open (declined: not an envelope its one-call path
 *   takes; the caller goes its general way), nil from token_get (a miss).
 */
#ifndef WECOM_H
#define WECOM_H

#include <stddef.h>
#include <time.h>

#include "compat.h"

/* Everything but luaopen_wecom_core stays private to the shared object,
 * also when LuaRocks builds without -fvisibility=hidden. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

#define WECOM_CORE_VERSION "0.1.0"

/* Default limits, overridable per call. */
#define WECOM_MAX_BODY   (1024 * 1024)   /* 1 MiB: callback bodies and XML */
#define WECOM_MAX_DEPTH  32              /* XML element nesting */
#define WECOM_MAX_SECONDS 86400.0        /* every timeout and lease */

/* WXBizMsgCrypt error codes (reference 7.6). */
enum {
    WECOM_OK                     = 0,
    WECOM_VALIDATE_SIGNATURE     = -40001,
    WECOM_PARSE_XML              = -40002,
    WECOM_COMPUTE_SIGNATURE      = -40003,
    WECOM_ILLEGAL_AES_KEY        = -40004,
    WECOM_VALIDATE_CORPID        = -40005,
    WECOM_ENCRYPT_AES            = -40006,
    WECOM_DECRYPT_AES            = -40007,
    WECOM_ILLEGAL_BUFFER         = -40008,
    WECOM_ENCODE_BASE64          = -40009,
    WECOM_DECODE_BASE64          = -40010,
    WECOM_GEN_RETURN_XML         = -40011
};

/* ===== util.c: failing, checking arguments, objects ===== */

/* A function's name as Lua code writes it, for messages: WECOM_FN("nonce"). */
#define WECOM_FN(name) "wecom.core." name

/* Runtime failures: push nil, message (and code) and return the number of
 * values, for `return wecom_fail(L, ...)`.  code may be NULL. */
int wecom_fail(lua_State *L, const char *message, const char *code);
int wecom_fail_code(lua_State *L, const char *message, lua_Integer code);

/* Bad arguments: raise "<where>: <message>" at the caller's line.
 * wecom_usage formats as lua_pushfstring does (%s %d %f %p %c %%). */
int wecom_usage(lua_State *L, const char *where, const char *fmt, ...);
/* "<where>: <name> must be <what> (got <the value at idx, described>)" */
int wecom_bad_arg(lua_State *L, int idx, const char *where, const char *name, const char *what);

/* Positional arguments, strictly typed (no number/string coercion). */
const char *wecom_check_string(lua_State *L, int idx, const char *where, const char *name,
                               size_t *len);
const char *wecom_opt_string(lua_State *L, int idx, const char *where, const char *name,
                             size_t *len);   /* NULL when none or nil */
lua_Integer wecom_check_integer(lua_State *L, int idx, const char *where, const char *name,
                                lua_Integer lo, lua_Integer hi);
/* A number of seconds in [0, max] (lo_open: (0, max]). */
double wecom_check_seconds(lua_State *L, int idx, const char *where, const char *name,
                           int lo_open);

/* Fields of an options table: "<where>: <table>.<name> must be ...". */
typedef struct {
    lua_State *L;
    int idx;                /* stack index of the table */
    const char *where;      /* "wecom.core.http_session" */
    const char *table;      /* "opts", "req" */
} wecom_opts;

/* Checks that idx holds a table whose keys are all in known (NULL: any
 * key), so a typo never silently becomes a default. */
void wecom_opts_init(wecom_opts *o, lua_State *L, int idx, const char *where,
                     const char *table, const char *const known[]);
/* A string without NUL bytes, or NULL when absent; it stays anchored by
 * the table. */
const char *wecom_opt_field_string(const wecom_opts *o, const char *name, size_t *len);
int wecom_opt_field_boolean(const wecom_opts *o, const char *name, int dflt);
lua_Integer wecom_opt_field_integer(const wecom_opts *o, const char *name, lua_Integer dflt,
                                    lua_Integer lo, lua_Integer hi);
/* Seconds in (0, 86400]; returns whether the field was set. */
int wecom_opt_field_seconds(const wecom_opts *o, const char *name, double *out);
/* The index in names (NULL-terminated) of the string set, or dflt. */
int wecom_opt_field_choice(const wecom_opts *o, const char *name, const char *const names[],
                           int dflt);

/* Seconds on clock id (CLOCK_REALTIME, CLOCK_MONOTONIC), as a double. */
double wecom_clock(clockid_t id);

/* Classes: a metatable named name (also its __name, e.g.
 * "wecom.core.crypter") with the methods as __index, `close`, __gc and
 * __close all calling the one idempotent destroy, and __tostring.  methods
 * and tostring may be NULL (a private userdata with only a finalizer). */
typedef struct {
    const char *name;
    const luaL_Reg *methods;
    lua_CFunction destroy;
    lua_CFunction tostring;
} wecom_class;

void wecom_class_register(lua_State *L, const wecom_class *c);
/* The userdata of class c at idx, or a raised "<where>: ..." error. */
void *wecom_check_object(lua_State *L, int idx, const wecom_class *c, const char *where);
/* Raises "<where>: attempt to use a closed <what>". */
int wecom_closed(lua_State *L, const char *where, const char *what);
/* "<name> (<state>)", or just the name when state is NULL. */
int wecom_push_tostring(lua_State *L, const char *name, const char *state);

/* ===== registration hooks, one per part; module table on top ===== */
void wecom_crypto_open(lua_State *L);
void wecom_xml_open(lua_State *L);
void wecom_http_open(lua_State *L);
void wecom_token_open(lua_State *L);
void wecom_redis_open(lua_State *L);
void wecom_flock_open(lua_State *L);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif /* WECOM_H */
