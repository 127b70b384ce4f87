/*
 * ngx_http_simplekv_shm.c - the router's shared memory zone: the version
 * clock, the circuit breaker and the counters, shared by all workers.
 *
 * Membership changes are made by `nginx -s reload`, and workers of the old
 * configuration keep serving their requests for a while after it.  nginx
 * reuses a zone across a reload when its size is unchanged, so the zone
 * has one fixed layout, the same for every configuration: a block of
 * NGX_HTTP_SIMPLEKV_SHM_NODES node slots (and as many namespace slots as
 * NGX_HTTP_SIMPLEKV_SHM_NAMESPACES), allocated once and never freed
 * or moved.  A node keeps its slot by name for the life of the zone; each
 * configuration resolves its own nodes to slots when it is loaded (in the
 * master, before its workers start) and stores the pointers in its own
 * main conf.  A worker of any generation therefore only ever touches the
 * slots of its own nodes and the fixed fields, all inside one block that
 * outlives it.
 */

#include "ngx_http_simplekv_shm.h"


static ngx_int_t ngx_http_simplekv_shm_init(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_simplekv_shm_t *ngx_http_simplekv_shm_create(
    ngx_slab_pool_t *shpool);
static void ngx_http_simplekv_shm_resolve(ngx_http_simplekv_shm_t *sh,
    ngx_http_simplekv_main_conf_t *mcf, ngx_log_t *log);
static void ngx_http_simplekv_shm_resolve_ns(ngx_http_simplekv_shm_t *sh,
    ngx_http_simplekv_main_conf_t *mcf, ngx_log_t *log);


static ngx_str_t  ngx_http_simplekv_zone_name = ngx_string("simplekv");


ngx_int_t
ngx_http_simplekv_shm_add(ngx_conf_t *cf, ngx_http_simplekv_main_conf_t *mcf)
{
    size_t  size;

    /*
     * Room for two blocks (a module of another layout may have left one
     * in a zone of the same size: it cannot be freed while its workers
     * run) and the slab allocator's own pages.
     */
    size = 2 * ngx_align(sizeof(ngx_http_simplekv_shm_t), ngx_pagesize)
           + 16 * ngx_pagesize;

    mcf->shm_zone = ngx_shared_memory_add(cf, &ngx_http_simplekv_zone_name,
                                          size, &ngx_http_simplekv_module);
    if (mcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    mcf->shm_zone->init = ngx_http_simplekv_shm_init;
    mcf->shm_zone->data = mcf;

    return NGX_OK;
}


static ngx_int_t
ngx_http_simplekv_shm_init(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t                *shpool;
    ngx_http_simplekv_shm_t        *sh;
    ngx_http_simplekv_main_conf_t  *mcf;

    mcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    sh = shpool->data;

    if (sh == NULL || sh->magic != NGX_HTTP_SIMPLEKV_SHM_MAGIC) {
        sh = ngx_http_simplekv_shm_create(shpool);
        if (sh == NULL) {
            return NGX_ERROR;
        }

        shpool->data = sh;
    }

    ngx_http_simplekv_shm_resolve(sh, mcf, shm_zone->shm.log);
    ngx_http_simplekv_shm_resolve_ns(sh, mcf, shm_zone->shm.log);

    return NGX_OK;
}


static ngx_http_simplekv_shm_t *
ngx_http_simplekv_shm_create(ngx_slab_pool_t *shpool)
{
    ngx_http_simplekv_shm_t  *sh;

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_simplekv_shm_t));
    if (sh == NULL) {
        return NULL;
    }

    sh->magic = NGX_HTTP_SIMPLEKV_SHM_MAGIC;
    sh->clock_origin = skv_origin_random();

    return sh;
}


/* Give each node of this configuration its slot, by name. */
static void
ngx_http_simplekv_shm_resolve(ngx_http_simplekv_shm_t *sh,
    ngx_http_simplekv_main_conf_t *mcf, ngx_log_t *log)
{
    ngx_uint_t                     i, k;
    ngx_http_simplekv_node_t      *nodes;
    ngx_http_simplekv_shm_node_t  *slot;

    nodes = mcf->nodes.elts;

    for (i = 0; i < mcf->nodes.nelts; i++) {
        nodes[i].shm = NULL;

        for (k = 0; k < sh->nslots; k++) {
            slot = &sh->slots[k];

            if (slot->name_len == nodes[i].name.len
                && ngx_memcmp(slot->name, nodes[i].name.data,
                              slot->name_len) == 0)
            {
                nodes[i].shm = slot;
                break;
            }
        }

        if (nodes[i].shm) {
            continue;
        }

        if (sh->nslots == NGX_HTTP_SIMPLEKV_SHM_NODES
            || nodes[i].name.len > NGX_HTTP_SIMPLEKV_SHM_NAME)
        {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "simplekv: no counters or circuit breaker for "
                          "node \"%V\" until nginx restarts: the shared "
                          "zone has no free slot", &nodes[i].name);
            continue;
        }

        /* a fresh slot: written in full before any worker can see it */
        slot = &sh->slots[sh->nslots];
        ngx_memcpy(slot->name, nodes[i].name.data, nodes[i].name.len);
        slot->name_len = nodes[i].name.len;
        slot->up = 1;

        ngx_memory_barrier();
        sh->nslots++;

        nodes[i].shm = slot;
    }
}


/* Give each namespace of this configuration its slot, by name. */
static void
ngx_http_simplekv_shm_resolve_ns(ngx_http_simplekv_shm_t *sh,
    ngx_http_simplekv_main_conf_t *mcf, ngx_log_t *log)
{
    ngx_uint_t                      i, k;
    ngx_http_simplekv_shm_ns_t     *slot;
    ngx_http_simplekv_namespace_t  *ns;

    ns = mcf->namespaces.elts;

    for (i = 0; i < mcf->namespaces.nelts; i++) {
        ns[i].shm = NULL;

        for (k = 0; k < sh->nns; k++) {
            slot = &sh->ns_slots[k];

            if (slot->name_len == ns[i].name.len
                && ngx_memcmp(slot->name, ns[i].name.data, slot->name_len)
                   == 0)
            {
                ns[i].shm = slot;
                break;
            }
        }

        if (ns[i].shm) {
            continue;
        }

        if (sh->nns == NGX_HTTP_SIMPLEKV_SHM_NAMESPACES) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "simplekv: no counters for namespace \"%V\" until "
                          "nginx restarts: the shared zone has no free "
                          "namespace slot", &ns[i].name);
            continue;
        }

        slot = &sh->ns_slots[sh->nns];
        ngx_memcpy(slot->name, ns[i].name.data, ns[i].name.len);
        slot->name_len = ns[i].name.len;

        ngx_memory_barrier();
        sh->nns++;

        ns[i].shm = slot;
    }
}


ngx_http_simplekv_shm_t *
ngx_http_simplekv_shm(ngx_http_simplekv_main_conf_t *mcf)
{
    ngx_slab_pool_t  *shpool;

    if (mcf == NULL || mcf->shm_zone == NULL
        || mcf->shm_zone->shm.addr == NULL)
    {
        return NULL;
    }

    shpool = (ngx_slab_pool_t *) mcf->shm_zone->shm.addr;

    return shpool->data;
}
