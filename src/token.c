/*
 * token.c - the process-wide token cache, and the clock functions
 * core.now(), core.monotonic() and core.sleep().
 *
 * The cache is the only mutable global state of wecom.core, on purpose:
 * every lua_State in the process (threads, OpenResty's timers, several
 * clients) must see the same access tokens and the same refresh locks.  It
 * is a chained hash map behind one mutex, initialised with pthread_once.
 * No Lua API call happens while the mutex is held: arguments are checked
 * first and results are copied out before anything is pushed, so a Lua
 * error can never leave the mutex locked.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wecom.h"

#define TOKEN_MAX_KEY      1024
#define TOKEN_MAX_VALUE    8192      /* tokens are <= 512 bytes; tickets similar */
#define TOKEN_MAX_ENTRIES  100000

/* ===== clocks ===== */

/* core.now() -> wall-clock seconds since the epoch (float) */
static int l_now(lua_State *L)
{
    lua_pushnumber(L, wecom_clock(CLOCK_REALTIME));
    return 1;
}

/* core.monotonic() -> seconds on a clock that never jumps (float) */
static int l_monotonic(lua_State *L)
{
    lua_pushnumber(L, wecom_clock(CLOCK_MONOTONIC));
    return 1;
}

/* core.sleep(seconds): blocks the calling thread (not for use inside nginx) */
static int l_sleep(lua_State *L)
{
    double s = wecom_check_seconds(L, 1, WECOM_FN("sleep"), "seconds", 0);
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec > 999999999L)
        ts.tv_nsec = 999999999L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

/* ===== the cache ===== */

typedef struct entry {
    struct entry *next;
    uint32_t hash;
    size_t key_len;
    char *value;            /* NULL: no value, only a lock */
    size_t value_len;
    double expires_at;      /* wall clock */
    double lock_until;      /* monotonic; <= now means unlocked */
    double lock_owner;      /* handed to the holder, checked by unlock */
    char key[];
} entry;

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cache_mutex;
static entry **cache_buckets;     /* allocated lazily under the mutex */
static size_t cache_nbuckets;
static size_t cache_count;
static double cache_next_owner;   /* a double so it round-trips through Lua 5.1 numbers */

static void cache_init(void)
{
    pthread_mutex_init(&cache_mutex, NULL);
}

static uint32_t hash_key(const char *k, size_t len)
{
    uint32_t h = 2166136261u;   /* FNV-1a */
    size_t i;
    for (i = 0; i < len; i++) {
        h ^= (unsigned char)k[i];
        h *= 16777619u;
    }
    return h;
}

/* All cache_* helpers below run with the mutex held. */

static int cache_ready(void)
{
    if (cache_buckets == NULL) {
        cache_buckets = calloc(64, sizeof *cache_buckets);
        if (cache_buckets == NULL)
            return 0;
        cache_nbuckets = 64;
    }
    return 1;
}

