/* exoflow._native: a walk's directories listed and lstat'ed in C (walk_dirs); a batch of files
 * read in C.
 *
 * The listing task's hot loop in Python builds a DirEntry, a str and a stat_result
 * (about twenty Python objects) per file, then reads nine fields back out of each, and
 * a DirItem per directory; here open + readdir + fstatat run with the GIL released, the
 * walk's stack is kept in C, and the results come back as flat byte strings that NumPy
 * and Arrow take without copying per entry.
 * exoflow/sources/walk.py falls back to os.scandir when this module is not built.
 * read_files does the batch loader's open/fstat/read/close per file the same way
 * (exoflow/batch.py keeps the Python loop as its fallback).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL       /* third_party/xxhash: header-only xxHash (BSD 2-Clause) */
#include "xxhash.h"
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || defined(_M_IX86)
#include "xxh_x86dispatch.h"   /* XXH3 with the widest vectors the CPU has, chosen at run time (_xxh_dispatch.c) */
#endif

#define N_FIELDS 10  /* size, blocks, mtime_ns, mode, uid, gid, inode, device, nlink, ctime_ns */

typedef struct {
    char *data;
    size_t len, cap;
} buf_t;

static int buf_put(buf_t *b, const void *src, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

/* a timespec in ns, saturated: int64 ns only reach the years 1677-2262 */
static int64_t time_ns(const struct timespec *t) {
    int64_t ns;
    if (__builtin_mul_overflow((int64_t)t->tv_sec, (int64_t)1000000000, &ns)
        || __builtin_add_overflow(ns, (int64_t)t->tv_nsec, &ns))
        return t->tv_sec < 0 ? INT64_MIN : INT64_MAX;
    return ns;
}

static PyObject *bytes_of(buf_t *b) {
    return PyBytes_FromStringAndSize(b->data ? b->data : "", (Py_ssize_t)b->len);
}

/* One directory's entries, read from ``dir`` (opened on ``fd``): subdirectory names to ``dirs``
 * (NUL-terminated), and each other entry's prefix + name, length and lstat fields as a row
 * (``paths``, ``lens``, ``stats``), *rows counting them. An entry whose lstat fails is a row of
 * zero fields whose (row number, errno, d_type) as int64s go to ``problems``. Returns 0, -1 when
 * out of memory, or the errno of a failed readdir. */
typedef struct {
    buf_t dirs, paths, lens, stats, problems;
} listing_t;

static int list_entries(DIR *dir, int fd, const char *prefix, size_t prefix_len, listing_t *out, int64_t *rows) {
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(dir);
        if (de == NULL)
            return errno;
        const char *name = de->d_name;
        if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0)))
            continue;
        size_t nlen = strlen(name);
        if (de->d_type == DT_DIR) {
            if (buf_put(&out->dirs, name, nlen + 1))
                return -1;
            continue;
        }
        struct stat st;
        int64_t row[N_FIELDS] = {0};
        if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            int64_t problem[3] = {*rows, errno, de->d_type};
            if (buf_put(&out->problems, problem, sizeof problem))
                return -1;
        } else if (S_ISDIR(st.st_mode)) {    /* d_type was DT_UNKNOWN */
            if (buf_put(&out->dirs, name, nlen + 1))
                return -1;
            continue;
        } else {
            int64_t fields[N_FIELDS] = {
                (int64_t)st.st_size, (int64_t)st.st_blocks, time_ns(&st.st_mtim),
                (int64_t)st.st_mode, (int64_t)st.st_uid, (int64_t)st.st_gid,
                (int64_t)(uint64_t)st.st_ino, (int64_t)(uint64_t)st.st_dev, (int64_t)st.st_nlink,
                time_ns(&st.st_ctim),
            };
            memcpy(row, fields, sizeof row);
        }
        int64_t len = (int64_t)(prefix_len + nlen);
        if (buf_put(&out->paths, prefix, prefix_len) || buf_put(&out->paths, name, nlen)
            || buf_put(&out->lens, &len, sizeof len) || buf_put(&out->stats, row, sizeof row))
            return -1;
        ++*rows;
    }
}

static void listing_free(listing_t *l) {
    free(l->dirs.data);
    free(l->paths.data);
    free(l->lens.data);
    free(l->stats.data);
    free(l->problems.data);
}

static int open_long(const char *path, int flags);

/* walk_dirs: a directory waiting to be listed, and the (device, inode) chain of the directories
 * above it (nodes, each pointing at its parent's; -1 ends a chain) */
typedef struct {
    char *path;
    size_t len;
    int64_t depth, origin, node;
} walk_item_t;

typedef struct {
    int64_t dev, ino, parent;
} walk_node_t;

typedef struct {
    walk_item_t *items;
    size_t head, n, cap;         /* items[head:n] wait */
    walk_node_t *nodes;
    size_t n_nodes, cap_nodes;
} walk_t;

static int walk_push(walk_t *w, walk_item_t it) {
    if (w->n == w->cap) {
        if (w->head > 0) {                       /* a queue: reuse what was taken from its front */
            memmove(w->items, w->items + w->head, (w->n - w->head) * sizeof *w->items);
            w->n -= w->head;
            w->head = 0;
        }
        if (w->n == w->cap) {
            size_t cap = w->cap ? 2 * w->cap : 64;
            walk_item_t *p = realloc(w->items, cap * sizeof *p);
            if (p == NULL)
                return -1;
            w->items = p;
            w->cap = cap;
        }
    }
    w->items[w->n++] = it;
    return 0;
}

static int64_t walk_node(walk_t *w, int64_t dev, int64_t ino, int64_t parent) {
    if (w->n_nodes == w->cap_nodes) {
        size_t cap = w->cap_nodes ? 2 * w->cap_nodes : 256;
        walk_node_t *p = realloc(w->nodes, cap * sizeof *p);
        if (p == NULL)
            return -2;
        w->nodes = p;
        w->cap_nodes = cap;
    }
    w->nodes[w->n_nodes] = (walk_node_t){dev, ino, parent};
    return (int64_t)w->n_nodes++;
}

/* a directory that cannot be opened or read: a row of its own (its path, fields 0), as errno's problem */
static int walk_dir_error(listing_t *out, buf_t *runs, int64_t *rows, const walk_item_t *it, int err) {
    int64_t len = (int64_t)it->len, row[N_FIELDS] = {0};
    int64_t run[3] = {*rows, it->depth, it->origin}, problem[3] = {*rows, err, DT_DIR};
    if (buf_put(&out->paths, it->path, it->len) || buf_put(&out->lens, &len, sizeof len)
        || buf_put(&out->stats, row, sizeof row) || buf_put(runs, run, sizeof run)
        || buf_put(&out->problems, problem, sizeof problem))
        return -1;
    ++*rows;
    return 0;
}

