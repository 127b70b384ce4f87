/*
 * legacy_index.c - a test helper for tests/storaged: reads and writes a
 * stopped storaged's data directory through the Berkeley DB API.
 *
 *   legacy_index put DIR KEY VERSION VALUE   store KEY as the storaged of
 *       before the version history did: the record and a 25-byte index
 *       entry (flags, hlc, origin, value length)
 *   legacy_index delete DIR KEY VERSION      the same for a tombstone
 *   legacy_index size DIR KEY                print the size in bytes of
 *       KEY's index entry (0 when there is none)
 *   legacy_index format2 DIR KEY             rewrite KEY's index entry
 *       (format 3) as the storaged of before the origin maxima did:
 *       format 2, without them
 *
 * The environment is opened as storaged opens it (with recovery, private
 * regions); storaged must not be running on DIR.  Exits 0, or 1 with a
 * message on stderr.
 */
#include <db.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "skv_bytes.h"
#include "skv_record.h"
#include "skv_version.h"

typedef struct {
    DB_ENV *env;
    DB     *records;
    DB     *index;
} dbs_t;

static int
fail(const char *what, int ret)
{
    fprintf(stderr, "legacy_index: %s: %s\n", what, db_strerror(ret));
    return 1;
}

static int
open_all(dbs_t *d, const char *dir)
{
    int ret;

    memset(d, 0, sizeof(*d));
    ret = db_env_create(&d->env, 0);
    if (ret == 0) {
        ret = d->env->open(d->env, dir,
                           DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK
                           | DB_INIT_LOG | DB_INIT_MPOOL | DB_RECOVER
                           | DB_PRIVATE, 0);
    }
    if (ret == 0) {
        ret = db_create(&d->records, d->env, 0);
    }
    if (ret == 0) {
        ret = d->records->open(d->records, NULL, "records.db", NULL,
                               DB_HASH, DB_CREATE | DB_AUTO_COMMIT, 0644);
    }
    if (ret == 0) {
        ret = db_create(&d->index, d->env, 0);
    }
    if (ret == 0) {
        ret = d->index->open(d->index, NULL, "index.db", NULL, DB_BTREE,
                             DB_CREATE | DB_AUTO_COMMIT, 0644);
    }
    return ret;
}

static void
close_all(dbs_t *d)
{
    if (d->env != NULL) {
        d->env->txn_checkpoint(d->env, 0, 0, DB_FORCE);
    }
    if (d->index != NULL) {
        d->index->close(d->index, 0);
    }
    if (d->records != NULL) {
        d->records->close(d->records, 0);
    }
    if (d->env != NULL) {
        d->env->close(d->env, 0);
    }
}

static void
set_dbt(DBT *t, const void *data, size_t size)
{
    memset(t, 0, sizeof(*t));
    t->data = (void *) data;
    t->size = (u_int32_t) size;
}

/* The record and the 25-byte index entry, in one transaction. */
static int
put_legacy(dbs_t *d, const char *key, const skv_version_t *v,
           const char *value, bool tombstone)
{
    unsigned char  entry[25], *rec;
    skv_record_t   r;
    size_t         hlen, vlen = tombstone ? 0 : strlen(value);
    DB_TXN        *txn;
    DBT            k, data;
    int            ret;

    memset(&r, 0, sizeof(r));
    r.version = *v;
    r.flags = tombstone ? SKV_RECORD_TOMBSTONE : 0;
    rec = malloc(SKV_RECORD_HEADER_MAX + vlen);
    if (rec == NULL
        || skv_record_encode_header(&r, rec, SKV_RECORD_HEADER_MAX, &hlen)
           != SKV_OK)
    {
        free(rec);
        fprintf(stderr, "legacy_index: encoding the record\n");
        return 1;
    }
    memcpy(rec + hlen, value, vlen);
    entry[0] = tombstone ? SKV_RECORD_TOMBSTONE : 0;
    skv_put_be64(entry + 1, v->hlc);
    skv_put_be64(entry + 9, v->origin);
    skv_put_be64(entry + 17, vlen);

    set_dbt(&k, key, strlen(key));
    ret = d->env->txn_begin(d->env, NULL, &txn, 0);
    if (ret == 0) {
        set_dbt(&data, rec, hlen + vlen);
        ret = d->records->put(d->records, txn, &k, &data, 0);
        set_dbt(&data, entry, sizeof(entry));
        if (ret == 0) {
            ret = d->index->put(d->index, txn, &k, &data, 0);
        }
        if (ret == 0) {
            ret = txn->commit(txn, 0);
        } else {
            txn->abort(txn);
        }
    }
    free(rec);
    return ret == 0 ? 0 : fail("writing", ret);
}

