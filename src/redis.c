/*
 * redis.c - hiredis for the Redis token store.
 *
 * Two faces of the same protocol code:
 * - core.redis_connect{...}: a blocking connection for plain Lua
 *   (redisCommandArgv, binary safe).
 * - core.redis_format(...) and core.redis_reader(): the RESP bytes of one
 *   command and an incremental reply parser, so that inside nginx the bytes
 *   travel over a cosocket while hiredis still does the protocol.
 *
 * Replies map to Lua as: bulk and status -> string, integer -> integer,
 * array -> table (a nil element becomes false, an error element becomes
 * { err = "..." }), nil -> nil.  A top-level error reply is returned as
 * nil, "ERR ...", "redis"; an I/O failure as nil, message, "io"; a protocol
 * failure (reader) as nil, message, "protocol".
 *
 * Caveats:
 * - No Lua API call that can raise runs while hiredis owns memory we must
 *   free: a reply is turned into Lua values inside lua_pcall and freed
 *   before the error, if any, is re-raised.
 * - hiredis writes with write(2); a peer that went away (Redis restart)
 *   would deliver SIGPIPE and kill the process.  SIGPIPE is blocked for the
 *   duration of every blocking call and a pending one is consumed, so the
 *   caller only sees an I/O error and the process-wide disposition is
 *   never touched.
 * - Passwords are sent with AUTH and never kept or copied into a message.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "wecom.h"

#define CONN_MT     "wecom.core.redis_conn"
#define READER_MT   "wecom.core.redis_reader"
#define MAX_ARGS    1024
#define ERR_LEN     512

typedef struct {
    redisContext *ctx;
    char where[300];        /* "host:port" or the socket path, for messages */
} redis_conn;

typedef struct {
    redisReader *reader;
} redis_reader;

/* ===== SIGPIPE guard ===================================================== */

typedef struct {
    sigset_t old;
    int was_pending;
} pipe_guard;

static void pipe_guard_enter(pipe_guard *g)
{
    sigset_t set, pending;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE);
}

static void pipe_guard_leave(pipe_guard *g)
{
    if (!g->was_pending) {
        sigset_t set, pending;
        sigemptyset(&pending);
        sigpending(&pending);
        if (sigismember(&pending, SIGPIPE)) {
            struct timespec zero = { 0, 0 };
            sigemptyset(&set);
            sigaddset(&set, SIGPIPE);
            while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
                ;
        }
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* ===== replies -> Lua ==================================================== */

static void push_reply(lua_State *L, const redisReply *r, int top)
{
    size_t i;

    luaL_checkstack(L, 4, "redis reply nested too deeply");
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)r->integer);
        break;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, r->elements > 0x7fffffff ? 0 : (int)r->elements, 0);
        for (i = 0; i < r->elements; i++) {
            push_reply(L, r->element[i], 0);
            lua_rawseti(L, -2, (int)(i + 1));
        }
        break;
    case REDIS_REPLY_ERROR:
        /* only reached for elements of an array */
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, r->str, r->len);
        lua_setfield(L, -2, "err");
        break;
    case REDIS_REPLY_NIL:
    default:
        if (top)
            lua_pushnil(L);
        else
            lua_pushboolean(L, 0);   /* keeps arrays free of holes */
        break;
    }
}

/* Runs under lua_pcall: [1] = lightuserdata redisReply. */
static int reply_to_lua(lua_State *L)
{
    const redisReply *r = (const redisReply *)lua_touserdata(L, 1);

    if (r->type == REDIS_REPLY_ERROR) {
        lua_pushnil(L);
        lua_pushlstring(L, r->str, r->len);
        lua_pushliteral(L, "redis");
        return 3;
    }
    push_reply(L, r, 1);
    return 1;
}

/*
 * The converter must already be on the stack (pushed before the reply
 * existed).  Consumes it, frees the reply, returns the number of values
 * pushed or re-raises the conversion error (out of memory).
 */
static int push_reply_and_free(lua_State *L, redisReply *reply)
{
    int base = lua_gettop(L) - 1;   /* below the converter */
    int status;

    lua_pushlightuserdata(L, reply);
    status = lua_pcall(L, 1, LUA_MULTRET, 0);
    freeReplyObject(reply);
    if (status != 0)
        return lua_error(L);
    return lua_gettop(L) - base;
}