static double monotonic(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

PyDoc_STRVAR(walk_dirs_doc,
"walk_dirs(stack, dlimits, others, budget, max_bytes, deadline, breadth_first)\n"
"    -> (paths, lengths, stats, runs, problems, left, dirs_scanned, handoff)\n\n"
"List and lstat a walk's directories until ``budget`` rows or ``max_bytes`` of their\n"
"paths are collected or CLOCK_MONOTONIC (Python's time.monotonic) passes ``deadline``:\n"
"depth first (``stack``'s last item first, subdirectories pushed in readdir order), or\n"
"breadth first (its first item first).\n\n"
"stack: (path bytes, depth, origin, chain) per directory; chain: the (device, inode) of the\n"
"directories above it, a tuple of int pairs, the root's first. A subdirectory has its\n"
"parent's origin; it is entered when its parent's depth + 1 < dlimits[origin]. A directory\n"
"whose (device, inode) is in others[origin] (int64 pairs, bytes) is skipped below depth 0.\n\n"
"paths: the path of each entry that readdir does not report as a directory (the\n"
"directory's path + '/' + name), concatenated (bytes); lengths: their lengths as int64 (bytes);\n"
"stats: N x 10 int64 (bytes) in the order size, blocks, mtime_ns, mode, uid, gid, inode,\n"
"device, nlink, ctime_ns (inode and device as uint64 bits). runs: int64 triples (first row, depth,\n"
"origin), one per directory that added rows. problems: int64 triples (row, errno, d_type)\n"
"for rows whose lstat failed (their fields are 0); a directory that cannot be opened or\n"
"read is such a row of its own (d_type DT_DIR; the rows it had listed dropped), counted in\n"
"dirs_scanned when it was opened. left: the directories not reached, as ``stack`` gives them,\n"
"in its order. handoff: True when the walk stopped at left's next directory (its last, or\n"
"first when breadth first) because it is one of its own ancestors or its fstat failed: the\n"
"caller deals with that one, then goes on. A path of PATH_MAX bytes or more is opened a\n"
"piece at a time. Raises MemoryError, and ValueError for a malformed stack.");

static PyObject *walk_dirs(PyObject *self, PyObject *args) {
    PyObject *stack, *dlimits_obj, *others_obj;
    Py_ssize_t budget, max_bytes;
    double deadline;
    int bfs;
    if (!PyArg_ParseTuple(args, "O!O!O!nndp", &PyList_Type, &stack, &PyList_Type, &dlimits_obj, &PyList_Type,
                          &others_obj, &budget, &max_bytes, &deadline, &bfs))
        return NULL;
    walk_t w = {0};
    listing_t out = {0};
    buf_t runs = {0};
    PyObject *result = NULL, *left = NULL;
    Py_ssize_t n_limits = PyList_GET_SIZE(dlimits_obj);
    if (PyList_GET_SIZE(others_obj) != n_limits) {
        PyErr_SetString(PyExc_ValueError, "walk_dirs: dlimits and others differ in length");
        return NULL;
    }
    int64_t *dlimits = PyMem_Malloc((size_t)(n_limits ? n_limits : 1) * sizeof *dlimits);
    const int64_t **others = PyMem_Malloc((size_t)(n_limits ? n_limits : 1) * sizeof *others);
    size_t *n_others = PyMem_Malloc((size_t)(n_limits ? n_limits : 1) * sizeof *n_others);
    if (dlimits == NULL || others == NULL || n_others == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n_limits; i++) {      /* the list holds the bytes while the GIL is released */
        PyObject *o = PyList_GET_ITEM(others_obj, i);
        dlimits[i] = PyLong_AsLongLong(PyList_GET_ITEM(dlimits_obj, i));
        if (dlimits[i] == -1 && PyErr_Occurred())
            goto fail;
        if (!PyBytes_Check(o) || PyBytes_GET_SIZE(o) % 16) {
            PyErr_SetString(PyExc_ValueError, "walk_dirs: others are bytes of int64 pairs");
            goto fail;
        }
        others[i] = (const int64_t *)PyBytes_AS_STRING(o);
        n_others[i] = (size_t)PyBytes_GET_SIZE(o) / 16;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(stack); i++) {
        const char *path;
        Py_ssize_t plen;
        long long depth, origin;
        PyObject *chain;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(stack, i), "y#LLO!", &path, &plen, &depth, &origin, &PyTuple_Type, &chain))
            goto fail;
        if (origin < 0 || origin >= n_limits) {
            PyErr_SetString(PyExc_ValueError, "walk_dirs: an origin without its dlimits");
            goto fail;
        }
        int64_t node = -1;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(chain); k++) {
            unsigned long long dev, ino;
            if (!PyArg_ParseTuple(PyTuple_GET_ITEM(chain, k), "KK", &dev, &ino))
                goto fail;
            if ((node = walk_node(&w, (int64_t)dev, (int64_t)ino, node)) == -2)
                goto nomem;
        }
        char *copy = malloc((size_t)plen + 1);
        if (copy == NULL)
            goto nomem;
        memcpy(copy, path, (size_t)plen + 1);
        if (walk_push(&w, (walk_item_t){copy, (size_t)plen, depth, origin, node})) {
            free(copy);
            goto nomem;
        }
    }
    int64_t rows = 0, dirs_scanned = 0;
    int nomem = 0, handoff = 0;

    Py_BEGIN_ALLOW_THREADS
    while (w.head < w.n && rows < budget && (Py_ssize_t)out.paths.len < max_bytes && monotonic() < deadline) {
        walk_item_t it = w.items[bfs ? w.head : w.n - 1];
        int fd;
        do
            fd = open(it.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        while (fd < 0 && errno == EINTR);
        if (fd < 0 && errno == ENAMETOOLONG)
            fd = open_long(it.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            if (bfs)
                w.head++;
            else
                w.n--;
            nomem = walk_dir_error(&out, &runs, &rows, &it, err);
            free(it.path);
            if (nomem)
                break;
            continue;
        }
        struct stat st;
        if (fstat(fd, &st) != 0) {
            close(fd);
            handoff = 1;
            break;
        }
        int64_t dev = (int64_t)(uint64_t)st.st_dev, ino = (int64_t)(uint64_t)st.st_ino;
        int loop = 0;
        for (int64_t k = it.node; k >= 0 && !loop; k = w.nodes[k].parent)
            loop = w.nodes[k].dev == dev && w.nodes[k].ino == ino;
        if (loop) {
            close(fd);
            handoff = 1;
            break;
        }
        int skip = 0;
        const int64_t *other = others[it.origin];
        for (size_t k = 0; it.depth > 0 && k < n_others[it.origin] && !skip; k++)
            skip = other[2 * k] == dev && other[2 * k + 1] == ino;
        if (skip) {
            close(fd);
            if (bfs)
                w.head++;
            else
                w.n--;
            free(it.path);
            continue;
        }
        DIR *dir = fdopendir(fd);
        int failed = dir == NULL ? errno : 0;
        if (dir == NULL)
            close(fd);
        out.dirs.len = 0;
        size_t marks[4] = {out.paths.len, out.lens.len, out.stats.len, out.problems.len};
        int64_t first = rows;
        char *prefix = it.path;
        size_t prefix_len = it.len;
        int slash = prefix_len == 0 || prefix[prefix_len - 1] != '/';
        if (slash) {                      /* the path's NUL becomes the '/' of its entries' prefix */
            char *p = realloc(it.path, prefix_len + 2);
            if (p == NULL) {
                if (dir != NULL)
                    closedir(dir);
                nomem = 1;
                break;
            }
            w.items[bfs ? w.head : w.n - 1].path = prefix = it.path = p;
            prefix[prefix_len++] = '/';
        }
        if (dir != NULL) {
            failed = list_entries(dir, fd, prefix, prefix_len, &out, &rows);
            closedir(dir);
        }
        if (bfs)
            w.head++;
        else
            w.n--;
        dirs_scanned++;
        if (failed) {                      /* its rows so far go: the directory is an error row */
            out.paths.len = marks[0];
            out.lens.len = marks[1];
            out.stats.len = marks[2];
            out.problems.len = marks[3];
            rows = first;
            it.path[it.len] = 0;
            nomem = failed < 0 || walk_dir_error(&out, &runs, &rows, &it, failed);
            free(it.path);
            if (nomem)
                break;
            continue;
        }
        if (rows > first) {
            int64_t run[3] = {first, it.depth + 1, it.origin};
            if (buf_put(&runs, run, sizeof run)) {
                free(it.path);
                nomem = 1;
                break;
            }
        }
        int64_t node = it.depth + 1 < dlimits[it.origin] ? walk_node(&w, dev, ino, it.node) : -1;
        if (node == -2) {
            free(it.path);
            nomem = 1;
            break;
        }
        for (size_t at = 0; node >= 0 && at < out.dirs.len;) {
            size_t nlen = strlen(out.dirs.data + at);
            char *child = malloc(prefix_len + nlen + 1);
            if (child == NULL || (memcpy(child, prefix, prefix_len), memcpy(child + prefix_len, out.dirs.data + at, nlen + 1),
                                  walk_push(&w, (walk_item_t){child, prefix_len + nlen, it.depth + 1, it.origin, node}))) {
                free(child);
                nomem = 1;
                break;
            }
            at += nlen + 1;
        }
        free(it.path);
        if (nomem)
            break;
    }
    Py_END_ALLOW_THREADS

    if (nomem)
        goto nomem;
    if ((left = PyList_New(0)) == NULL)
        goto fail;
    for (size_t i = w.head; i < w.n; i++) {
        walk_item_t *it = &w.items[i];
        size_t depth = 0;
        for (int64_t k = it->node; k >= 0; k = w.nodes[k].parent)
            depth++;
        PyObject *chain = PyTuple_New((Py_ssize_t)depth);
        if (chain == NULL)
            goto fail;
        for (int64_t k = it->node; k >= 0; k = w.nodes[k].parent) {
            PyObject *key = Py_BuildValue("(KK)", (unsigned long long)w.nodes[k].dev, (unsigned long long)w.nodes[k].ino);
            if (key == NULL) {
                Py_DECREF(chain);
                goto fail;
            }
            PyTuple_SET_ITEM(chain, (Py_ssize_t)--depth, key);
        }
        PyObject *item = Py_BuildValue("(y#LLN)", it->path, (Py_ssize_t)it->len, (long long)it->depth,
                                       (long long)it->origin, chain);
        if (item == NULL || PyList_Append(left, item)) {
            Py_XDECREF(item);
            goto fail;
        }
        Py_DECREF(item);
    }
    result = Py_BuildValue("(O&O&O&O&O&OLO)", bytes_of, &out.paths, bytes_of, &out.lens, bytes_of, &out.stats,
                           bytes_of, &runs, bytes_of, &out.problems, left, (long long)dirs_scanned,
                           handoff ? Py_True : Py_False);
    goto fail;
nomem:
    PyErr_NoMemory();
fail:
    Py_XDECREF(left);
    for (size_t i = w.head; i < w.n; i++)
        free(w.items[i].path);
    free(w.items);
    free(w.nodes);
    listing_free(&out);
    free(runs.data);
    PyMem_Free(dlimits);
    PyMem_Free(others);
    PyMem_Free(n_others);
    return result;
}

