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
 * { err = "..." }), nil -> nil.  Failures follow the core's convention
 * (wecom.h) with the code naming the kind: a top-level error reply is
 * nil, "ERR ...", "redis"; an I/O failure nil, message, "io"; a protocol
 * failure (reader) nil, message, "protocol".
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
        lua_pushlstring(L, r->str, r->len);     /* may hold NUL bytes: not wecom_fail */
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

/* ===== command arguments ================================================ */

/*
 * Collects the arguments first..top as strings (numbers are converted in
 * place) into arrays owned by a userdata left on the stack, so nothing
 * leaks if anything raises.  Raises on a bad argument.
 */
static int collect_args(lua_State *L, int first, const char *where, const char ***argv,
                        size_t **argvlen)
{
    int top = lua_gettop(L), argc = top - first + 1, i;
    void *mem;

    if (argc < 1)
        wecom_usage(L, where, "a command name is required");
    if (argc > MAX_ARGS)
        wecom_usage(L, where, "at most %d command arguments", MAX_ARGS);
    for (i = first; i <= top; i++) {
        int t = lua_type(L, i);
        if (t != LUA_TSTRING && t != LUA_TNUMBER) {
            char name[32];
            snprintf(name, sizeof name, "argument #%d", i - first + 1);
            wecom_bad_arg(L, i, where, name, "a string or a number");
        }
    }
    mem = lua_newuserdata(L, (size_t)argc * (sizeof(char *) + sizeof(size_t)));
    *argvlen = (size_t *)mem;
    *argv = (const char **)((size_t *)mem + argc);
    for (i = 0; i < argc; i++)
        (*argv)[i] = lua_tolstring(L, first + i, &(*argvlen)[i]);
    return argc;
}

/* ===== blocking connection ============================================== */

static const wecom_class conn_class, reader_class;   /* defined with the methods, below */

static redis_conn *conn_check(lua_State *L, const char *where)
{
    return (redis_conn *)wecom_check_object(L, 1, &conn_class, where);
}

static int conn_destroy(lua_State *L)
{
    redis_conn *c = conn_check(L, CONN_MT ":close");

    if (c->ctx != NULL) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
    return 0;
}

static int conn_tostring(lua_State *L)
{
    redis_conn *c = conn_check(L, "tostring");

    return wecom_push_tostring(L, CONN_MT, c->ctx == NULL ? "closed" : c->where);
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

static const char *const connect_keys[] = {
    "host", "port", "path", "timeout", "password", "db", NULL
};

/* core.redis_connect{ host =, port =, path =, timeout =, password =, db = } */
static int l_redis_connect(lua_State *L)
{
    const char *host, *path, *password;
    size_t host_len, path_len, password_len = 0;
    lua_Integer port, db;
    double timeout = 1;
    struct timeval tv;
    redis_conn *c;
    char msg[ERR_LEN];
    char dbbuf[32];
    pipe_guard g;
    wecom_opts o;

    wecom_opts_init(&o, L, 1, WECOM_FN("redis_connect"), "opts", connect_keys);
    host = wecom_opt_field_string(&o, "host", &host_len);
    path = wecom_opt_field_string(&o, "path", &path_len);
    /* the password may hold any byte: read as is, never shown */
    lua_getfield(L, 1, "password");
    if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
        wecom_bad_arg(L, -1, o.where, "opts.password", "a string");
    password = lua_tolstring(L, -1, &password_len);
    lua_pop(L, 1);                  /* still anchored by the table */
    port = wecom_opt_field_integer(&o, "port", 6379, 1, 65535);
    wecom_opt_field_seconds(&o, "timeout", &timeout);
    db = wecom_opt_field_integer(&o, "db", 0, 0, 1000000);
    if (host == NULL) {
        host = "127.0.0.1";
        host_len = strlen(host);
    }
    if (host_len == 0 || host_len > 255)
        wecom_usage(L, o.where, "opts.host must be 1..255 bytes (got %d)", (int)host_len);
    if (path != NULL && (path_len == 0 || path_len > 89))
        wecom_usage(L, o.where, "opts.path must be 1..89 bytes (got %d)", (int)path_len);

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
        return wecom_fail(L, "redis: out of memory", "io");
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
    return wecom_fail(L, msg, "io");
}

/* conn:command(name, ...) -> reply | nil, err, "redis"|"io" */
static int l_conn_command(lua_State *L)
{
    redis_conn *c = conn_check(L, CONN_MT ":command");
    const char **argv;
    size_t *argvlen;
    redisReply *reply;
    char msg[ERR_LEN];
    int argc;

    if (c->ctx == NULL)
        return wecom_closed(L, CONN_MT ":command", "redis connection");
    argc = collect_args(L, 2, CONN_MT ":command", &argv, &argvlen);
    luaL_checkstack(L, 8, NULL);
    lua_pushcfunction(L, reply_to_lua);
    reply = conn_run(c, argc, argv, argvlen, msg, sizeof msg);
    if (reply == NULL)
        return wecom_fail(L, msg, "io");
    return push_reply_and_free(L, reply);
}

/* conn:connected() -> false once closed or after an I/O error */
static int l_conn_connected(lua_State *L)
{
    redis_conn *c = conn_check(L, CONN_MT ":connected");
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

    argc = collect_args(L, 1, WECOM_FN("redis_format"), &argv, &argvlen);
    luaL_checkstack(L, 4, NULL);
    lua_pushcfunction(L, bytes_to_lua);
    len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0 || cmd == NULL)
        return luaL_error(L, WECOM_FN("redis_format") ": out of memory");
    lua_pushlightuserdata(L, cmd);
    lua_pushnumber(L, (lua_Number)len);
    status = lua_pcall(L, 2, 1, 0);
    redisFreeCommand(cmd);
    if (status != 0)
        return lua_error(L);
    return 1;
}