/* Runs under lua_pcall: [1] = lightuserdata char *, [2] = length. */
static int bytes_to_lua(lua_State *L)
{
    const char *s = (const char *)lua_touserdata(L, 1);
    lua_pushlstring(L, s, (size_t)lua_tonumber(L, 2));
    return 1;
}

static int push_fail(lua_State *L, const char *msg, const char *marker)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, marker);
    return 3;
}

/* ===== command arguments ================================================ */

/*
 * Collects the arguments first..top as strings (numbers are converted in
 * place) into arrays owned by a userdata left on the stack, so nothing
 * leaks if anything raises.  Raises on a bad argument.
 */
static int collect_args(lua_State *L, int first, const char ***argv, size_t **argvlen)
{
    int top = lua_gettop(L), argc = top - first + 1, i;
    void *mem;

    luaL_argcheck(L, argc >= 1, first, "command name expected");
    luaL_argcheck(L, argc <= MAX_ARGS, first, "too many command arguments");
    for (i = first; i <= top; i++) {
        int t = lua_type(L, i);
        if (t != LUA_TSTRING && t != LUA_TNUMBER)
            luaL_argerror(L, i, "string or number expected");
    }
    mem = lua_newuserdata(L, (size_t)argc * (sizeof(char *) + sizeof(size_t)));
    *argvlen = (size_t *)mem;
    *argv = (const char **)((size_t *)mem + argc);
    for (i = 0; i < argc; i++)
        (*argv)[i] = lua_tolstring(L, first + i, &(*argvlen)[i]);
    return argc;
}

/* ===== blocking connection ============================================== */

static redis_conn *conn_check(lua_State *L)
{
    return (redis_conn *)luaL_checkudata(L, 1, CONN_MT);
}

static int conn_destroy(lua_State *L)
{
    redis_conn *c = conn_check(L);

    if (c->ctx != NULL) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    return 0;
}

static int conn_tostring(lua_State *L)
{
    redis_conn *c = conn_check(L);

    if (c->ctx == NULL)
        lua_pushliteral(L, "wecom.core.redis_conn (closed)");
    else
        lua_pushfstring(L, "wecom.core.redis_conn (%s)", c->where);
    return 1;
}

/* Runs one command; the reply, or NULL with msg filled on an I/O error. */
static redisReply *conn_run(redis_conn *c, int argc, const char **argv,
                            const size_t *argvlen, char *msg, size_t msg_size)
{
    pipe_guard g;
    redisReply *reply;

    if (c->ctx->err) {
        snprintf(msg, msg_size, "redis %s: %s", c->where, c->ctx->errstr);
        return NULL;
    }
    pipe_guard_enter(&g);
    reply = (redisReply *)redisCommandArgv(c->ctx, argc, argv, argvlen);
    pipe_guard_leave(&g);
    if (reply == NULL)
        snprintf(msg, msg_size, "redis %s: %s", c->where,
                 c->ctx->err ? c->ctx->errstr : "no reply");
    return reply;
}

/*
 * Sends AUTH or SELECT during connect.  0 on success, else msg is filled
 * (the server's error text; it never echoes the password).
 */
static int conn_setup_command(redis_conn *c, const char *name, const char *arg,
                              size_t arg_len, char *msg, size_t msg_size)
{
    const char *argv[2];
    size_t argvlen[2];
    redisReply *reply;
    int ok;

    argv[0] = name;
    argvlen[0] = strlen(name);
    argv[1] = arg;
    argvlen[1] = arg_len;
    reply = conn_run(c, 2, argv, argvlen, msg, msg_size);
    if (reply == NULL)
        return -1;
    ok = reply->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(msg, msg_size, "redis %s: %s failed: %.*s", c->where, name,
                 (int)(reply->len > 160 ? 160 : reply->len), reply->str);
    freeReplyObject(reply);
    return ok ? 0 : -1;
}

static double opt_number(lua_State *L, int t, const char *name, double dflt)
{
    double v = dflt;

    lua_getfield(L, t, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TNUMBER)
            luaL_error(L, "redis option '%s' must be a number", name);
        v = lua_tonumber(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

static const char *opt_string(lua_State *L, int t, const char *name, const char *dflt, size_t *len)
{
    const char *v = dflt;

    lua_getfield(L, t, name);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "redis option '%s' must be a string", name);
        v = lua_tolstring(L, -1, len);
    } else if (len != NULL) {
        *len = dflt ? strlen(dflt) : 0;
    }
    lua_pop(L, 1);    /* still anchored by the options table */
    return v;
}

