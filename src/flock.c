/*
 * flock.c - what the file token store needs and plain Lua lacks.
 *
 * - core.flock_open(path) -> lock: an advisory flock(2) on a lock file,
 *   taken with a timeout (non-blocking attempts with short sleeps), so one
 *   stuck process cannot hang the others forever.
 * - core.write_atomic(path, data [, fsync]) -> true: readers never see a
 *   torn file (temp file in the same directory, then rename), the file is
 *   created 0600 (it holds access tokens), and with fsync the data and the
 *   directory entry reach the disk before the call returns.
 * - core.mkdir(path [, mode]) -> true: the store's directory, 0700.
 * - core.getpid(): to notice a fork.
 * - core.list_dir(path, suffix) -> names: the store's durable entries.
 *
 * Runtime failures (missing directory, permissions) return nil, message
 * (wecom.h); the message names the path, which the caller chose and which
 * is never a secret.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "wecom.h"

#define FLOCK_MT        "wecom.core.flock"
#define DIR_MT          "wecom.core.dir"
#define MAX_PATH_LEN    4000
#define ERR_LEN         (MAX_PATH_LEN + 128)
#define FIRST_SLEEP_NS  (200 * 1000)           /* 0.2 ms */
#define MAX_SLEEP_NS    (10 * 1000 * 1000)     /* 10 ms */

typedef struct {
    int fd;             /* -1 once closed */
    int held;
} file_lock;

static int push_errno(lua_State *L, const char *what, const char *path, int err)
{
    char msg[ERR_LEN];

    snprintf(msg, sizeof msg, "%s %s: %s", what, path, strerror(err));
    return wecom_fail(L, msg, NULL);
}

static const char *check_path(lua_State *L, int i, const char *where)
{
    size_t len;
    const char *path = wecom_check_string(L, i, where, "path", &len);  /* no number-to-name coercion */

    if (len == 0 || len > MAX_PATH_LEN || strlen(path) != len)
        wecom_bad_arg(L, i, where, "path", "1..4000 bytes without NUL");
    return path;
}

static int push_refusal(lua_State *L, const char *path, const char *why)
{
    char msg[ERR_LEN];

    snprintf(msg, sizeof msg, "refusing %s: %s", path, why);
    return wecom_fail(L, msg, NULL);
}

/* nil, err for a failed open: a symbolic link is refused by name */
static int push_open_error(lua_State *L, const char *what, const char *path, int err)
{
    if (err == ELOOP)
        return push_refusal(L, path, "it is a symbolic link");
    return push_errno(L, what, path, err);
}

/* 0 when fd is a regular file, else pushes nil, err (and closes fd) */
static int check_regular(lua_State *L, int fd, const char *path, struct stat *st)
{
    if (fstat(fd, st) != 0) {
        int err = errno;
        close(fd);
        return push_errno(L, "cannot stat", path, err);
    }
    if (!S_ISREG(st->st_mode)) {
        close(fd);
        return push_refusal(L, path, "it is not a regular file");
    }
    return 0;
}

/* ===== lock userdata ==================================================== */

static const wecom_class lock_class;     /* defined with the methods, below */

static file_lock *lock_check(lua_State *L, const char *where)
{
    return (file_lock *)wecom_check_object(L, 1, &lock_class, where);
}

static file_lock *lock_open_check(lua_State *L, const char *where)
{
    file_lock *lk = lock_check(L, where);
    if (lk->fd < 0)
        wecom_closed(L, where, "file lock");
    return lk;
}

static int lock_destroy(lua_State *L)
{
    file_lock *lk = lock_check(L, FLOCK_MT ":close");

    if (lk->fd >= 0) {
        close(lk->fd);      /* also releases the flock */
        lk->fd = -1;
        lk->held = 0;
    }
    return 0;
}

static int lock_tostring(lua_State *L)
{
    file_lock *lk = lock_check(L, "tostring");

    return wecom_push_tostring(L, FLOCK_MT, lk->fd < 0 ? "closed" : lk->held ? "held" : NULL);
}

/* core.flock_open(path) -> lock | nil, err; creates the file (0600). */
/* A new lock userdata (metatable armed before the file exists) over path,
 * opened with extra_flags; nofollow also refuses anything but a regular
 * file.  -> lock | nil, err */