static void cache_grow(void)
{
    size_t n = cache_nbuckets * 2, i;
    entry **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;   /* longer chains, still correct */
    for (i = 0; i < cache_nbuckets; i++) {
        entry *e = cache_buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(cache_buckets);
    cache_buckets = b;
    cache_nbuckets = n;
}

/* Returns the slot that points at the entry for key (or at NULL). */
static entry **cache_slot(const char *key, size_t len, uint32_t h)
{
    entry **p = &cache_buckets[h & (cache_nbuckets - 1)];
    for (; *p != NULL; p = &(*p)->next)
        if ((*p)->hash == h && (*p)->key_len == len && memcmp((*p)->key, key, len) == 0)
            return p;
    return p;
}

static void drop_value(entry *e)
{
    free(e->value);
    e->value = NULL;
    e->value_len = 0;
}

/* Drops what has expired; unlinks and frees the entry when nothing is left.
 * Returns the entry, or NULL when it was freed. */
static entry *cache_settle(entry **slot, double wall, double mono)
{
    entry *e = *slot;
    if (e->value != NULL && e->expires_at <= wall)
        drop_value(e);
    if (e->value == NULL && e->lock_until <= mono) {
        *slot = e->next;
        free(e);
        cache_count--;
        return NULL;
    }
    return e;
}

static void cache_purge(double wall, double mono)
{
    size_t i;
    for (i = 0; i < cache_nbuckets; i++) {
        entry **p = &cache_buckets[i];
        while (*p != NULL) {
            if (cache_settle(p, wall, mono) != NULL)
                p = &(*p)->next;
        }
    }
}

/* Finds or creates the entry; NULL when out of memory or full. */
static entry *cache_obtain(const char *key, size_t len, uint32_t h, double wall, double mono)
{
    entry **slot = cache_slot(key, len, h);
    entry *e;
    if (*slot != NULL)
        return *slot;
    if (cache_count >= TOKEN_MAX_ENTRIES) {
        cache_purge(wall, mono);
        if (cache_count >= TOKEN_MAX_ENTRIES)
            return NULL;
        slot = cache_slot(key, len, h);
    }
    e = calloc(1, sizeof *e + len + 1);
    if (e == NULL)
        return NULL;
    e->hash = h;
    e->key_len = len;
    memcpy(e->key, key, len);
    *slot = e;
    cache_count++;
    if (cache_count > cache_nbuckets)
        cache_grow();
    return e;
}

static const char *check_key(lua_State *L, int idx, const char *where, size_t *len)
{
    const char *k = wecom_check_string(L, idx, where, "key", len);
    if (*len == 0 || *len > TOKEN_MAX_KEY)
        wecom_bad_arg(L, idx, where, "key", "a string of 1..1024 bytes");
    return k;
}

/* What every cache call starts from: its key (argument 1, checked), the
 * key's hash and both clocks, read once so one call sees one instant. */
typedef struct {
    const char *key;
    size_t len;
    uint32_t hash;
    double wall, mono;
} lookup;

static void lookup_init(lua_State *L, lookup *q, const char *where)
{
    q->key = check_key(L, 1, where, &q->len);
    q->hash = hash_key(q->key, q->len);
    q->wall = wecom_clock(CLOCK_REALTIME);
    q->mono = wecom_clock(CLOCK_MONOTONIC);
}

/* With the mutex held: the slot of q's entry after dropping what has
 * expired, or NULL when there is no entry (left). */
static entry **cache_find(const lookup *q)
{
    entry **slot = cache_slot(q->key, q->len, q->hash);
    if (*slot == NULL || cache_settle(slot, q->wall, q->mono) == NULL)
        return NULL;
    return slot;
}

/* Takes the mutex; returns 0 (mutex released) when the table cannot be
 * allocated.  The caller raises (out of memory) after freeing what it holds. */
static int cache_lock(void)
{
    pthread_once(&cache_once, cache_init);
    pthread_mutex_lock(&cache_mutex);
    if (!cache_ready()) {
        pthread_mutex_unlock(&cache_mutex);
        return 0;
    }
    return 1;
}

/* After cache_obtain failed (mutex released): a full cache is a runtime
 * failure, nil, "token cache full"; out of memory raises, as in Lua. */
static int obtain_failed(lua_State *L, int full, const char *where)
{
    if (full)
        return wecom_fail(L, "token cache full", NULL);
    return luaL_error(L, "%s: out of memory", where);
}

/* core.token_get(key) -> value, expires_at | nil */
static int l_token_get(lua_State *L)
{
    lookup q;
    size_t vlen = 0;
    double expires_at = 0;
    char value[TOKEN_MAX_VALUE];
    int found = 0;
    entry **slot, *e;

    lookup_init(L, &q, WECOM_FN("token_get"));
    if (!cache_lock())
        return luaL_error(L, WECOM_FN("token_get") ": out of memory");
    slot = cache_find(&q);
    e = slot != NULL ? *slot : NULL;
    if (e != NULL && e->value != NULL) {
        vlen = e->value_len;
        memcpy(value, e->value, vlen);
        expires_at = e->expires_at;
        found = 1;
    }
    pthread_mutex_unlock(&cache_mutex);

    if (!found) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushlstring(L, value, vlen);
    lua_pushnumber(L, expires_at);
    return 2;
}

/* core.token_set(key, value, expires_at) -> true | nil, "token cache full" */
static int l_token_set(lua_State *L)
{
    lookup q;
    size_t vlen;
    const char *value;
    double expires_at;
    int failed = 0, full = 0;
    char *copy;
    entry *e;

    lookup_init(L, &q, WECOM_FN("token_set"));
    value = wecom_check_string(L, 2, WECOM_FN("token_set"), "value", &vlen);
    if (vlen > TOKEN_MAX_VALUE)
        wecom_bad_arg(L, 2, WECOM_FN("token_set"), "value", "a string of at most 8192 bytes");
    expires_at = lua_type(L, 3) == LUA_TNUMBER ? (double)lua_tonumber(L, 3) : NAN;
    if (!isfinite(expires_at))
        wecom_bad_arg(L, 3, WECOM_FN("token_set"), "expires_at", "a finite number (seconds since the epoch)");
    copy = malloc(vlen ? vlen : 1);
    if (copy == NULL)
        return luaL_error(L, WECOM_FN("token_set") ": out of memory");
    memcpy(copy, value, vlen);

    if (!cache_lock()) {
        free(copy);
        return luaL_error(L, WECOM_FN("token_set") ": out of memory");
    }
    e = cache_obtain(q.key, q.len, q.hash, q.wall, q.mono);
    if (e == NULL) {
        failed = 1;
        full = cache_count >= TOKEN_MAX_ENTRIES;
    } else {
        free(e->value);
        e->value = copy;
        e->value_len = vlen;
        e->expires_at = expires_at;
        copy = NULL;
    }
    pthread_mutex_unlock(&cache_mutex);

    free(copy);
    if (failed)
        return obtain_failed(L, full, WECOM_FN("token_set"));
    lua_pushboolean(L, 1);
    return 1;
}

/* core.token_delete(key [, only_if_value]) -> boolean (whether a value was removed) */
static int l_token_delete(lua_State *L)
{
    lookup q;
    size_t olen = 0;
    const char *only_if;
    int deleted = 0;
    entry **slot, *e;

    lookup_init(L, &q, WECOM_FN("token_delete"));
    only_if = wecom_opt_string(L, 2, WECOM_FN("token_delete"), "only_if_value", &olen);
    if (!cache_lock())
        return luaL_error(L, WECOM_FN("token_delete") ": out of memory");
    slot = cache_find(&q);
    e = slot != NULL ? *slot : NULL;
    if (e != NULL && e->value != NULL
        && (only_if == NULL || (e->value_len == olen && memcmp(e->value, only_if, olen) == 0))) {
        drop_value(e);
        cache_settle(slot, q.wall, q.mono);
        deleted = 1;
    }
    pthread_mutex_unlock(&cache_mutex);
    lua_pushboolean(L, deleted);
    return 1;
}

/* core.token_lock(key, lease_seconds) -> true, owner | false | nil, "token cache full"
 * A try-lock: the lease expires on its own so a holder that died (or a
 * lua_State that was closed) cannot wedge the key. */
static int l_token_lock(lua_State *L)
{
    lookup q;
    double lease;
    double owner = 0;
    int acquired = 0, failed = 0, full = 0;
    entry *e;

    lookup_init(L, &q, WECOM_FN("token_lock"));
    lease = wecom_check_seconds(L, 2, WECOM_FN("token_lock"), "lease_seconds", 1);
    if (!cache_lock())
        return luaL_error(L, WECOM_FN("token_lock") ": out of memory");
    e = cache_obtain(q.key, q.len, q.hash, q.wall, q.mono);
    if (e == NULL) {
        failed = 1;
        full = cache_count >= TOKEN_MAX_ENTRIES;
    } else if (e->lock_until <= q.mono) {
        e->lock_until = q.mono + lease;
        e->lock_owner = owner = ++cache_next_owner;
        acquired = 1;
    }
    pthread_mutex_unlock(&cache_mutex);

    if (failed)
        return obtain_failed(L, full, WECOM_FN("token_lock"));
    lua_pushboolean(L, acquired);
    if (!acquired)
        return 1;
    lua_pushnumber(L, owner);
    return 2;
}

/* core.token_unlock(key [, owner]) -> boolean (whether a held lock was released)
 * With owner (from token_lock) only that holder's lock is released, so a
 * holder whose lease ran out cannot release its successor's lock. */
static int l_token_unlock(lua_State *L)
{
    lookup q;
    int has_owner;
    double owner;
    int released = 0;
    entry **slot, *e;

    lookup_init(L, &q, WECOM_FN("token_unlock"));
    has_owner = !lua_isnoneornil(L, 2);
    if (has_owner && lua_type(L, 2) != LUA_TNUMBER)
        wecom_bad_arg(L, 2, WECOM_FN("token_unlock"), "owner", "a number (from token_lock)");
    owner = has_owner ? (double)lua_tonumber(L, 2) : 0;
    if (!cache_lock())
        return luaL_error(L, WECOM_FN("token_unlock") ": out of memory");
    slot = cache_find(&q);
    e = slot != NULL ? *slot : NULL;
    if (e != NULL && e->lock_until > q.mono && (!has_owner || e->lock_owner == owner)) {
        e->lock_until = 0;
        cache_settle(slot, q.wall, q.mono);
        released = 1;
    }
    pthread_mutex_unlock(&cache_mutex);
    lua_pushboolean(L, released);
    return 1;
}

/* Runs when the last user unloads the module (dlclose) or at exit: no code of
 * this module can be running then, so the table goes without the mutex.
 * Without it every unload would leak the table. */
#if defined(__GNUC__)
__attribute__((destructor))
#endif
static void cache_unload(void)
{
    size_t i;
    for (i = 0; i < cache_nbuckets; i++) {
        entry *e = cache_buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            free(e->value);
            free(e);
        }
    }
    free(cache_buckets);
    cache_buckets = NULL;
    cache_nbuckets = cache_count = 0;
}

static const luaL_Reg token_funcs[] = {
    { "now", l_now },
    { "monotonic", l_monotonic },
    { "sleep", l_sleep },
    { "token_get", l_token_get },
    { "token_set", l_token_set },
    { "token_delete", l_token_delete },
    { "token_lock", l_token_lock },
    { "token_unlock", l_token_unlock },
    { NULL, NULL }
};

void wecom_token_open(lua_State *L)
{
    luaL_setfuncs(L, token_funcs, 0);
}