/* core.redis_connect{ host =, port =, path =, timeout =, password =, db = } */
static int l_redis_connect(lua_State *L)
{
    const char *host, *path, *password;
    size_t host_len, path_len, password_len = 0;
    double port, timeout, db;
    struct timeval tv;
    redis_conn *c;
    char msg[ERR_LEN];
    char dbbuf[32];
    pipe_guard g;

    luaL_checktype(L, 1, LUA_TTABLE);
    host = opt_string(L, 1, "host", "127.0.0.1", &host_len);
    path = opt_string(L, 1, "path", NULL, &path_len);
    password = opt_string(L, 1, "password", NULL, &password_len);
    port = opt_number(L, 1, "port", 6379);
    timeout = opt_number(L, 1, "timeout", 1);
    db = opt_number(L, 1, "db", 0);
    luaL_argcheck(L, port >= 1 && port <= 65535 && port == (int)port, 1, "port must be 1..65535");
    luaL_argcheck(L, timeout > 0 && timeout <= 86400, 1, "timeout must be > 0 seconds");
    luaL_argcheck(L, db >= 0 && db <= 1e6 && db == (int)db, 1, "db must be a non-negative integer");
    luaL_argcheck(L, host_len > 0 && host_len < 256 && strlen(host) == host_len, 1, "bad host");
    luaL_argcheck(L, path == NULL || (path_len > 0 && path_len < 90 && strlen(path) == path_len),
                  1, "bad socket path");

    c = (redis_conn *)lua_newuserdata(L, sizeof *c);
    c->ctx = NULL;
    if (path != NULL)
        snprintf(c->where, sizeof c->where, "%s", path);
    else
        snprintf(c->where, sizeof c->where, "%s:%d", host, (int)port);
    luaL_getmetatable(L, CONN_MT);
    lua_setmetatable(L, -2);

    tv.tv_sec = (time_t)timeout;
    tv.tv_usec = (suseconds_t)((timeout - (double)tv.tv_sec) * 1e6);
    pipe_guard_enter(&g);
    if (path != NULL)
        c->ctx = redisConnectUnixWithTimeout(path, tv);
    else
        c->ctx = redisConnectWithTimeout(host, (int)port, tv);
    pipe_guard_leave(&g);
    if (c->ctx == NULL)
        return push_fail(L, "redis: out of memory", "io");
    if (c->ctx->err) {
        snprintf(msg, sizeof msg, "redis %s: %s", c->where, c->ctx->errstr);
        goto fail;
    }
    if (redisSetTimeout(c->ctx, tv) != REDIS_OK) {
        snprintf(msg, sizeof msg, "redis %s: cannot set the timeout", c->where);
        goto fail;
    }
    if (password != NULL
        && conn_setup_command(c, "AUTH", password, password_len, msg, sizeof msg) != 0)
        goto fail;
    if (db > 0) {
        snprintf(dbbuf, sizeof dbbuf, "%d", (int)db);
        if (conn_setup_command(c, "SELECT", dbbuf, strlen(dbbuf), msg, sizeof msg) != 0)
            goto fail;
    }
    return 1;

fail:
    redisFree(c->ctx);
    c->ctx = NULL;
    return push_fail(L, msg, "io");
}

/* conn:command(name, ...) -> reply | nil, err, "redis"|"io" */
static int l_conn_command(lua_State *L)
{
    redis_conn *c = conn_check(L);
    const char **argv;
    size_t *argvlen;
    redisReply *reply;
    char msg[ERR_LEN];
    int argc;

    if (c->ctx == NULL)
        return luaL_error(L, "attempt to use a closed redis connection");
    argc = collect_args(L, 2, &argv, &argvlen);
    luaL_checkstack(L, 8, NULL);
    lua_pushcfunction(L, reply_to_lua);
    reply = conn_run(c, argc, argv, argvlen, msg, sizeof msg);
    if (reply == NULL)
        return push_fail(L, msg, "io");
    return push_reply_and_free(L, reply);
}

/* conn:connected() -> false once closed or after an I/O error */
static int l_conn_connected(lua_State *L)
{
    redis_conn *c = conn_check(L);
    lua_pushboolean(L, c->ctx != NULL && c->ctx->err == 0);
    return 1;
}

/* ===== formatter and reader (cosockets) ================================= */