static int open_lock(lua_State *L, const char *where, int nofollow)
{
    const char *path = check_path(L, 1, where);
    file_lock *lk = (file_lock *)lua_newuserdata(L, sizeof *lk);
    int flags = O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY;
    int fd;

    lk->fd = -1;
    lk->held = 0;
    luaL_getmetatable(L, FLOCK_MT);
    lua_setmetatable(L, -2);
    if (nofollow)
        flags |= O_NOFOLLOW | O_NONBLOCK;
    do {
        fd = open(path, flags, 0600);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return push_open_error(L, "cannot open lock file", path, errno);
    if (nofollow) {
        struct stat st;
        int n = check_regular(L, fd, path, &st);
        if (n != 0)
            return n;
    }
    lk->fd = fd;
    return 1;
}

static int l_flock_open(lua_State *L)
{
    return open_lock(L, WECOM_FN("flock_open"), 0);
}

/*
 * lock:lock([exclusive = true [, timeout = 0]]) -> true | false | nil, err
 * false when the lock is still taken after timeout seconds (0: one try);
 * a negative timeout waits as long as it takes.
 */
static int l_lock_lock(lua_State *L)
{
    file_lock *lk = lock_open_check(L, FLOCK_MT ":lock");
    int exclusive = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    double timeout = 0;
    int op = exclusive ? LOCK_EX : LOCK_SH;
    double deadline;
    long sleep_ns = FIRST_SLEEP_NS;

    if (!lua_isnoneornil(L, 3)) {
        if (lua_type(L, 3) != LUA_TNUMBER || lua_tonumber(L, 3) != lua_tonumber(L, 3)
            || lua_tonumber(L, 3) > WECOM_MAX_SECONDS)
            wecom_bad_arg(L, 3, FLOCK_MT ":lock", "timeout",
                          "a number of seconds up to 86400 (negative: no limit)");
        timeout = lua_tonumber(L, 3);
    }
    if (timeout < 0) {
        while (flock(lk->fd, op) != 0) {
            if (errno != EINTR)
                return push_errno(L, "cannot lock", "file", errno);
        }
        lk->held = 1;
        lua_pushboolean(L, 1);
        return 1;
    }
    deadline = wecom_clock(CLOCK_MONOTONIC) + timeout;
    for (;;) {
        struct timespec ts;
        double left;

        if (flock(lk->fd, op | LOCK_NB) == 0) {
            lk->held = 1;
            lua_pushboolean(L, 1);
            return 1;
        }
        if (errno != EWOULDBLOCK && errno != EINTR)
            return push_errno(L, "cannot lock", "file", errno);
        left = deadline - wecom_clock(CLOCK_MONOTONIC);
        if (left <= 0) {
            lua_pushboolean(L, 0);
            return 1;
        }
        if ((double)sleep_ns / 1e9 > left)
            sleep_ns = (long)(left * 1e9) + 1;
        ts.tv_sec = 0;
        ts.tv_nsec = sleep_ns;
        nanosleep(&ts, NULL);
        sleep_ns = sleep_ns * 2 > MAX_SLEEP_NS ? MAX_SLEEP_NS : sleep_ns * 2;
    }
}

/* lock:unlock() -> true | nil, err */
static int l_lock_unlock(lua_State *L)
{
    file_lock *lk = lock_open_check(L, FLOCK_MT ":unlock");

    while (flock(lk->fd, LOCK_UN) != 0) {
        if (errno != EINTR)
            return push_errno(L, "cannot unlock", "file", errno);
    }
    lk->held = 0;
    lua_pushboolean(L, 1);
    return 1;
}

/* ===== atomic write ===================================================== */

static int write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* fsync the directory holding path, so a rename survives a crash. */
static int sync_parent_dir(const char *path, char *tmp, size_t tmp_size)
{
    const char *slash = strrchr(path, '/');
    int fd, rc;

    if (slash == NULL)
        snprintf(tmp, tmp_size, ".");
    else if (slash == path)
        snprintf(tmp, tmp_size, "/");
    else
        snprintf(tmp, tmp_size, "%.*s", (int)(slash - path), path);
    fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

/* core.write_atomic(path, data [, fsync = false]) -> true | nil, err */
static int l_write_atomic(lua_State *L)
{
    const char *path = check_path(L, 1, WECOM_FN("write_atomic"));
    size_t len;
    const char *data = wecom_check_string(L, 2, WECOM_FN("write_atomic"), "data", &len);
    int do_sync = lua_toboolean(L, 3);
    char tmp[MAX_PATH_LEN + 16];
    int fd, err;

    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    fd = mkostemp(tmp, O_CLOEXEC);     /* mode 0600 */
    if (fd < 0)
        return push_errno(L, "cannot create a temporary file for", path, errno);
    if (write_all(fd, data, len) != 0 || (do_sync && fsync(fd) != 0)) {
        err = errno;
        close(fd);
        unlink(tmp);
        return push_errno(L, "cannot write", path, err);
    }
    if (close(fd) != 0) {
        err = errno;
        unlink(tmp);
        return push_errno(L, "cannot write", path, err);
    }
    if (rename(tmp, path) != 0) {
        err = errno;
        unlink(tmp);
        return push_errno(L, "cannot rename into", path, err);
    }
    if (do_sync && sync_parent_dir(path, tmp, sizeof tmp) != 0)
        return push_errno(L, "cannot sync the directory of", path, errno);
    lua_pushboolean(L, 1);
    return 1;
}

/* ===== directories ====================================================== */

/*
 * core.mkdir(path [, mode = 0700]) -> true | nil, err
 * true when path is a directory afterwards (created now or before); the
 * parent must exist.
 */
static int l_mkdir(lua_State *L)
{
    const char *path = check_path(L, 1, WECOM_FN("mkdir"));
    lua_Integer mode = lua_isnoneornil(L, 2) ? 0700
                       : wecom_check_integer(L, 2, WECOM_FN("mkdir"), "mode", 0, 07777);
    struct stat st;

    if (mkdir(path, (mode_t)mode) != 0) {
        int err = errno;
        if (err != EEXIST)
            return push_errno(L, "cannot create directory", path, err);
        if (stat(path, &st) != 0)
            return push_errno(L, "cannot stat", path, errno);
        if (!S_ISDIR(st.st_mode))
            return push_errno(L, "cannot use", path, ENOTDIR);
    }
    lua_pushboolean(L, 1);
    return 1;
}

/*
 * core.getpid() -> pid.  Stores compare it with the pid that opened their
 * lock file or connection: after a fork the child must open its own, since
 * a shared flock description or socket would not exclude the parent.
 */
static int l_getpid(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)getpid());
    return 1;
}