/* open(path, flags) for a path of PATH_MAX bytes or more (exoflow/longpath.py does the same in
 * Python): its directories are opened a piece at a time, each piece shorter than PATH_MAX, with
 * O_PATH relative to the one before (search permission only, as the kernel's own lookup), and the
 * last name with flags relative to the last of them. */
/* open_long's step down: *dfd becomes the directory piece[:n] below it (the old one closed unless
   AT_FDCWD); -1 with errno set when it cannot be opened. */
static int descend(int *dfd, char *piece, size_t n) {
    piece[n] = 0;
    int next = openat(*dfd, piece, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dfd != AT_FDCWD)
        close(*dfd);
    *dfd = next;
    return next < 0 ? -1 : 0;
}

static int open_long(const char *path, int flags) {
    const char *last = strrchr(path, '/');
    if (last == NULL) {
        errno = ENAMETOOLONG;
        return -1;
    }
    char piece[PATH_MAX];
    size_t n = 0;
    int dfd = AT_FDCWD;
    if (path[0] == '/')
        piece[n++] = '/';
    for (const char *p = path; p < last;) {
        while (p < last && *p == '/')
            p++;
        const char *e = p;
        while (e < last && *e != '/')
            e++;
        size_t len = (size_t)(e - p);
        int named = n > 0 && piece[n - 1] != '/';        /* the piece holds a name already */
        if (named && n + 1 + len >= PATH_MAX) {           /* full: open it, start the next one */
            if (descend(&dfd, piece, n) < 0)
                return -1;
            n = 0;
            named = 0;
        }
        if (named)
            piece[n++] = '/';
        memcpy(piece + n, p, len);
        n += len;
        p = e;
    }
    int fd = -1;
    if (n > 0 && descend(&dfd, piece, n) < 0)
        return -1;
    do
        fd = openat(dfd, last + 1, flags);
    while (fd < 0 && errno == EINTR);
    int saved = errno;
    if (dfd != AT_FDCWD)
        close(dfd);
    errno = saved;
    return fd;
}

/* read_files codes besides errno values (> 0) */
#define NOT_REGULAR (-1)   /* no longer a regular file */
#define LARGE (-2)         /* larger than the limit: left for streaming */
#define GREW (-3)          /* grew while being read */
#define CHANGED (-4)       /* size, mtime or ctime changed while being read */

/* The paths of a list, each encoded as the file system does (PyUnicode_EncodeFSDefault), from
   index start; NULL with the exception set on failure. Free with encoded_free. */
static PyObject **encoded_paths(PyObject *paths, Py_ssize_t start) {
    Py_ssize_t n = PyList_GET_SIZE(paths);
    PyObject **encoded = PyMem_Calloc(n ? (size_t)n : 1, sizeof(PyObject *));
    if (encoded == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = start; i < n; i++) {
        encoded[i] = PyUnicode_EncodeFSDefault(PyList_GET_ITEM(paths, i));
        if (encoded[i] == NULL) {
            for (Py_ssize_t k = start; k < i; k++)
                Py_DECREF(encoded[k]);
            PyMem_Free(encoded);
            return NULL;
        }
    }
    return encoded;
}

static void encoded_free(PyObject **encoded, Py_ssize_t n) {
    if (encoded == NULL)
        return;
    for (Py_ssize_t k = 0; k < n; k++)
        Py_XDECREF(encoded[k]);
    PyMem_Free(encoded);
}

/* open(path, flags) of an encoded path, a piece at a time when it is too long for one call
   (open_long); -1 with *code set (an errno; EINVAL for a NUL byte, which would open another
   file). No GIL needed. */
static int open_encoded(PyObject *encoded, int flags, int32_t *code) {
    const char *path = PyBytes_AS_STRING(encoded);
    if (strlen(path) != (size_t)PyBytes_GET_SIZE(encoded)) {
        *code = EINVAL;
        return -1;
    }
    int fd;
    do
        fd = open(path, flags | O_CLOEXEC);
    while (fd < 0 && errno == EINTR);
    if (fd < 0 && errno == ENAMETOOLONG)
        fd = open_long(path, flags | O_CLOEXEC);
    if (fd < 0)
        *code = errno;
    return fd;
}

/* read() until want bytes, end of file, or (after a read) enough bytes; the bytes read, or -1
   with errno set. A whole file of fstat's size is read with want = size + 1, enough = size (its
   buffer has room for one byte more): more than its size means it grew, and reading stops once
   it has the size, without the read that would return end of file (one system call per file
   fewer): a file that grows after that read has another size, mtime and ctime for after_read.
   An empty file is read once (a /proc file says 0 bytes and holds some). */
