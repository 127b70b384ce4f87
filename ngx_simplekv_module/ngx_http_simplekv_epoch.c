/*
 * ngx_http_simplekv_epoch.c - which configurations (epochs) still have
 * worker processes running.
 *
 * A membership change (docs/membership.md) may copy data only after a
 * barrier: every router runs the transition configuration and no request
 * of an older one can still be in flight.  After `nginx -s reload` the old
 * workers finish their requests before they exit, so "no worker of an
 * older epoch is alive" is that barrier.  Each worker registers its pid
 * and epoch in the shared zone when it starts and removes them when it
 * exits; the status page lists the epochs of the live ones (an entry whose
 * process died without exiting cleanly is found with kill(pid, 0) and
 * dropped).
 */

#include "ngx_http_simplekv_shm.h"


#define NGX_HTTP_SIMPLEKV_CLAIMING  ((ngx_atomic_uint_t) -1)


static ngx_int_t  ngx_http_simplekv_live_slot = -1;


ngx_int_t
ngx_http_simplekv_epoch_register(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_uint_t                k;
    ngx_http_simplekv_shm_t  *sh;

    sh = ngx_http_simplekv_shm(mcf);
    if (sh == NULL) {
        return NGX_OK;
    }

    for (k = 0; k < NGX_HTTP_SIMPLEKV_LIVE_MAX; k++) {
        if (sh->live_pid[k] != 0
            || !ngx_atomic_cmp_set(&sh->live_pid[k], 0,
                                   NGX_HTTP_SIMPLEKV_CLAIMING))
        {
            continue;
        }

        sh->live_epoch[k] = mcf->epoch;
        ngx_memory_barrier();
        sh->live_pid[k] = (ngx_atomic_uint_t) ngx_pid;

        ngx_http_simplekv_live_slot = (ngx_int_t) k;
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                  "simplekv: no free slot to register this worker's epoch: "
                  "the status page's live_epochs will miss it");

    return NGX_OK;
}


void
ngx_http_simplekv_epoch_unregister(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_http_simplekv_shm_t  *sh;

    sh = ngx_http_simplekv_shm(mcf);

    if (sh == NULL || ngx_http_simplekv_live_slot < 0) {
        return;
    }

    sh->live_pid[ngx_http_simplekv_live_slot] = 0;
    ngx_http_simplekv_live_slot = -1;
}


/* "live_epochs": {"<epoch>": <workers>, ...} */
u_char *
ngx_http_simplekv_epoch_json(u_char *p, ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_uint_t                k, j, n, first;
    ngx_pid_t                 pid;
    ngx_atomic_uint_t         epochs[NGX_HTTP_SIMPLEKV_LIVE_MAX];
    ngx_uint_t                counts[NGX_HTTP_SIMPLEKV_LIVE_MAX];
    ngx_http_simplekv_shm_t  *sh;

    sh = ngx_http_simplekv_shm(mcf);
    n = 0;

    for (k = 0; sh && k < NGX_HTTP_SIMPLEKV_LIVE_MAX; k++) {
        pid = (ngx_pid_t) sh->live_pid[k];

        if (pid == 0 || sh->live_pid[k] == NGX_HTTP_SIMPLEKV_CLAIMING) {
            continue;
        }

        if (kill(pid, 0) == -1 && ngx_errno == NGX_ESRCH) {
            /* a worker that died without exiting: not alive */
            (void) ngx_atomic_cmp_set(&sh->live_pid[k],
                                      (ngx_atomic_uint_t) pid, 0);
            continue;
        }

        for (j = 0; j < n && epochs[j] != sh->live_epoch[k]; j++) {
            /* void */
        }

        if (j == n) {
            epochs[n] = sh->live_epoch[k];
            counts[n++] = 0;
        }

        counts[j]++;
    }

    p = ngx_sprintf(p, "{");

    for (j = 0, first = 1; j < n; j++, first = 0) {
        p = ngx_sprintf(p, "%s\"%uA\": %ui", first ? "" : ", ", epochs[j],
                        counts[j]);
    }

    return ngx_sprintf(p, "}");
}