/* ===== hardened access for the file token store ========================
 *
 * The store's directory is trusted only when it is private: owned by this
 * process' user and writable by nobody else.  Even then no entry is read
 * or opened through a symbolic link, nor when it is not a regular file (a
 * FIFO would block the reader, a device never end), nor past a size cap.
 *
 * - core.private_dir(path) -> true | nil, err
 * - core.read_regular(path, max_bytes) -> data | nil (no such file) | nil, err
 * - core.flock_open_nofollow(path) -> lock | nil, err: flock_open's lock,
 *   refusing a symbolic link or anything but a regular file.
 */

#define MAX_READ_BYTES  (64 * 1024 * 1024)



/* core.private_dir(path) -> true | nil, err.  path itself may be a symbolic
 * link (the caller chose it); what it names is checked. */
static int l_private_dir(lua_State *L)
{
    const char *path = check_path(L, 1, WECOM_FN("private_dir"));
    struct stat st;
    char why[128];

    if (stat(path, &st) != 0)
        return push_errno(L, "cannot use", path, errno);
    if (!S_ISDIR(st.st_mode))
        return push_refusal(L, path, "it is not a directory");
    if (st.st_uid != geteuid()) {
        snprintf(why, sizeof why, "it is owned by uid %lu, not by this process' user (uid %lu)",
                 (unsigned long)st.st_uid, (unsigned long)geteuid());
        return push_refusal(L, path, why);
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        snprintf(why, sizeof why, "it is writable by group or others (mode %04lo)",
                 (unsigned long)(st.st_mode & 07777));
        return push_refusal(L, path, why);
    }
    lua_pushboolean(L, 1);
    return 1;
}