static Py_ssize_t read_upto(int fd, char *dst, Py_ssize_t want, Py_ssize_t enough) {
    Py_ssize_t got = 0;
    while (got < want) {
        ssize_t r = read(fd, dst + got, (size_t)(want - got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += r;
        if (got == enough)
            break;
    }
    return got;
}

/* 0 when the file behind fd still has the size, mtime and ctime of *before; else a code
   (CHANGED, or the errno of its fstat). */
static int32_t after_read(int fd, const struct stat *before) {
    struct stat after;
    if (fstat(fd, &after) != 0)
        return errno;
    if (after.st_size != before->st_size || after.st_mtim.tv_sec != before->st_mtim.tv_sec
        || after.st_mtim.tv_nsec != before->st_mtim.tv_nsec || after.st_ctim.tv_sec != before->st_ctim.tv_sec
        || after.st_ctim.tv_nsec != before->st_ctim.tv_nsec)
        return CHANGED;
    return 0;
}

PyDoc_STRVAR(read_files_doc,
"read_files(paths, flags, limit, out, ends, codes, start, pos) -> (stop, pos)\n\n"
"Read whole regular files, paths[start:], one after another into the writable buffer\n"
"``out`` from byte ``pos``: open(path, flags), fstat, read its size and one byte more (a file\n"
"that grew is noticed), fstat, close. A path of\n"
"PATH_MAX bytes or more is opened a piece at a time (openat).\n"
"ends[i] (int64) is where file i's bytes end in ``out``; codes[i] (int32) is 0, an errno,\n"
"-1 (not a regular file), -2 (larger than ``limit``: not read), -3 (grew while read) or -4\n"
"(its size, mtime or ctime changed while read: the bytes may mix two versions). A path\n"
"with a NUL byte is EINVAL.\n"
"Stops before a file whose size + 1 bytes do not fit in ``out``; returns its index\n"
"(len(paths) when all were read) and the bytes used, so the caller can grow ``out``\n"
"and go on. The GIL is released while reading.");

static PyObject *read_files(PyObject *self, PyObject *args) {
    PyObject *paths;
    int flags;
    long long limit;
    Py_buffer out, ends, codes;
    Py_ssize_t start, pos;
    if (!PyArg_ParseTuple(args, "O!iLw*w*w*nn", &PyList_Type, &paths, &flags, &limit, &out, &ends, &codes,
                          &start, &pos))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = PyList_GET_SIZE(paths);
    PyObject **encoded = NULL;
    if ((size_t)ends.len < n * sizeof(int64_t) || (size_t)codes.len < n * sizeof(int32_t) || start < 0
        || start > n || pos < 0 || pos > out.len) {
        PyErr_SetString(PyExc_ValueError, "read_files: buffers too small or bad start/pos");
        goto done;
    }
    encoded = encoded_paths(paths, start);
    if (encoded == NULL)
        goto done;
    char *buf = out.buf;
    int64_t *end = ends.buf;
    int32_t *code = codes.buf;
    Py_ssize_t i = start;
    Py_BEGIN_ALLOW_THREADS
    for (; i < n; i++) {
        code[i] = 0;
        end[i] = pos;
        int fd = open_encoded(encoded[i], flags, &code[i]);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) != 0) {
            code[i] = errno;
        } else if (!S_ISREG(st.st_mode)) {
            code[i] = NOT_REGULAR;
        } else if (st.st_size > limit) {
            code[i] = LARGE;
        } else if (st.st_size >= out.len - pos) {   /* size + 1 bytes do not fit */
            close(fd);
            break;                                   /* no room: the caller grows the buffer */
        } else {
            /* one byte more than its size: a file that grew is noticed */
            Py_ssize_t got = read_upto(fd, buf + pos, (Py_ssize_t)st.st_size + 1, (Py_ssize_t)st.st_size);
            if (got < 0)
                code[i] = errno;
            else if (got > st.st_size)
                code[i] = GREW;
            else if ((code[i] = after_read(fd, &st)) == 0)
                pos += got;
            end[i] = pos;
        }
        close(fd);
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(nn)", i, pos);
done:
    encoded_free(encoded, n);
    PyBuffer_Release(&out);
    PyBuffer_Release(&ends);
    PyBuffer_Release(&codes);
    return result;
}

PyDoc_STRVAR(xxh3_128_files_doc,
"xxh3_128_files(paths, flags, buf, keys, sizes, codes) -> bytes read\n\n"
"XXH3-128 (xxHash 0.8, Yann Collet; the digest of xxhash's xxh3_128 and of xxh128sum) of whole\n"
"regular files, each read through the writable buffer ``buf`` and hashed as it is read, while\n"
"its bytes are still in the CPU cache: open(path, flags), fstat, read to end of file (a file\n"
"under len(buf) bytes in one piece, a larger one in pieces of len(buf)), fstat, close; the\n"
"buffer is reused for every file, so nothing of the files is kept. A path of PATH_MAX bytes or\n"
"more is opened a piece at a time (openat); one with a NUL byte is EINVAL.\n"
"Per path: keys[i] (uint64 pair: high, low 64 bits, as xxh3_128_spans), sizes[i] (int64: the\n"
"bytes hashed) and codes[i] (int32: 0, an errno, -1 (not a regular file), -3 (grew while\n"
"read) or -4 (its size, mtime or ctime changed while read, or a file read in pieces ended\n"
"before its size): as read_files and batch.stream judge them); keys and sizes are 0 where\n"
"codes is not. The GIL is released while reading.");

static PyObject *xxh3_128_files(PyObject *self, PyObject *args) {
    PyObject *paths;
    int flags;
    Py_buffer bufb, keysb, sizesb, codesb;
    if (!PyArg_ParseTuple(args, "O!iw*w*w*w*", &PyList_Type, &paths, &flags, &bufb, &keysb, &sizesb, &codesb))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = PyList_GET_SIZE(paths);
    PyObject **encoded = NULL;
    XXH3_state_t *state = NULL;
    if ((size_t)keysb.len < n * 2 * sizeof(uint64_t) || (size_t)sizesb.len < n * sizeof(int64_t)
        || (size_t)codesb.len < n * sizeof(int32_t) || bufb.len < 2) {
        PyErr_SetString(PyExc_ValueError, "xxh3_128_files: buffers too small");
        goto done;
    }
    encoded = encoded_paths(paths, 0);
    state = XXH3_createState();
    if (encoded == NULL || state == NULL) {
        if (state == NULL)
            PyErr_NoMemory();
        goto done;
    }
    char *buf = bufb.buf;
    Py_ssize_t cap = bufb.len;
    uint64_t *key = keysb.buf;
    int64_t *size = sizesb.buf, total = 0;
    int32_t *code = codesb.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        code[i] = 0;
        size[i] = key[2 * i] = key[2 * i + 1] = 0;
        int fd = open_encoded(encoded[i], flags, &code[i]);
        if (fd < 0)
            continue;
        struct stat st;
        XXH128_hash_t h = {0, 0};
        Py_ssize_t got = 0;
        if (fstat(fd, &st) != 0) {
            code[i] = errno;
        } else if (!S_ISREG(st.st_mode)) {
            code[i] = NOT_REGULAR;
        } else if (st.st_size < cap) {       /* in one piece, one byte more: growth is noticed */
            got = read_upto(fd, buf, (Py_ssize_t)st.st_size + 1, (Py_ssize_t)st.st_size);
            if (got < 0)
                code[i] = errno;
            else if (got > st.st_size)
                code[i] = GREW;
            else
                h = XXH3_128bits(buf, (size_t)got);
        } else {
            XXH3_128bits_reset(state);
            for (;;) {
                Py_ssize_t r = read_upto(fd, buf, cap, cap);
                if (r < 0) {
                    code[i] = errno;
                    break;
                }
                XXH3_128bits_update(state, buf, (size_t)r);
                got += r;
                if (got > st.st_size) {
                    code[i] = GREW;
                    break;
                }
                if (r < cap)
                    break;
            }
            if (code[i] == 0)
                h = XXH3_128bits_digest(state);
        }
        /* as the loader judges them: a file over the buffer (which it streams) must have its
           size; one up to the buffer (which it reads whole) may be shorter (/sys's 4096) */
        if (code[i] == 0)
            code[i] = st.st_size > cap && got != st.st_size ? CHANGED : after_read(fd, &st);
        if (got > 0)
            total += got;
        if (code[i] == 0) {
            key[2 * i] = h.high64;
            key[2 * i + 1] = h.low64;
            size[i] = got;
        }
        close(fd);
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromLongLong(total);
done:
    XXH3_freeState(state);
    encoded_free(encoded, n);
    PyBuffer_Release(&bufb);
    PyBuffer_Release(&keysb);
    PyBuffer_Release(&sizesb);
    PyBuffer_Release(&codesb);
    return result;
}

PyDoc_STRVAR(extensions_doc,
"extensions(offsets, data) -> (ext_offsets, ext_data)\n\n"
"The extension of each path of a string column (int32 ``offsets``, n + 1 of them, into\n"
"``data``): the bytes after the last dot of the file name, when that dot is not the\n"
"name's last byte and the name has a byte other than a dot before it (os.path.splitext's\n"
"rule), ASCII letters lower-cased; empty otherwise. Returns the result's int32 offsets\n"
"and bytes.");

static PyObject *extensions(PyObject *self, PyObject *args) {
    Py_buffer offs, data;
    if (!PyArg_ParseTuple(args, "y*y*", &offs, &data))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = offs.len / (Py_ssize_t)sizeof(int32_t) - 1;
    const int32_t *o = offs.buf;
    const unsigned char *d = data.buf;
    if (n < 0 || (n >= 0 && (o[0] < 0 || o[n] > data.len))) {
        PyErr_SetString(PyExc_ValueError, "extensions: offsets do not fit the data");
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (o[i + 1] < o[i]) {
            PyErr_SetString(PyExc_ValueError, "extensions: offsets decrease");
            goto done;
        }
    }
    int32_t *out_offs = PyMem_Malloc((size_t)(n + 1) * sizeof(int32_t));
    unsigned char *out = PyMem_Malloc((size_t)(o[n] - o[0]) + 1);
    if (out_offs == NULL || out == NULL) {
        PyMem_Free(out_offs);
        PyMem_Free(out);
        PyErr_NoMemory();
        goto done;
    }
    int32_t len = 0;
    out_offs[0] = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int32_t start = o[i], end = o[i + 1], dot = -1, name = start;
        for (int32_t k = end - 1; k >= start; k--) {       /* the name is after the last '/' */
            if (d[k] == '/') {
                name = k + 1;
                break;
            }
            if (d[k] == '.' && dot < 0)
                dot = k;
        }
        int stem_has_other = 0;
        for (int32_t k = name; k < dot; k++) {
            if (d[k] != '.') {
                stem_has_other = 1;
                break;
            }
        }
        if (dot >= 0 && dot < end - 1 && stem_has_other) {
            for (int32_t k = dot + 1; k < end; k++) {
                unsigned char c = d[k];
                out[len++] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
            }
        }
        out_offs[i + 1] = len;
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("(y#y#)", (const char *)out_offs, (Py_ssize_t)((n + 1) * sizeof(int32_t)),
                           (const char *)out, (Py_ssize_t)len);
    PyMem_Free(out_offs);
    PyMem_Free(out);
done:
    PyBuffer_Release(&offs);
    PyBuffer_Release(&data);
    return result;
}

/* ---- codestats: token text and line counts (the NumPy versions in kernels/codestats.py
   are the fallback and the reference the tests compare with) ---------------------------- */

#define CODE_BYTE 'a'    /* stand-ins for a run of other bytes: with / without a byte above a space */
/* The byte loops below run about 30% slower when a loop straddles a 64-byte line, which edits
   anywhere above them decide: each pass starts on a line of its own. */
#if defined(__GNUC__)
#define BYTE_LOOP_ALIGN __attribute__((aligned(64)))
#else
#define BYTE_LOOP_ALIGN
#endif
#define SPACE_BYTE ' '

static int int64s(Py_buffer *b, Py_ssize_t *n) {
    if (b->len % (Py_ssize_t)sizeof(int64_t) || (uintptr_t)b->buf % _Alignof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "expected aligned int64 arrays");
        return -1;
    }
    *n = b->len / (Py_ssize_t)sizeof(int64_t);
    return 0;
}

