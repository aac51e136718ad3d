/*
 * util.c - what every part of the core shares: the failure convention
 * (see wecom.h), argument and option readers, and class registration.
 *
 * Messages follow wecom.errors in the Lua layer:
 *     <where>: <name> must be <what> (got <value described>)
 * with the value described as errors.describe does ("nil", "number -1",
 * "string", "empty string", "table"), never the content of a string: an
 * argument may be a secret.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wecom.h"

/* ===== runtime failures ================================================ */

int wecom_fail(lua_State *L, const char *message, const char *code)
{
    lua_pushnil(L);
    lua_pushstring(L, message);
    if (code == NULL)
        return 2;
    lua_pushstring(L, code);
    return 3;
}

int wecom_fail_code(lua_State *L, const char *message, lua_Integer code)
{
    lua_pushnil(L);
    lua_pushstring(L, message);
    lua_pushinteger(L, code);
    return 3;
}

/* ===== bad arguments =================================================== */

/* Raises the string on top, after the caller's position (level 2: the Lua
 * function that called the C function; empty when that is C, e.g. pcall). */
static int raise_top(lua_State *L)
{
    luaL_where(L, 2);
    lua_insert(L, -2);
    lua_concat(L, 2);
    return lua_error(L);
}

int wecom_usage(lua_State *L, const char *where, const char *fmt, ...)
{
    va_list ap;

    lua_pushstring(L, where);
    lua_pushliteral(L, ": ");
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 3);
    return raise_top(L);
}

/* Pushes what a message says the value at idx was. */
static void push_described(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        if (lua_rawlen(L, idx) == 0)
            lua_pushliteral(L, "empty string");
        else
            lua_pushliteral(L, "string");
        break;
    case LUA_TNUMBER:
        lua_pushliteral(L, "number ");
        lua_pushvalue(L, idx);
        lua_tostring(L, -1);        /* converts the copy, as tostring would */
        lua_concat(L, 2);
        break;
    default:
        lua_pushstring(L, luaL_typename(L, idx));
        break;
    }
}

int wecom_bad_arg(lua_State *L, int idx, const char *where, const char *name, const char *what)
{
    idx = lua_absindex(L, idx);
    push_described(L, idx);         /* first: idx may be past the top */
    lua_pushfstring(L, "%s: %s must be %s (got ", where, name, what);
    lua_insert(L, -2);
    lua_pushliteral(L, ")");
    lua_concat(L, 3);
    return raise_top(L);
}

const char *wecom_check_string(lua_State *L, int idx, const char *where, const char *name,
                               size_t *len)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        wecom_bad_arg(L, idx, where, name, "a string");
    return lua_tolstring(L, idx, len);
}

const char *wecom_opt_string(lua_State *L, int idx, const char *where, const char *name,
                             size_t *len)
{
    if (lua_isnoneornil(L, idx)) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    return wecom_check_string(L, idx, where, name, len);
}

/* Whether v is an integer in [lo, hi], checked as a double first so a
 * huge or NaN value is never converted (undefined behaviour); the bounds
 * the core uses are all within +-2^53, where doubles are exact. */
static int integer_in(lua_State *L, int idx, lua_Integer lo, lua_Integer hi, lua_Integer *out)
{
    lua_Number n;

    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    n = lua_tonumber(L, idx);
    if (!(n >= (lua_Number)lo && n <= (lua_Number)hi))
        return 0;
    *out = (lua_Integer)n;
    return (lua_Number)*out == n && *out >= lo && *out <= hi;
}

