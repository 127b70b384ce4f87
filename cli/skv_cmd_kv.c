/*
 * skv_cmd_kv.c - the single-key commands: put, get and rm.
 *
 * Values stream between a file (or stdin/stdout) and the router without
 * being held in memory.  `get -o FILE` writes to a temporary file beside
 * FILE and renames it only once the whole value has arrived, so a failed
 * or interrupted download never leaves a truncated FILE behind (nor
 * destroys the previous one).
 *
 * Integrity (RFC 9530, SHA-256): `put` of a file sends its Content-Digest,
 * computed in a first pass over the file, so that the router and storaged
 * refuse (400) a value damaged on the way; from a pipe the digest cannot
 * come first, so the value is hashed as it is sent and checked against the
 * answer's Repr-Digest when it carries one.  `get` hashes the value as it
 * arrives and checks it against the answer's Repr-Digest: a mismatch is an
 * error (exit 3) and `-o FILE` is left untouched.  A transfer that breaks
 * is an error too (exit 3); nothing is retried or resumed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "skv_cli.h"
#include "skv_digest.h"
#include "skv_http.h"
#include "skv_keyarg.h"

int
skv_cmd_put(const skv_opts_t *opts, int argc, char **argv)
{
    skv_keyarg_t key;
    skv_req_t    req;
    struct stat  st;
    char         path[SKV_KEYARG_TARGET_MAX];
    char         ctype[512];
    char         digest[SKV_DIGEST_FIELD_MAX + 32];
    char         field[SKV_DIGEST_FIELD_MAX];
    unsigned char sha[SKV_SHA256_LEN];
    const char  *file;
    FILE        *in;
    curl_off_t   size = -1;
    int          rc, checked = 0;

    if (argc < 1 || argc > 2) {
        return skv_usage_error("put takes KEY and an optional FILE");
    }
    rc = skv_keyarg_parse(argv[0], opts->keyfmt, 0, &key);
    if (rc != SKV_EXIT_OK) {
        return rc;
    }
    if (opts->content_type != NULL
        && (strlen(opts->content_type) > 255
            || strpbrk(opts->content_type, "\r\n") != NULL)) {
        return skv_usage_error("content type must be one line of at most "
                               "255 bytes");
    }

    file = argc == 2 ? argv[1] : "-";
    if (strcmp(file, "-") == 0) {
        in = stdin;
    } else {
        in = fopen(file, "rb");
        if (in == NULL) {
            fprintf(stderr, "skv: cannot open %s: %s\n", file,
                    strerror(errno));
            return SKV_EXIT_SERVER;
        }
    }

    /* A known size goes out as Content-Length, which lets the router
     * refuse a value that is too large before it is sent; a pipe's size is
     * unknown and goes out chunked. */
    if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode)) {
        off_t pos = ftello(in);

        size = (curl_off_t) (st.st_size - (pos > 0 ? pos : 0));
    }

    skv_keyarg_target(&key, path, sizeof(path));
    rc = skv_req_init(&req, opts, "PUT", path);
    if (rc == SKV_EXIT_OK && size >= 0) {
        if (skv_sha256_file(in, sha) != 0) {
            fprintf(stderr, "skv: reading %s: %s\n", file, strerror(errno));
            rc = SKV_EXIT_SERVER;
        } else {
            skv_digest_field(sha, field);
            snprintf(digest, sizeof(digest), "Content-Digest: %s", field);
            if (skv_req_header(&req, digest) != 0) {
                fprintf(stderr, "skv: out of memory\n");
                rc = SKV_EXIT_SERVER;
            }
        }
    } else if (rc == SKV_EXIT_OK && skv_req_hash(&req) != 0) {
        fprintf(stderr, "skv: out of memory\n");
        rc = SKV_EXIT_SERVER;
    }
    if (rc == SKV_EXIT_OK) {
        skv_req_upload(&req, in, size);
        if (opts->content_type != NULL) {
            snprintf(ctype, sizeof(ctype), "Content-Type: %s",
                     opts->content_type);
            if (skv_req_header(&req, ctype) != 0) {
                fprintf(stderr, "skv: out of memory\n");
                rc = SKV_EXIT_SERVER;
            }
        }
    }
    if (rc == SKV_EXIT_OK) {
        if (skv_req_perform(&req) != 0 || req.status < 200
            || req.status >= 300) {
            rc = skv_req_fail(&req);
        } else {
            rc = skv_req_check_digest(&req, &checked);
        }
        if (rc == SKV_EXIT_OK && opts->verbose) {
            fprintf(stderr, "skv: stored %s, version %s%s\n", path,
                    req.etag[0] ? req.etag : "(no ETag)",
                    size >= 0 ? ", Content-Digest sent"
                    : checked ? ", Repr-Digest checked" : "");
        }
    }

    skv_req_free(&req);
    if (in != stdin) {
        fclose(in);
    }
    return rc;
}

/*
 * Where `get` writes.  A regular (or not yet existing) file is replaced
 * atomically through a temporary file; anything else (a terminal, a pipe,
 * /dev/null) is written in place.
 */
typedef struct {
    const char *path;
    char       *tmp;
    FILE       *f;
} output_t;