/* Segments [a[i], b[i]) of a text of len bytes must be sorted, disjoint and inside it. */
static int check_segments(const int64_t *a, const int64_t *b, Py_ssize_t n, Py_ssize_t len, const char *fn) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if (a[i] < 0 || a[i] > b[i] || b[i] > len || (i && b[i - 1] > a[i])) {
            PyErr_Format(PyExc_ValueError, "%s: segments must be sorted, disjoint, inside the text", fn);
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(token_text_doc,
"token_text(data, file_lo, classes, out, starts) -> length\n\n"
"The token text of contiguous nonempty files (file i is data[file_lo[i]:file_lo[i+1]], the last\n"
"ends at len(data); file_lo[0] == 0): each byte whose class (classes[byte]) is 2 is kept, each\n"
"run of other bytes inside a file becomes one byte, 'a' if it holds a byte of class 1, else ' '.\n"
"Written to out (at least len(data) bytes); starts[i] = where file i begins in it.");

BYTE_LOOP_ALIGN static PyObject *token_text(PyObject *self, PyObject *args) {
    Py_buffer data, lo, table, out, starts;
    if (!PyArg_ParseTuple(args, "y*y*y*w*w*", &data, &lo, &table, &out, &starts))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t k, n = data.len, w = 0;
    if (int64s(&lo, &k) < 0)
        goto done;
    const int64_t *f = lo.buf;
    if (table.len != 256 || out.len < n || starts.len < lo.len || (k > 0 && f[0] != 0) || (k == 0 && n > 0)) {
        PyErr_SetString(PyExc_ValueError, "token_text: bad table, output size or file starts");
        goto done;
    }
    for (Py_ssize_t i = 0; i < k; i++) {
        if (f[i] >= (i + 1 < k ? f[i + 1] : n)) {
            PyErr_SetString(PyExc_ValueError, "token_text: file starts must increase (files are nonempty)");
            goto done;
        }
    }
    const unsigned char *d = data.buf, *cls = table.buf;
    unsigned char *o = out.buf;
    int64_t *s = starts.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < k; i++) {
        Py_ssize_t p = f[i], end = i + 1 < k ? f[i + 1] : n;
        s[i] = w;
        while (p < end) {
            if (cls[d[p]] == 2)
                o[w++] = d[p++];
            unsigned char any = 0;
            Py_ssize_t q = p;
            while (q < end && cls[d[q]] != 2)
                any |= cls[d[q++]];
            if (q > p)
                o[w++] = (any & 1) ? CODE_BYTE : SPACE_BYTE;
            p = q;
        }
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(w);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&lo);
    PyBuffer_Release(&table);
    PyBuffer_Release(&out);
    PyBuffer_Release(&starts);
    return result;
}

PyDoc_STRVAR(count_lines_doc,
"count_lines(data, seg_lo, seg_hi, starts, ends, counts)\n\n"
"Lines, blank, comment and code lines of each segment [seg_lo[i], seg_hi[i]) of data, given\n"
"the sorted, non-overlapping comment spans [starts[j], ends[j]), into counts (int64, 4 per\n"
"segment). A line ends after a newline or at its segment's end; it is blank when it holds no\n"
"byte above a space, code when such a byte lies outside every comment, comment otherwise.");

BYTE_LOOP_ALIGN static PyObject *count_lines(PyObject *self, PyObject *args) {
    Py_buffer data, lo, hi, sb, eb, counts;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*", &data, &lo, &hi, &sb, &eb, &counts))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n_seg, n_hi, n_span, n_end;
    if (int64s(&lo, &n_seg) < 0 || int64s(&hi, &n_hi) < 0 || int64s(&sb, &n_span) < 0 || int64s(&eb, &n_end) < 0)
        goto done;
    const int64_t *a = lo.buf, *b = hi.buf, *cs = sb.buf, *ce = eb.buf;
    if (n_hi != n_seg || n_end != n_span || counts.len < 4 * n_seg * (Py_ssize_t)sizeof(int64_t)) {
        PyErr_SetString(PyExc_ValueError, "count_lines: array lengths differ");
        goto done;
    }
    if (check_segments(a, b, n_seg, data.len, "count_lines") < 0 ||
        check_segments(cs, ce, n_span, data.len, "count_lines (comment spans)") < 0)
        goto done;
    const unsigned char *d = data.buf;
    int64_t *out = counts.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n_seg; i++) {
        Py_ssize_t left = 0, right = n_span;      /* the first span ending after the segment's start */
        while (left < right) {
            Py_ssize_t mid = left + (right - left) / 2;
            if (ce[mid] <= a[i])
                left = mid + 1;
            else
                right = mid;
        }
        Py_ssize_t j = left, p = a[i], end = b[i];
        int64_t lines = 0, blank = 0, comment = 0, code = 0;
        while (p < end) {
            int nonblank = 0, has_code = 0;
            for (;;) {
                unsigned char c = d[p++];
                if (c > SPACE_BYTE) {
                    nonblank = 1;
                    if (!has_code) {
                        while (j < n_span && ce[j] <= p - 1)
                            j++;
                        has_code = !(j < n_span && cs[j] <= p - 1);
                    }
                }
                if (c == '\n' || p == end)
                    break;
            }
            lines++;
            if (!nonblank)
                blank++;
            else if (has_code)
                code++;
            else
                comment++;
        }
        out[4 * i] = lines;
        out[4 * i + 1] = blank;
        out[4 * i + 2] = comment;
        out[4 * i + 3] = code;
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&lo);
    PyBuffer_Release(&hi);
    PyBuffer_Release(&sb);
    PyBuffer_Release(&eb);
    PyBuffer_Release(&counts);
    return result;
}

/* A kernel over spans data[offsets[i]:offsets[i+1]], i < n, writing row_bytes per span into out;
   run with the GIL released. */
typedef void (*spans_kernel)(const unsigned char *d, const int64_t *o, Py_ssize_t n, void *out);

/* Parse (data, offsets, out), check them (offsets int64, sorted, inside data; out aligned and large
   enough for n spans of row_bytes, else ValueError naming fn) and run kernel over them. */
static PyObject *over_spans(PyObject *args, Py_ssize_t row_bytes, const char *fn, spans_kernel kernel) {
    Py_buffer data, offs, out;
    if (!PyArg_ParseTuple(args, "y*y*w*", &data, &offs, &out))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t k;
    if (int64s(&offs, &k) < 0)
        goto done;
    Py_ssize_t n = k - 1;
    if (n < 0 || out.len < n * row_bytes || (uintptr_t)out.buf % _Alignof(int64_t)) {
        PyErr_Format(PyExc_ValueError, "%s: out is too small for the offsets", fn);
        goto done;
    }
    const int64_t *o = offs.buf;
    if (check_segments(o, o + 1, n, data.len, fn) < 0)     /* span i: [o[i], o[i+1]) */
        goto done;
    Py_BEGIN_ALLOW_THREADS
    kernel(data.buf, o, n, out.buf);
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&out);
    return result;
}

/* ---- profile: byte histograms per file (the NumPy bincount in kernels/profile.py is the
   fallback, the GPU path and the reference the tests compare with) ------------------------ */

PyDoc_STRVAR(byte_histograms_doc,
"byte_histograms(data, offsets, out)\n\n"
"out[i, b] += the number of bytes equal to b in data[offsets[i]:offsets[i+1]] (offsets: int64,\n"
"n + 1 of them, nondecreasing, within data; out: int64, n x 256, C order).");

static void histogram_spans(const unsigned char *d, const int64_t *o, Py_ssize_t n, void *out) {
    int64_t *h = out;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t *row = h + 256 * i;
        Py_ssize_t p = o[i], end = o[i + 1];
        if (end - p < 1024) {           /* small files: straight into the row */
            for (; p < end; p++)
                row[d[p]]++;
            continue;
        }
        /* four partial counts: runs of one byte value do not wait on the previous increment */
        int64_t c[4][256] = {{0}};
        for (; p + 4 <= end; p += 4) {
            c[0][d[p]]++;
            c[1][d[p + 1]]++;
            c[2][d[p + 2]]++;
            c[3][d[p + 3]]++;
        }
        for (; p < end; p++)
            c[0][d[p]]++;
        for (int b = 0; b < 256; b++)
            row[b] += c[0][b] + c[1][b] + c[2][b] + c[3][b];
    }
}

static PyObject *byte_histograms(PyObject *self, PyObject *args) {
    return over_spans(args, 256 * sizeof(int64_t), "byte_histograms", histogram_spans);
}

PyDoc_STRVAR(xxh3_128_spans_doc,
"xxh3_128_spans(data, offsets, out)\n\n"
"XXH3-128 (xxHash 0.8, Yann Collet; the same digest as the xxhash package's xxh3_128) of each\n"
"span data[offsets[i]:offsets[i+1]], i < N, into out[i] = (high 64 bits, low 64 bits): offsets\n"
"int64 (N+1), sorted, inside data; out uint64 (N, 2), writable. Raises ValueError otherwise.");