static const char *integer_range(char *buf, size_t size, lua_Integer lo, lua_Integer hi)
{
    snprintf(buf, size, "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
    return buf;
}

lua_Integer wecom_check_integer(lua_State *L, int idx, const char *where, const char *name,
                                lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = 0;
    char what[80];

    if (!integer_in(L, idx, lo, hi, &v))
        wecom_bad_arg(L, idx, where, name, integer_range(what, sizeof what, lo, hi));
    return v;
}

double wecom_check_seconds(lua_State *L, int idx, const char *where, const char *name,
                           int lo_open)
{
    double v = lua_type(L, idx) == LUA_TNUMBER ? (double)lua_tonumber(L, idx) : -1;

    if (!(lo_open ? v > 0 : v >= 0) || !(v <= WECOM_MAX_SECONDS))
        wecom_bad_arg(L, idx, where, name, lo_open ? "a number of seconds in (0, 86400]"
                                                   : "a number of seconds in [0, 86400]");
    return v;
}

/* ===== options tables ================================================== */

void wecom_opts_init(wecom_opts *o, lua_State *L, int idx, const char *where,
                     const char *table, const char *const known[])
{
    o->L = L;
    o->idx = lua_absindex(L, idx);
    o->where = where;
    o->table = table;
    if (lua_type(L, o->idx) != LUA_TTABLE)
        wecom_bad_arg(L, o->idx, where, table, "a table");
    if (known == NULL)
        return;
    lua_pushnil(L);
    while (lua_next(L, o->idx) != 0) {
        int i;
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            wecom_usage(L, where, "%s must have string keys only", table);
        for (i = 0; known[i] != NULL; i++)
            if (strcmp(lua_tostring(L, -1), known[i]) == 0)
                break;
        if (known[i] == NULL)
            wecom_usage(L, where, "unknown option '%s' in %s", lua_tostring(L, -1), table);
    }
}

/* Raises "<where>: <table>.<name> must be <what> (got ...)" for the field
 * on top of the stack. */
static int bad_field(const wecom_opts *o, const char *name, const char *what)
{
    char full[128];

    snprintf(full, sizeof full, "%s.%s", o->table, name);
    return wecom_bad_arg(o->L, -1, o->where, full, what);
}

/* Pushes the field; 0 (and nothing pushed) when it is nil. */
static int get_field(const wecom_opts *o, const char *name)
{
    lua_getfield(o->L, o->idx, name);
    if (lua_isnil(o->L, -1)) {
        lua_pop(o->L, 1);
        return 0;
    }
    return 1;
}

const char *wecom_opt_field_string(const wecom_opts *o, const char *name, size_t *len)
{
    size_t n = 0;
    const char *s = NULL;

    if (get_field(o, name)) {
        if (lua_type(o->L, -1) != LUA_TSTRING)
            bad_field(o, name, "a string");
        s = lua_tolstring(o->L, -1, &n);
        if (strlen(s) != n)
            bad_field(o, name, "a string without NUL bytes");
        lua_pop(o->L, 1);      /* still anchored by the table */
    }
    if (len != NULL)
        *len = n;
    return s;
}

int wecom_opt_field_boolean(const wecom_opts *o, const char *name, int dflt)
{
    int v = dflt;

    if (get_field(o, name)) {
        if (lua_type(o->L, -1) != LUA_TBOOLEAN)
            bad_field(o, name, "a boolean");
        v = lua_toboolean(o->L, -1);
        lua_pop(o->L, 1);
    }
    return v;
}

lua_Integer wecom_opt_field_integer(const wecom_opts *o, const char *name, lua_Integer dflt,
                                    lua_Integer lo, lua_Integer hi)
{
    lua_Integer v = dflt;
    char what[80];

    if (get_field(o, name)) {
        if (!integer_in(o->L, -1, lo, hi, &v))
            bad_field(o, name, integer_range(what, sizeof what, lo, hi));
        lua_pop(o->L, 1);
    }
    return v;
}

int wecom_opt_field_seconds(const wecom_opts *o, const char *name, double *out)
{
    double v;

    if (!get_field(o, name))
        return 0;
    v = lua_type(o->L, -1) == LUA_TNUMBER ? (double)lua_tonumber(o->L, -1) : -1;
    if (!(v > 0 && v <= WECOM_MAX_SECONDS))
        bad_field(o, name, "a number of seconds in (0, 86400]");
    lua_pop(o->L, 1);
    *out = v;
    return 1;
}

int wecom_opt_field_choice(const wecom_opts *o, const char *name, const char *const names[],
                           int dflt)
{
    char what[160];
    size_t at;
    int i;

    if (!get_field(o, name))
        return dflt;
    if (lua_type(o->L, -1) == LUA_TSTRING)
        for (i = 0; names[i] != NULL; i++)
            if (strcmp(lua_tostring(o->L, -1), names[i]) == 0) {
                lua_pop(o->L, 1);
                return i;
            }
    at = (size_t)snprintf(what, sizeof what, "one of");
    for (i = 0; names[i] != NULL && at < sizeof what; i++)
        at += (size_t)snprintf(what + at, sizeof what - at, "%s \"%s\"", i ? "," : "", names[i]);
    return bad_field(o, name, what);
}

/* ===== clocks ========================================================== */

double wecom_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ===== classes ========================================================= */

void wecom_class_register(lua_State *L, const wecom_class *c)
{
    if (luaL_newmetatable(L, c->name)) {
        lua_pushcfunction(L, c->destroy);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, c->destroy);
        lua_setfield(L, -2, "__close");
        if (c->tostring != NULL) {
            lua_pushcfunction(L, c->tostring);
            lua_setfield(L, -2, "__tostring");
        }
        if (c->methods != NULL) {
            lua_newtable(L);
            luaL_setfuncs(L, c->methods, 0);
            lua_pushcfunction(L, c->destroy);
            lua_setfield(L, -2, "close");
            lua_setfield(L, -2, "__index");
        }
        lua_pushstring(L, c->name);
        lua_setfield(L, -2, "__name");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
        /* also under the class's address: wecom_check_object finds it
         * there without making its name a string first */
        lua_pushlightuserdata(L, (void *)c);
        lua_pushvalue(L, -2);
        lua_rawset(L, LUA_REGISTRYINDEX);
    }
    lua_pop(L, 1);
}

void *wecom_check_object(lua_State *L, int idx, const wecom_class *c, const char *where)
{
    void *p = lua_touserdata(L, idx);

    if (p != NULL) {
        if (lua_getmetatable(L, idx)) {
            lua_pushlightuserdata(L, (void *)c);
            lua_rawget(L, LUA_REGISTRYINDEX);
            if (!lua_rawequal(L, -1, -2))
                p = NULL;
            lua_pop(L, 2);
        } else {
            p = NULL;
        }
    }
    if (p == NULL) {
        idx = lua_absindex(L, idx);
        push_described(L, idx);
        lua_pushfstring(L, "%s: expected a %s (got ", where, c->name);
        lua_insert(L, -2);
        lua_pushliteral(L, ")");
        lua_concat(L, 3);
        raise_top(L);
    }
    return p;
}

int wecom_closed(lua_State *L, const char *where, const char *what)
{
    return wecom_usage(L, where, "attempt to use a closed %s", what);
}

int wecom_push_tostring(lua_State *L, const char *name, const char *state)
{
    if (state == NULL)
        lua_pushstring(L, name);
    else
        lua_pushfstring(L, "%s (%s)", name, state);
    return 1;
}