/* core.read_regular(path, max_bytes) -> data | nil | nil, err */
static int l_read_regular(lua_State *L)
{
    const char *path = check_path(L, 1, WECOM_FN("read_regular"));
    lua_Integer max = wecom_check_integer(L, 2, WECOM_FN("read_regular"), "max_bytes", 0, MAX_READ_BYTES);
    struct stat st;
    char *buf;
    size_t got = 0;
    int fd, n;

    /* the buffer first: an allocation failure must not leak the descriptor */
    buf = (char *)lua_newuserdata(L, (size_t)max + 1);
    do {
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        if (errno == ENOENT) {
            lua_pushnil(L);
            return 1;
        }
        return push_open_error(L, "cannot read", path, errno);
    }
    if ((n = check_regular(L, fd, path, &st)) != 0)
        return n;
    if (st.st_size > (off_t)max) {
        close(fd);
        return push_refusal(L, path, "it is larger than the store's entries can be");
    }
    /* one byte more than allowed tells a file that grew since fstat */
    while (got <= (size_t)max) {
        ssize_t r = read(fd, buf + got, (size_t)max + 1 - got);
        if (r < 0) {
            int err = errno;
            if (err == EINTR)
                continue;
            close(fd);
            return push_errno(L, "cannot read", path, err);
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got > (size_t)max)
        return push_refusal(L, path, "it is larger than the store's entries can be");
    lua_pushlstring(L, buf, got);
    return 1;
}

/* An open directory while list_dir reads it: a private userdata whose
 * finalizer closes it, so a Lua error (out of memory) cannot leak it. */
typedef struct {
    DIR *dir;
} dir_box;

static int dir_destroy(lua_State *L)
{
    dir_box *box = (dir_box *)luaL_checkudata(L, 1, DIR_MT);

    if (box->dir != NULL) {
        closedir(box->dir);
        box->dir = NULL;
    }
    return 0;
}

static const wecom_class dir_class = { DIR_MT, NULL, dir_destroy, NULL };

/*
 * core.list_dir(path, suffix) -> { name, ... } | nil, err
 * The names in directory path that end in suffix (longer than it), in no
 * order; "." and ".." never end in a suffix that starts with a letter.
 */
static int l_list_dir(lua_State *L)
{
    const char *path = check_path(L, 1, WECOM_FN("list_dir"));
    size_t slen;
    const char *suffix = wecom_check_string(L, 2, WECOM_FN("list_dir"), "suffix", &slen);
    dir_box *box = (dir_box *)lua_newuserdata(L, sizeof *box);
    struct dirent *de;
    lua_Integer n = 0;

    box->dir = NULL;
    luaL_getmetatable(L, DIR_MT);
    lua_setmetatable(L, -2);
    box->dir = opendir(path);
    if (box->dir == NULL)
        return push_errno(L, "cannot list", path, errno);
    lua_newtable(L);
    for (;;) {
        size_t len;

        errno = 0;
        de = readdir(box->dir);
        if (de == NULL)
            break;
        len = strlen(de->d_name);
        if (len > slen && memcmp(de->d_name + len - slen, suffix, slen) == 0) {
            lua_pushlstring(L, de->d_name, len);
            lua_rawseti(L, -2, ++n);
        }
    }
    if (errno != 0) {
        int err = errno;
        closedir(box->dir);
        box->dir = NULL;
        return push_errno(L, "cannot list", path, err);
    }
    closedir(box->dir);
    box->dir = NULL;
    return 1;
}

/* core.flock_open_nofollow(path) -> lock | nil, err; creates the file (0600) */
static int l_flock_open_nofollow(lua_State *L)
{
    return open_lock(L, WECOM_FN("flock_open_nofollow"), 1);
}

/* ===== registration ===================================================== */

static const luaL_Reg lock_methods[] = {
    { "lock", l_lock_lock },
    { "unlock", l_lock_unlock },
    { NULL, NULL }
};

static const wecom_class lock_class = { FLOCK_MT, lock_methods, lock_destroy, lock_tostring };

static const luaL_Reg flock_funcs[] = {
    { "flock_open", l_flock_open },
    { "write_atomic", l_write_atomic },
    { "mkdir", l_mkdir },
    { "getpid", l_getpid },
    /* hardened access for the file token store */
    { "private_dir", l_private_dir },
    { "read_regular", l_read_regular },
    { "flock_open_nofollow", l_flock_open_nofollow },
    { "list_dir", l_list_dir },
    { NULL, NULL }
};

void wecom_flock_open(lua_State *L)
{
    wecom_class_register(L, &lock_class);
    wecom_class_register(L, &dir_class);
    luaL_setfuncs(L, flock_funcs, 0);
}