static void hash_spans(const unsigned char *d, const int64_t *o, Py_ssize_t n, void *out) {
    uint64_t *h = out;
    for (Py_ssize_t i = 0; i < n; i++) {
        XXH128_hash_t x = XXH3_128bits(d + o[i], (size_t)(o[i + 1] - o[i]));
        h[2 * i] = x.high64;
        h[2 * i + 1] = x.low64;
    }
}

static PyObject *xxh3_128_spans(PyObject *self, PyObject *args) {
    return over_spans(args, 2 * sizeof(uint64_t), "xxh3_128_spans", hash_spans);
}

PyDoc_STRVAR(python_comments_doc,
"python_comments(text, seg_lo, seg_hi) -> (starts, ends)\n\n"
"The comment spans of Python source in each segment [seg_lo[i], seg_hi[i]) of text (sorted and\n"
"disjoint segments), as int64 bytes: '#' to the end of the line, and triple-quoted strings\n"
"(to their end, or the segment's). Single-line strings are skipped. The same spans as the\n"
"Python comment regex of kernels/languages.py (its reference, compared in the tests).");

typedef struct {
    int64_t *v;
    Py_ssize_t n, cap;
} spans_t;

/* (starts, ends) as two bytes objects of int64 (b"" when empty: y# of a NULL pointer would be None). */
static PyObject *spans_bytes(const spans_t *st, const spans_t *en) {
    return Py_BuildValue("(y#y#)", st->v ? (const char *)st->v : "", st->n * (Py_ssize_t)sizeof(int64_t),
                         en->v ? (const char *)en->v : "", en->n * (Py_ssize_t)sizeof(int64_t));
}

static int span_add(spans_t *s, int64_t x) {
    if (s->n == s->cap) {
        Py_ssize_t cap = s->cap ? 2 * s->cap : 1024;
        int64_t *v = PyMem_RawRealloc(s->v, (size_t)cap * sizeof(int64_t));
        if (v == NULL)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 0;
}

/* A comment pass's segments: ``lo`` and ``hi`` int64 arrays of one length (*n), each [lo, hi) within
   ``text``; -1 with ValueError/TypeError set otherwise. */
static int comment_segments(Py_buffer *text, Py_buffer *lo, Py_buffer *hi, Py_ssize_t *n, const char *name) {
    Py_ssize_t n_hi;
    if (int64s(lo, n) < 0 || int64s(hi, &n_hi) < 0)
        return -1;
    if (n_hi != *n) {
        PyErr_Format(PyExc_ValueError, "%s: array lengths differ", name);
        return -1;
    }
    return check_segments(lo->buf, hi->buf, *n, text->len, name);
}

/* The result of a comment pass, (starts, ends), or MemoryError when a span could not be added;
   the spans are freed. */
static PyObject *comment_result(int failed, spans_t *st, spans_t *en) {
    PyObject *result = failed ? PyErr_NoMemory() : spans_bytes(st, en);
    PyMem_RawFree(st->v);
    PyMem_RawFree(en->v);
    return result;
}

/* A comment pass's last step: its buffers released (``fl`` NULL where it has none); returns ``result``. */
static PyObject *release_pass(PyObject *result, Py_buffer *text, Py_buffer *lo, Py_buffer *hi, Py_buffer *fl) {
    PyBuffer_Release(text);
    PyBuffer_Release(lo);
    PyBuffer_Release(hi);
    if (fl != NULL)
        PyBuffer_Release(fl);
    return result;
}

BYTE_LOOP_ALIGN static PyObject *python_comments(PyObject *self, PyObject *args) {
    Py_buffer text, lo, hi;
    if (!PyArg_ParseTuple(args, "y*y*y*", &text, &lo, &hi))
        return NULL;
    PyObject *result = NULL;
    spans_t st = {NULL, 0, 0}, en = {NULL, 0, 0};
    Py_ssize_t n;
    if (comment_segments(&text, &lo, &hi, &n, "python_comments") < 0)
        goto done;
    const int64_t *a = lo.buf, *b = hi.buf;
    const unsigned char *d = text.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        Py_ssize_t p = a[i], end = b[i];
        while (p < end && !failed) {
            unsigned char c = d[p];
            if (c == '#') {
                Py_ssize_t s0 = p;
                while (p < end && d[p] != '\n')
                    p++;
                failed = span_add(&st, s0) || span_add(&en, p);
            } else if (c == '"' || c == '\'') {
                if (p + 2 < end && d[p + 1] == c && d[p + 2] == c) {     /* a docstring: a comment */
                    Py_ssize_t s0 = p;
                    p += 3;
                    while (p < end) {
                        if (d[p] == '\\')
                            p = p + 2 < end ? p + 2 : end;              /* an escape, or a last backslash */
                        else if (d[p] == c && p + 2 < end && d[p + 1] == c && d[p + 2] == c)
                            break;
                        else
                            p++;
                    }
                    p = p < end ? p + 3 : end;
                    failed = span_add(&st, s0) || span_add(&en, p);
                } else {                                                /* a one-line string, if closed */
                    Py_ssize_t q = p + 1;
                    int closed = 0;
                    while (q < end) {
                        unsigned char x = d[q];
                        if (x == c) {
                            closed = 1;
                            break;
                        }
                        if (x == '\n' || (x == '\\' && q + 1 >= end))
                            break;
                        q += x == '\\' ? 2 : 1;
                    }
                    p = closed ? q + 1 : p + 1;                          /* else the quote is code */
                }
            } else {
                p++;
            }
        }
    }
    Py_END_ALLOW_THREADS
    result = comment_result(failed, &st, &en);
done:
    return release_pass(result, &text, &lo, &hi, NULL);
}

PyDoc_STRVAR(c_comments_doc,
"c_comments(text, seg_lo, seg_hi, flags) -> (starts, ends)\n\n"
"The comment spans of C-like source in each segment [seg_lo[i], seg_hi[i]) of text (sorted and\n"
"disjoint segments), as int64 bytes: '//' to the end of the line, '/*' to '*/' (or the segment's\n"
"end). One-line \"...\" and '...' strings are skipped, and by flags[i]: 1 JavaScript template\n"
"strings `...`, 2 JavaScript regex literals, 4 C++ raw strings R\"x(...)x\". The same spans as the\n"
"comment regex of kernels/languages.py for those languages (its reference, compared in the tests).");

#define C_BACKTICK 1
#define C_REGEX 2
#define C_RAW 4