static int
print_size(dbs_t *d, const char *key)
{
    DBT k, data;
    int ret;

    set_dbt(&k, key, strlen(key));
    memset(&data, 0, sizeof(data));
    data.flags = DB_DBT_MALLOC;
    ret = d->index->get(d->index, NULL, &k, &data, 0);
    if (ret != 0 && ret != DB_NOTFOUND) {
        return fail("reading", ret);
    }
    printf("%u\n", ret == 0 ? data.size : 0);
    free(data.data);
    return 0;
}

/* Format 3 -> 2: byte 0 to 2, the origin flags (0x08, 0x10) cleared, the
 * origin maxima after the history cut off (storaged/store_int.h). */
static int
make_format2(dbs_t *d, const char *key)
{
    unsigned char  buf[512];
    DBT            k, data;
    size_t         n;
    int            ret;

    set_dbt(&k, key, strlen(key));
    memset(&data, 0, sizeof(data));
    data.data = buf;
    data.ulen = sizeof(buf);
    data.flags = DB_DBT_USERMEM;
    ret = d->index->get(d->index, NULL, &k, &data, 0);
    if (ret != 0) {
        return fail("reading", ret);
    }
    if (data.size < 28 || buf[0] != 3) {
        fprintf(stderr, "legacy_index: %s: not a format 3 entry\n", key);
        return 1;
    }
    n = buf[26];
    buf[0] = 2;
    buf[1] &= (unsigned char) ~0x18u;
    set_dbt(&data, buf, 27 + 16 * n);
    ret = d->index->put(d->index, NULL, &k, &data, 0);
    return ret == 0 ? 0 : fail("writing", ret);
}

static int
usage(void)
{
    fprintf(stderr, "usage: legacy_index put DIR KEY VERSION VALUE\n"
                    "       legacy_index delete DIR KEY VERSION\n"
                    "       legacy_index size DIR KEY\n"
                    "       legacy_index format2 DIR KEY\n");
    return 1;
}

int
main(int argc, char **argv)
{
    skv_version_t v;
    dbs_t         d;
    int           ret, rc;
    bool          put, del, f2;

    put = argc == 6 && strcmp(argv[1], "put") == 0;
    del = argc == 5 && strcmp(argv[1], "delete") == 0;
    f2 = argc == 4 && strcmp(argv[1], "format2") == 0;
    if (!put && !del && !f2 && !(argc == 4 && strcmp(argv[1], "size") == 0))
    {
        return usage();
    }
    if ((put || del)
        && skv_version_parse(argv[4], strlen(argv[4]), &v) != SKV_OK)
    {
        fprintf(stderr, "legacy_index: bad version %s\n", argv[4]);
        return 1;
    }
    ret = open_all(&d, argv[2]);
    if (ret != 0) {
        close_all(&d);
        return fail(argv[2], ret);
    }
    if (put || del) {
        rc = put_legacy(&d, argv[3], &v, put ? argv[5] : "", del);
    } else if (f2) {
        rc = make_format2(&d, argv[3]);
    } else {
        rc = print_size(&d, argv[3]);
    }
    close_all(&d);
    return rc;
}