static int
output_open(output_t *out, const char *path)
{
    struct stat st;
    mode_t      mask;
    int         fd;

    out->path = path;
    out->tmp = NULL;
    out->f = NULL;

    if (path == NULL || strcmp(path, "-") == 0) {
        out->f = stdout;
        return 0;
    }

    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        out->f = fopen(path, "wb");
        if (out->f == NULL) {
            fprintf(stderr, "skv: cannot open %s: %s\n", path,
                    strerror(errno));
            return -1;
        }
        return 0;
    }

    if (asprintf(&out->tmp, "%s.skv-XXXXXX", path) < 0) {
        out->tmp = NULL;
        fprintf(stderr, "skv: out of memory\n");
        return -1;
    }
    fd = mkstemp(out->tmp);
    if (fd < 0) {
        fprintf(stderr, "skv: cannot create a file beside %s: %s\n", path,
                strerror(errno));
        free(out->tmp);
        out->tmp = NULL;
        return -1;
    }
    /* mkstemp makes it 0600; give the file the mode open(2) would. */
    mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0 || (out->f = fdopen(fd, "wb")) == NULL) {
        fprintf(stderr, "skv: cannot prepare %s: %s\n", out->tmp,
                strerror(errno));
        close(fd);
        unlink(out->tmp);
        free(out->tmp);
        out->tmp = NULL;
        return -1;
    }
    return 0;
}

/* Finish the output: keep it when ok, else throw the partial copy away.
 * Returns 0, or -1 (after printing why) when keeping it failed. */
static int
output_close(output_t *out, int ok)
{
    int rc = 0;

    if (out->f == NULL || out->f == stdout) {
        if (out->f == stdout && fflush(stdout) != 0) {
            fprintf(stderr, "skv: writing the output: %s\n",
                    strerror(errno));
            return -1;
        }
        return 0;
    }

    if (fclose(out->f) != 0 && ok) {
        fprintf(stderr, "skv: writing %s: %s\n", out->path, strerror(errno));
        ok = 0;
        rc = -1;
    }
    out->f = NULL;

    if (out->tmp != NULL) {
        if (ok && rename(out->tmp, out->path) != 0) {
            fprintf(stderr, "skv: cannot rename %s to %s: %s\n", out->tmp,
                    out->path, strerror(errno));
            ok = 0;
            rc = -1;
        }
        if (!ok) {
            unlink(out->tmp);
        }
        free(out->tmp);
        out->tmp = NULL;
    }
    return rc;
}

int
skv_cmd_get(const skv_opts_t *opts, int argc, char **argv)
{
    skv_keyarg_t key;
    skv_req_t    req;
    output_t     out;
    char         path[SKV_KEYARG_TARGET_MAX];
    int          rc, checked = 0;

    if (argc != 1) {
        return skv_usage_error("get takes exactly one KEY");
    }
    rc = skv_keyarg_parse(argv[0], opts->keyfmt, 0, &key);
    if (rc != SKV_EXIT_OK) {
        return rc;
    }
    if (output_open(&out, opts->output) != 0) {
        return SKV_EXIT_SERVER;
    }

    skv_keyarg_target(&key, path, sizeof(path));
    rc = skv_req_init(&req, opts, "GET", path);
    if (rc == SKV_EXIT_OK) {
        skv_req_sink(&req, out.f);
        if (skv_req_hash(&req) != 0) {
            fprintf(stderr, "skv: out of memory\n");
            rc = SKV_EXIT_SERVER;
        } else if (skv_req_perform(&req) != 0 || req.status != 200) {
            rc = skv_req_fail(&req);
        } else {
            rc = skv_req_check_digest(&req, &checked);
            if (rc != SKV_EXIT_OK && out.tmp == NULL) {
                fprintf(stderr, "skv: the bytes written to the output "
                        "are not the stored value\n");
            }
        }
        if (rc == SKV_EXIT_OK && opts->verbose) {
            fprintf(stderr, "skv: got %s, version %s, %s\n", path,
                    req.etag[0] ? req.etag : "(no ETag)",
                    checked ? "Repr-Digest checked"
                    : "no Repr-Digest to check");
        }
    }
    skv_req_free(&req);

    if (output_close(&out, rc == SKV_EXIT_OK) != 0) {
        rc = SKV_EXIT_SERVER;
    }
    return rc;
}

int
skv_cmd_rm(const skv_opts_t *opts, int argc, char **argv)
{
    skv_keyarg_t key;
    skv_req_t    req;
    char         path[SKV_KEYARG_TARGET_MAX];
    int          rc;

    if (argc != 1) {
        return skv_usage_error("rm takes exactly one KEY");
    }
    rc = skv_keyarg_parse(argv[0], opts->keyfmt, 0, &key);
    if (rc != SKV_EXIT_OK) {
        return rc;
    }

    skv_keyarg_target(&key, path, sizeof(path));
    rc = skv_req_init(&req, opts, "DELETE", path);
    if (rc == SKV_EXIT_OK) {
        if (skv_req_perform(&req) != 0 || req.status < 200
            || req.status >= 300) {
            rc = skv_req_fail(&req);
        }
    }
    skv_req_free(&req);
    return rc;
}