static inline int is_word(int c) {          /* \w of a bytes regex */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static inline int is_space(int c) {         /* \s of a bytes regex */
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline int ends_operand(int c) {     /* a word, $, a non-ASCII byte, ) or ]: what a division follows */
    return is_word(c) || c == '$' || c >= 0x80 || c == ')' || c == ']';
}

/* The end of a string between quotes q starting at p (escapes; spanning lines if lines), or -1. */
static Py_ssize_t quoted_end(const unsigned char *d, Py_ssize_t p, Py_ssize_t end, unsigned char q, int lines) {
    for (Py_ssize_t i = p + 1; i < end;) {
        if (d[i] == q)
            return i + 1;
        if (d[i] == '\n' && !lines)
            return -1;
        if (d[i] == '\\') {
            if (i + 1 >= end)
                return -1;
            i += 2;
        } else {
            i++;
        }
    }
    return -1;
}

static const char *const js_keywords[] = {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void",
                                          "throw", "case", "do", "else", "yield", "await", NULL};

/* Whether a '/' at p may start a regex literal: it does not follow an operand (up to two blanks
   between) unless that operand is a keyword, and it does not close a tag (</). */
static int regex_may_start(const unsigned char *d, Py_ssize_t lo, Py_ssize_t p) {
#define AT(i) ((i) >= lo ? (int)d[i] : -1)
    if (AT(p - 1) == '<')
        return 0;
    if (!ends_operand(AT(p - 1)) && !(is_space(AT(p - 1)) && ends_operand(AT(p - 2)))
        && !(is_space(AT(p - 1)) && is_space(AT(p - 2)) && ends_operand(AT(p - 3))))
        return 1;
    for (int sp = 0; sp <= 2; sp++) {
        if (sp && !is_space(AT(p - sp)))
            break;
        for (const char *const *k = js_keywords; *k; k++) {
            Py_ssize_t n = (Py_ssize_t)strlen(*k), start = p - sp - n;
            if (start >= lo && memcmp(d + start, *k, (size_t)n) == 0 && !is_word(AT(start - 1)))
                return 1;
        }
    }
    return 0;
#undef AT
}

/* The end of a regex literal /.../ starting at p (one line, classes [...] may hold '/'), or -1. */
static Py_ssize_t regex_end(const unsigned char *d, Py_ssize_t p, Py_ssize_t end) {
    Py_ssize_t i = p + 1;
    if (i < end && (d[i] == '/' || d[i] == '*' || d[i] == '>'))
        return -1;
    while (i < end && d[i] != '/') {
        unsigned char c = d[i];
        if (c == '\n')
            return -1;
        if (c == '\\') {
            if (i + 1 >= end || d[i + 1] == '\n')
                return -1;
            i += 2;
        } else if (c == '[') {
            Py_ssize_t j = i + 1;
            while (j < end && d[j] != ']') {
                if (d[j] == '\n')
                    return -1;
                if (d[j] == '\\') {
                    if (j + 1 >= end || d[j + 1] == '\n')
                        return -1;
                    j += 2;
                } else {
                    j++;
                }
            }
            if (j >= end)
                return -1;
            i = j + 1;
        } else {
            i++;
        }
    }
    return (i < end && i > p + 1) ? i + 1 : -1;
}

/* The end of a C++ raw string R"x(...)x" whose quote is at p (prefix R, uR, UR, LR, u8R), or -1. */
static Py_ssize_t raw_end(const unsigned char *d, Py_ssize_t lo, Py_ssize_t p, Py_ssize_t end) {
#define AT(i) ((i) >= lo ? (int)d[i] : -1)
    if (AT(p - 1) != 'R')
        return -1;
    int prefix = !is_word(AT(p - 2))
                 || ((AT(p - 2) == 'u' || AT(p - 2) == 'U' || AT(p - 2) == 'L') && !is_word(AT(p - 3)))
                 || (AT(p - 2) == '8' && AT(p - 3) == 'u' && !is_word(AT(p - 4)));
#undef AT
    if (!prefix)
        return -1;
    Py_ssize_t q = p + 1;
    while (q < end && q - p - 1 <= 16 && d[q] != '(' && d[q] != ')' && d[q] != '\\' && d[q] != '"' && !is_space(d[q]))
        q++;
    Py_ssize_t n = q - p - 1;               /* the delimiter: up to 16 bytes, then '(' */
    if (n > 16 || q >= end || d[q] != '(')
        return -1;
    for (Py_ssize_t i = q + 1; i + n + 1 < end; i++) {
        if (d[i] == ')' && memcmp(d + i + 1, d + p + 1, (size_t)n) == 0 && d[i + n + 1] == '"')
            return i + n + 2;
    }
    return -1;
}

BYTE_LOOP_ALIGN static PyObject *c_comments(PyObject *self, PyObject *args) {
    Py_buffer text, lo, hi, fl;
    if (!PyArg_ParseTuple(args, "y*y*y*y*", &text, &lo, &hi, &fl))
        return NULL;
    PyObject *result = NULL;
    spans_t st = {NULL, 0, 0}, en = {NULL, 0, 0};
    Py_ssize_t n, n_fl;
    if (comment_segments(&text, &lo, &hi, &n, "c_comments") < 0 || int64s(&fl, &n_fl) < 0)
        goto done;
    if (n_fl != n) {
        PyErr_SetString(PyExc_ValueError, "c_comments: array lengths differ");
        goto done;
    }
    const int64_t *a = lo.buf, *b = hi.buf, *f = fl.buf;
    const unsigned char *d = text.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        Py_ssize_t p = a[i], end = b[i];
        int64_t flags = f[i];
        while (p < end && !failed) {
            unsigned char c = d[p];
            Py_ssize_t e = -1;
            if (c == '/' && p + 1 < end && d[p + 1] == '/') {
                for (e = p + 2; e < end && d[e] != '\n'; e++)
                    ;
                failed = span_add(&st, p) || span_add(&en, e);
            } else if (c == '/' && p + 1 < end && d[p + 1] == '*') {
                for (e = p + 2; e + 1 < end && !(d[e] == '*' && d[e + 1] == '/'); e++)
                    ;
                e = e + 1 < end ? e + 2 : end;
                failed = span_add(&st, p) || span_add(&en, e);
            } else if (c == '"') {
                if (flags & C_RAW)
                    e = raw_end(d, a[i], p, end);
                if (e < 0)
                    e = quoted_end(d, p, end, c, 0);
            } else if (c == '\'') {
                e = quoted_end(d, p, end, c, 0);
            } else if (c == '`' && (flags & C_BACKTICK)) {
                e = quoted_end(d, p, end, c, 1);
            } else if (c == '/' && (flags & C_REGEX) && regex_may_start(d, a[i], p)) {
                e = regex_end(d, p, end);
            }
            p = e > p ? e : p + 1;       /* past the comment or string; else the byte is code */
        }
    }
    Py_END_ALLOW_THREADS
    result = comment_result(failed, &st, &en);
done:
    return release_pass(result, &text, &lo, &hi, &fl);
}

/* ---- neardup: shingles and MinHash signatures per segment (the NumPy form in
   exoflow/ops/neardup/minhash.py is the reference, the GPU path and the fallback; the
   tests compare the two) ---------------------------------------------------------------- */

PyDoc_STRVAR(minhash_spans_doc,
"minhash_spans(data, lo, hi, size, words, a, b, out, counts, open_end, short_ok) -> carry\n\n"
"For each segment data[lo[i]:hi[i]] (lo, hi: int64): its shingles (``size`` tokens; tokens are\n"
"UTF-8 characters, or with ``words`` runs of non-whitespace bytes) hashed as minhash.py defines,\n"
"permuted by (a[j] * h + b[j]) mod 2**32 (a, b: uint32, k each) and min-ed into out[i, :]\n"
"(uint32, n x k, C order); counts[i] (int64) += the segment's shingles. ``open_end``: the last\n"
"segment continues (a token running to its end is unfinished); returns where to resume it\n"
"(the byte the next window starts from), else -1. ``short_ok``: a segment with 1 to size-1\n"
"tokens has one shingle of all of them.");

#define NEARDUP_P 0x100000001B3ULL                /* token bytes: g = g * P + byte + 1 */
#define NEARDUP_Q 0x9E3779B97F4A7C15ULL           /* shingle: g = g * Q + token hash */

static inline uint64_t fmix64(uint64_t h) {       /* MurmurHash3's finalizer */
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 33);
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define NEARDUP_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default"), optimize("O3")))
#else
#define NEARDUP_CLONES
#endif

/* The k permutations of one shingle hash, min-ed into a signature row. */
static inline __attribute__((always_inline)) void permute_min(uint32_t h, const uint32_t *restrict a,
                                                              const uint32_t *restrict b, uint32_t *restrict row,
                                                              Py_ssize_t k) {
    for (Py_ssize_t j = 0; j < k; j++) {
        uint32_t v = a[j] * h + b[j];
        row[j] = v < row[j] ? v : row[j];
    }
}

#define NEARDUP_BATCH 8                           /* shingles permuted per pass over a row */

/* The k permutations of NEARDUP_BATCH shingle hashes, min-ed into a signature row: one load and
   store of the row for all of them. */
static inline __attribute__((always_inline)) void permute_min_batch(const uint32_t *restrict hs,
                                                                    const uint32_t *restrict a,
                                                                    const uint32_t *restrict b,
                                                                    uint32_t *restrict row, Py_ssize_t k) {
    for (Py_ssize_t j = 0; j < k; j++) {
        uint32_t m = row[j], aj = a[j], bj = b[j];
        for (int q = 0; q < NEARDUP_BATCH; q++) {
            uint32_t v = aj * hs[q] + bj;
            m = v < m ? v : m;
        }
        row[j] = m;
    }
}

#define NEARDUP_BLOCK 512                         /* shingles folded and permuted at once */

/* A segment's finished tokens waiting to be folded into shingles: hashes (the last size-1 of
   a block are kept for the next, whose first shingles need them), and scratch for the fold. */
typedef struct {
    uint64_t *tok;                                /* NEARDUP_BLOCK + size - 1 token hashes */
    uint64_t *fold;                               /* NEARDUP_BLOCK shingle folds */
    uint32_t *hash;                               /* NEARDUP_BLOCK shingle hashes */
} Tokens;

/* The n shingles of the tokens tok[0 .. n+size-2] (shingle i: tokens i .. i+size-1, folded
   g = g * Q + t, then fmix64's top 32 bits), permuted and min-ed into row. Loops over the
   block, so the compiler vectorises the fold and the finalizer (8 shingles at a time with
   AVX-512) and the permutations run NEARDUP_BATCH shingles per pass over the row. */
NEARDUP_CLONES static void shingle_block(Tokens *w, Py_ssize_t n, int size, const uint32_t *restrict a,
                                         const uint32_t *restrict b, uint32_t *restrict row, Py_ssize_t k) {
    const uint64_t *restrict tok = w->tok;
    uint64_t *restrict g = w->fold;
    uint32_t *restrict h = w->hash;
    for (Py_ssize_t i = 0; i < n; i++)
        g[i] = tok[i];
    for (int m = 1; m < size; m++)
        for (Py_ssize_t i = 0; i < n; i++)
            g[i] = g[i] * NEARDUP_Q + tok[i + m];
    for (Py_ssize_t i = 0; i < n; i++)
        h[i] = (uint32_t)(fmix64(g[i]) >> 32);
    Py_ssize_t i = 0;
    for (; i + NEARDUP_BATCH <= n; i += NEARDUP_BATCH)
        permute_min_batch(h + i, a, b, row, k);
    for (; i < n; i++)
        permute_min(h[i], a, b, row, k);
}

/* One segment d[lo:hi] into row (see minhash_spans): its tokens' hashes are gathered a block
   at a time (a run of ASCII characters at once: each byte is a token, hashed byte + 1) and
   their shingles made by shingle_block. When ``open``, starts holds the last ``size``
   finished tokens' first bytes (circular, the oldest at ``head``) and the call returns where
   to resume the segment; else -1. Compiled for AVX-512 and AVX2 too (picked at load time). */
NEARDUP_CLONES static Py_ssize_t minhash_segment(const unsigned char *d, Py_ssize_t lo, Py_ssize_t hi, int size,
                                                 int words, int open, int short_ok, const uint32_t *a,
                                                 const uint32_t *b, Py_ssize_t k, uint32_t *row, int64_t *count,
                                                 Tokens *w, Py_ssize_t *starts) {
    uint64_t *tok = w->tok;
    int head = 0;
    Py_ssize_t t = 0, nt = 0, p = lo, pending = hi;      /* t: finished tokens; nt: of them in tok */
    const Py_ssize_t full = NEARDUP_BLOCK + size - 1;
    for (;;) {
        if (nt == full) {                                /* a block: keep the last size-1 tokens */
            shingle_block(w, NEARDUP_BLOCK, size, a, b, row, k);
            memmove(tok, tok + NEARDUP_BLOCK, (size_t)(size - 1) * sizeof *tok);
            nt = size - 1;
        }
        if (!words && !open) {                          /* a run of ASCII characters: a token a byte */
            Py_ssize_t m = hi - p < full - nt ? hi - p : full - nt, r = 0;
            while (r < m && d[p + r] < 0x80)
                r++;
            r -= r && p + r < hi && (d[p + r] & 0xC0) == 0x80;   /* the last one has continuation bytes */
            for (Py_ssize_t i = 0; i < r; i++)
                tok[nt + i] = (uint64_t)d[p + i] + 1;
            p += r;
            nt += r;
            t += r;
            if (nt == full)
                continue;
        }
        if (words)
            while (p < hi && is_space(d[p]))
                p++;
        if (p >= hi)
            break;
        Py_ssize_t tstart = p;
        uint64_t h = (uint64_t)d[p++] + 1;
        if (words)
            for (; p < hi && !is_space(d[p]); p++)
                h = h * NEARDUP_P + (uint64_t)d[p] + 1;
        else                                            /* a character: its continuation bytes */
            for (; p < hi && (d[p] & 0xC0) == 0x80; p++)
                h = h * NEARDUP_P + (uint64_t)d[p] + 1;
        if (p == hi && open) {                           /* runs to the end: unfinished */
            pending = tstart;
            break;
        }
        tok[nt++] = h;
        t++;
        if (open) {                                      /* where a next window would resume */
            starts[head] = tstart;
            head = head + 1 == size ? 0 : head + 1;
        }
    }
    if (t >= size) {
        shingle_block(w, nt - size + 1, size, a, b, row, k);
        *count += t - size + 1;
    } else if (t >= 1 && short_ok && !open) {             /* one shingle of all t tokens */
        uint64_t g = 0;
        for (Py_ssize_t i = 0; i < t; i++)
            g = g * NEARDUP_Q + tok[i];
        permute_min((uint32_t)(fmix64(g) >> 32), a, b, row, k);
        (*count)++;
    }
    if (!open)
        return -1;
    Py_ssize_t j = t - size + 1;                           /* the first shingle not yet made */
    return j <= 0 ? lo : j < t ? starts[head + 1 == size ? 0 : head + 1] : pending;   /* head: token t-size */
}

static PyObject *minhash_spans(PyObject *self, PyObject *args) {
    Py_buffer data, lob, hib, ab, bb, outb, cb;
    int size, words, open_end, short_ok;
    if (!PyArg_ParseTuple(args, "y*y*y*ipy*y*w*w*pp", &data, &lob, &hib, &size, &words, &ab, &bb, &outb, &cb,
                          &open_end, &short_ok))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t n, n2, nc, k = ab.len / (Py_ssize_t)sizeof(uint32_t);
    Tokens w = {NULL, NULL, NULL};
    Py_ssize_t *starts = NULL;
    if (int64s(&lob, &n) < 0 || int64s(&hib, &n2) < 0 || int64s(&cb, &nc) < 0)
        goto done;
    if (n != n2 || nc != n || size < 1 || bb.len != ab.len || ab.len % (Py_ssize_t)sizeof(uint32_t)
        || (uintptr_t)ab.buf % _Alignof(uint32_t) || (uintptr_t)bb.buf % _Alignof(uint32_t)
        || (uintptr_t)outb.buf % _Alignof(uint32_t) || outb.len != n * k * (Py_ssize_t)sizeof(uint32_t)) {
        PyErr_SetString(PyExc_ValueError, "minhash_spans: lo, hi, counts, a, b or out do not match");
        goto done;
    }
    const int64_t *lo = lob.buf, *hi = hib.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (lo[i] < 0 || lo[i] > hi[i] || hi[i] > data.len) {
            PyErr_SetString(PyExc_ValueError, "minhash_spans: a segment is outside the data");
            goto done;
        }
    }
    w.tok = PyMem_RawMalloc((NEARDUP_BLOCK + (size_t)size - 1) * sizeof *w.tok);
    w.fold = PyMem_RawMalloc(NEARDUP_BLOCK * sizeof *w.fold);
    w.hash = PyMem_RawMalloc(NEARDUP_BLOCK * sizeof *w.hash);
    starts = PyMem_RawMalloc(size * sizeof *starts);
    if (w.tok == NULL || w.fold == NULL || w.hash == NULL || starts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    const unsigned char *d = data.buf;
    const uint32_t *a = ab.buf, *b = bb.buf;
    uint32_t *out = outb.buf;
    int64_t *counts = cb.buf;
    Py_ssize_t carry = -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int open = open_end && i == n - 1;
        Py_ssize_t resume = minhash_segment(d, lo[i], hi[i], size, words, open, short_ok, a, b, k, out + i * k,
                                            counts + i, &w, starts);
        if (open)
            carry = resume;
    }
    Py_END_ALLOW_THREADS
    result = PyLong_FromSsize_t(carry);
done:
    PyMem_RawFree(w.tok);
    PyMem_RawFree(w.fold);
    PyMem_RawFree(w.hash);
    PyMem_RawFree(starts);
    PyBuffer_Release(&data);
    PyBuffer_Release(&lob);
    PyBuffer_Release(&hib);
    PyBuffer_Release(&ab);
    PyBuffer_Release(&bb);
    PyBuffer_Release(&outb);
    PyBuffer_Release(&cb);
    return result;
}

