/*
 * ngx_http_simplekv_clock.c - the version clock that stamps every write.
 *
 * All workers of one nginx share a single hybrid logical clock in the
 * shared zone, under one origin id: versions from one router then follow
 * the order in which its workers issued them, which lets a write that a
 * newer write from the same router overtook on a replica (409 with the same
 * origin) count that replica as holding it (skv_decide_write).  Where
 * 64-bit atomics are missing, each worker keeps its own clock and origin.
 *
 * A version a replica reports is adopted (so the next write outranks it)
 * only if its time part is at most simplekv_max_clock_skew ahead of this
 * machine's clock: one planted or corrupt version must not drag every
 * router's clock into the future (nor wrap it).
 */

#include "ngx_http_simplekv_shm.h"


static skv_clock_t    ngx_http_simplekv_local_clock;
static ngx_atomic_t  *ngx_http_simplekv_shared_hlc;


/* Runs in each worker at start, after the zone is mapped. */
void
ngx_http_simplekv_clock_init(ngx_cycle_t *cycle,
    ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_http_simplekv_shm_t  *sh;

    skv_clock_init(&ngx_http_simplekv_local_clock, skv_origin_random());
    ngx_http_simplekv_shared_hlc = NULL;

#if (NGX_PTR_SIZE == 8)
    sh = ngx_http_simplekv_shm(mcf);

    if (sh != NULL) {
        ngx_http_simplekv_shared_hlc = &sh->clock_last_hlc;
        ngx_http_simplekv_local_clock.origin = sh->clock_origin;
    }
#else
    (void) sh;
    (void) mcf;
#endif
}


/* This router's origin: the one every version it makes carries. */
uint64_t
ngx_http_simplekv_clock_origin(void)
{
    return ngx_http_simplekv_local_clock.origin;
}


skv_version_t
ngx_http_simplekv_next_version(void)
{
    uint64_t        now;
    skv_version_t   v;
    ngx_atomic_t   *hlc, last;

    now = skv_clock_now_ms();
    hlc = ngx_http_simplekv_shared_hlc;

    if (hlc == NULL) {
        return skv_clock_next(&ngx_http_simplekv_local_clock, now);
    }

    do {
        last = *hlc;
        v.hlc = skv_hlc_next(last, now);
    } while (!ngx_atomic_cmp_set(hlc, last, v.hlc));

    v.origin = ngx_http_simplekv_local_clock.origin;

    return v;
}


/* NGX_DECLINED: v is too far ahead to be adopted (warned and counted). */
ngx_int_t
ngx_http_simplekv_observe_version(const skv_version_t *v,
    ngx_http_simplekv_main_conf_t *mcf, ngx_log_t *log, ngx_str_t *node)
{
    ngx_atomic_t             *hlc, last;
    ngx_http_simplekv_shm_t  *sh;

    if (skv_version_is_zero(v)) {
        return NGX_OK;
    }

    if (skv_version_too_far_ahead(v, skv_clock_now_ms(),
                                  mcf->max_clock_skew))
    {
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "simplekv: node \"%V\" holds a version %uL ms ahead "
                      "of this router's clock, more than "
                      "simplekv_max_clock_skew: not adopted",
                      node, skv_version_ms(v) - skv_clock_now_ms());

        sh = ngx_http_simplekv_shm(mcf);
        if (sh) {
            (void) ngx_atomic_fetch_add(&sh->clock_refused, 1);
        }

        return NGX_DECLINED;
    }

    hlc = ngx_http_simplekv_shared_hlc;

    if (hlc == NULL) {
        skv_clock_observe(&ngx_http_simplekv_local_clock, v);
        return NGX_OK;
    }

    do {
        last = *hlc;

        if (v->hlc <= last) {
            return NGX_OK;
        }

    } while (!ngx_atomic_cmp_set(hlc, last, v->hlc));

    return NGX_OK;
}