/* core.redis_format(name, ...) -> RESP bytes of the command */
static int l_redis_format(lua_State *L)
{
    const char **argv;
    size_t *argvlen;
    char *cmd = NULL;
    int argc, len, status;

    argc = collect_args(L, 1, &argv, &argvlen);
    luaL_checkstack(L, 4, NULL);
    lua_pushcfunction(L, bytes_to_lua);
    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0 || cmd == NULL)
        return luaL_error(L, "redis_format: out of memory");
    lua_pushlightuserdata(L, cmd);
    lua_pushnumber(L, (lua_Number)len);
    status = lua_pcall(L, 2, 1, 0);
    redisFreeCommand(cmd);
    if (status != 0)
        return lua_error(L);
    return 1;
}

static redis_reader *reader_check(lua_State *L)
{
    return (redis_reader *)luaL_checkudata(L, 1, READER_MT);
}

static redis_reader *reader_open_check(lua_State *L)
{
    redis_reader *r = reader_check(L);
    if (r->reader == NULL)
        luaL_error(L, "attempt to use a closed redis reader");
    return r;
}

static int reader_destroy(lua_State *L)
{
    redis_reader *r = reader_check(L);

    if (r->reader != NULL) {
        redisReaderFree(r->reader);
        r->reader = NULL;
    }
    return 0;
}

static int reader_tostring(lua_State *L)
{
    redis_reader *r = reader_check(L);
    lua_pushstring(L, r->reader == NULL ? "wecom.core.redis_reader (closed)"
                                        : "wecom.core.redis_reader");
    return 1;
}

/* core.redis_reader() -> reader */
static int l_redis_reader(lua_State *L)
{
    redis_reader *r = (redis_reader *)lua_newuserdata(L, sizeof *r);

    r->reader = NULL;
    luaL_getmetatable(L, READER_MT);
    lua_setmetatable(L, -2);
    r->reader = redisReaderCreate();
    if (r->reader == NULL)
        return luaL_error(L, "redis_reader: out of memory");
    return 1;
}

/* reader:feed(bytes) -> true | nil, err, "protocol" */
static int l_reader_feed(lua_State *L)
{
    redis_reader *r = reader_open_check(L);
    size_t len;
    const char *bytes = luaL_checklstring(L, 2, &len);
    char msg[ERR_LEN];

    if (redisReaderFeed(r->reader, bytes, len) != REDIS_OK) {
        snprintf(msg, sizeof msg, "redis protocol error: %s", r->reader->errstr);
        return push_fail(L, msg, "protocol");
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* reader:get_reply() -> reply | false (incomplete) | nil, err, "redis"|"protocol" */
static int l_reader_get_reply(lua_State *L)
{
    redis_reader *r = reader_open_check(L);
    void *reply = NULL;
    char msg[ERR_LEN];

    luaL_checkstack(L, 8, NULL);
    lua_pushcfunction(L, reply_to_lua);
    if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
        snprintf(msg, sizeof msg, "redis protocol error: %s", r->reader->errstr);
        return push_fail(L, msg, "protocol");
    }
    if (reply == NULL) {
        lua_pushboolean(L, 0);
        return 1;
    }
    return push_reply_and_free(L, (redisReply *)reply);
}

/* ===== registration ===================================================== */

static const luaL_Reg conn_methods[] = {
    { "command", l_conn_command },
    { "connected", l_conn_connected },
    { "close", conn_destroy },
    { NULL, NULL }
};

static const luaL_Reg conn_meta[] = {
    { "__gc", conn_destroy },
    { "__close", conn_destroy },
    { "__tostring", conn_tostring },
    { NULL, NULL }
};

static const luaL_Reg reader_methods[] = {
    { "feed", l_reader_feed },
    { "get_reply", l_reader_get_reply },
    { "close", reader_destroy },
    { NULL, NULL }
};

static const luaL_Reg reader_meta[] = {
    { "__gc", reader_destroy },
    { "__close", reader_destroy },
    { "__tostring", reader_tostring },
    { NULL, NULL }
};

static const luaL_Reg redis_funcs[] = {
    { "redis_connect", l_redis_connect },
    { "redis_format", l_redis_format },
    { "redis_reader", l_redis_reader },
    { NULL, NULL }
};

static void new_class(lua_State *L, const char *name, const luaL_Reg *meta,
                      const luaL_Reg *methods)
{
    if (luaL_newmetatable(L, name)) {
        luaL_setfuncs(L, meta, 0);
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__name");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}

void wecom_redis_open(lua_State *L)
{
    new_class(L, CONN_MT, conn_meta, conn_methods);
    new_class(L, READER_MT, reader_meta, reader_methods);
    luaL_setfuncs(L, redis_funcs, 0);
}