static PyMethodDef methods[] = {
    {"extensions", extensions, METH_VARARGS, extensions_doc},
    {"walk_dirs", walk_dirs, METH_VARARGS, walk_dirs_doc},
    {"read_files", read_files, METH_VARARGS, read_files_doc},
    {"xxh3_128_files", xxh3_128_files, METH_VARARGS, xxh3_128_files_doc},
    {"token_text", token_text, METH_VARARGS, token_text_doc},
    {"count_lines", count_lines, METH_VARARGS, count_lines_doc},
    {"byte_histograms", byte_histograms, METH_VARARGS, byte_histograms_doc},
    {"xxh3_128_spans", xxh3_128_spans, METH_VARARGS, xxh3_128_spans_doc},
    {"python_comments", python_comments, METH_VARARGS, python_comments_doc},
    {"c_comments", c_comments, METH_VARARGS, c_comments_doc},
    {"minhash_spans", minhash_spans, METH_VARARGS, minhash_spans_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "exoflow._native", "exoflow's compiled directory lister, batch reader and codestats, profile and neardup passes.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && (PyModule_AddIntConstant(m, "N_FIELDS", N_FIELDS)
                      || PyModule_AddIntConstant(m, "NOT_REGULAR", NOT_REGULAR)
                      || PyModule_AddIntConstant(m, "LARGE", LARGE) || PyModule_AddIntConstant(m, "GREW", GREW)
                      || PyModule_AddIntConstant(m, "CHANGED", CHANGED))) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
