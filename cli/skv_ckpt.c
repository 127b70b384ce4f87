/*
 * skv_ckpt.c - load, save and lock the checkpoint file (see skv_ckpt.h).
 */
#include "skv_ckpt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <jansson.h>

int
skv_ckpt_lock(const char *path)
{
    size_t n = strlen(path) + 8;
    char  *lock = malloc(n);
    int    fd;

    if (lock == NULL) {
        return -1;
    }
    snprintf(lock, n, "%s.lock", path);
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "skv: %s: %s\n", lock, strerror(errno));
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "skv: %s: another skv is using this checkpoint\n",
                path);
        close(fd);
        fd = -1;
    }
    free(lock);
    return fd;
}

static void
copy_str(char *dst, size_t cap, const json_t *v)
{
    const char *s = json_string_value(v);

    snprintf(dst, cap, "%s", s ? s : "");
}

int
skv_ckpt_load(const char *path, const char *command, const char *config,
              skv_ckpt_t *ck)
{
    json_error_t err;
    json_t      *root, *nodes, *v;
    const char  *name;

    memset(ck, 0, sizeof(*ck));
    if (access(path, F_OK) != 0) {
        return 1;
    }
    root = json_load_file(path, 0, &err);
    if (root == NULL) {
        fprintf(stderr, "skv: checkpoint %s: %s\n", path, err.text);
        return -1;
    }
    if (json_integer_value(json_object_get(root, "format"))
        != SKV_CKPT_FORMAT) {
        fprintf(stderr, "skv: checkpoint %s is of another format (an "
                        "older skv); starting from the beginning\n", path);
        json_decref(root);
        memset(ck, 0, sizeof(*ck));
        return 1;
    }
    copy_str(ck->config, sizeof(ck->config), json_object_get(root, "config"));
    copy_str(ck->ns, sizeof(ck->ns), json_object_get(root, "namespace"));
    copy_str(ck->holder, sizeof(ck->holder), json_object_get(root, "holder"));
    ck->complete = json_is_true(json_object_get(root, "complete"));
    ck->started_ms = (uint64_t) json_integer_value(
        json_object_get(root, "started_ms"));
    nodes = json_object_get(root, "nodes");
    json_object_foreach(nodes, name, v) {
        if (ck->n == SKV_TOPO_NODES_MAX) {
            break;
        }
        snprintf(ck->names[ck->n], SKV_TOPO_NAME_MAX, "%s", name);
        ck->scanned[ck->n++] = (uint64_t) json_integer_value(
            json_object_get(v, "scanned"));
        copy_str(ck->after, sizeof(ck->after), json_object_get(v, "after"));
    }
    name = json_string_value(json_object_get(root, "command"));
    if (name == NULL || strcmp(name, command) != 0
        || strcmp(ck->config, config) != 0 || ck->complete) {
        if (!ck->complete) {
            fprintf(stderr, "skv: checkpoint %s is of another command or "
                            "configuration; starting from the beginning\n",
                    path);
        }
        json_decref(root);
        return 1;
    }
    json_decref(root);
    return 0;
}

static json_t *
to_json(const char *command, const skv_ckpt_t *ck)
{
    json_t *nodes = json_object();

    for (size_t i = 0; i < ck->n; i++) {
        json_object_set_new(nodes, ck->names[i],
                            json_pack("{s:s,s:I}", "after", ck->after,
                                      "scanned",
                                      (json_int_t) ck->scanned[i]));
    }
    return json_pack("{s:i,s:s,s:s,s:s,s:b,s:I,s:s,s:o}", "format",
                     SKV_CKPT_FORMAT, "command", command, "config",
                     ck->config, "holder", ck->holder, "complete",
                     ck->complete, "started_ms", (json_int_t) ck->started_ms,
                     "namespace", ck->ns, "nodes", nodes);
}

int
skv_ckpt_save(const char *path, const char *command, const skv_ckpt_t *ck)
{
    size_t  n = strlen(path) + 8;
    char   *tmp = malloc(n), *text = NULL;
    json_t *root = to_json(command, ck);
    FILE   *f = NULL;
    int     rc = -1;

    if (tmp == NULL || root == NULL) {
        goto done;
    }
    snprintf(tmp, n, "%s.new", path);
    text = json_dumps(root, JSON_INDENT(1));
    f = fopen(tmp, "w");
    if (text == NULL || f == NULL || fputs(text, f) == EOF
        || fputc('\n', f) == EOF || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        goto done;
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto done;
    }
    f = NULL;
    rc = rename(tmp, path);
done:
    if (rc != 0) {
        fprintf(stderr, "skv: cannot write checkpoint %s: %s\n", path,
                strerror(errno));
    }
    if (f != NULL) {
        fclose(f);
    }
    free(text);
    free(tmp);
    json_decref(root);
    return rc;
}