static redis_reader *reader_check(lua_State *L, const char *where)
{
    return (redis_reader *)wecom_check_object(L, 1, &reader_class, where);
}

static redis_reader *reader_open_check(lua_State *L, const char *where)
{
    redis_reader *r = reader_check(L, where);
    if (r->reader == NULL)
        wecom_closed(L, where, "redis reader");
    return r;
}

static int reader_destroy(lua_State *L)
{
    redis_reader *r = reader_check(L, READER_MT ":close");

    if (r->reader != NULL) {
        redisReaderFree(r->reader);
        r->reader = NULL;
    }
    return 0;
}

static int reader_tostring(lua_State *L)
{
    redis_reader *r = reader_check(L, "tostring");

    return wecom_push_tostring(L, READER_MT, r->reader == NULL ? "closed" : NULL);
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
        return luaL_error(L, WECOM_FN("redis_reader") ": out of memory");
    return 1;
}

/* reader:feed(bytes) -> true | nil, err, "protocol" */
static int l_reader_feed(lua_State *L)
{
    redis_reader *r = reader_open_check(L, READER_MT ":feed");
    size_t len;
    const char *bytes = wecom_check_string(L, 2, READER_MT ":feed", "bytes", &len);
    char msg[ERR_LEN];

    if (redisReaderFeed(r->reader, bytes, len) != REDIS_OK) {
        snprintf(msg, sizeof msg, "redis protocol error: %s", r->reader->errstr);
        return wecom_fail(L, msg, "protocol");
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* reader:get_reply() -> reply | false (incomplete) | nil, err, "redis"|"protocol" */
static int l_reader_get_reply(lua_State *L)
{
    redis_reader *r = reader_open_check(L, READER_MT ":get_reply");
    void *reply = NULL;
    char msg[ERR_LEN];

    luaL_checkstack(L, 8, NULL);
    lua_pushcfunction(L, reply_to_lua);
    if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
        snprintf(msg, sizeof msg, "redis protocol error: %s", r->reader->errstr);
        return wecom_fail(L, msg, "protocol");
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
    { NULL, NULL }
};

static const luaL_Reg reader_methods[] = {
    { "feed", l_reader_feed },
    { "get_reply", l_reader_get_reply },
    { NULL, NULL }
};

static const wecom_class conn_class = { CONN_MT, conn_methods, conn_destroy, conn_tostring };
static const wecom_class reader_class = { READER_MT, reader_methods, reader_destroy, reader_tostring };

static const luaL_Reg redis_funcs[] = {
    { "redis_connect", l_redis_connect },
    { "redis_format", l_redis_format },
    { "redis_reader", l_redis_reader },
    { NULL, NULL }
};

void wecom_redis_open(lua_State *L)
{
    wecom_class_register(L, &conn_class);
    wecom_class_register(L, &reader_class);
    luaL_setfuncs(L, redis_funcs, 0);
}
