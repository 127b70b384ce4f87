/*
 * ngx_http_simplekv_module.c - the simplekv router's module definition:
 * its directives and what runs at postconfiguration and worker start.
 * (The replica location needs no variables: upstream.c writes each
 * replica request from the subrequest's own ctx.)
 */

#include "ngx_http_simplekv_module.h"


static ngx_int_t ngx_http_simplekv_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_simplekv_init_process(ngx_cycle_t *cycle);
static void ngx_http_simplekv_exit_process(ngx_cycle_t *cycle);


static char *ngx_http_simplekv_check_count(ngx_conf_t *cf, void *post,
    void *data);

static ngx_conf_post_t  ngx_http_simplekv_count_post = {
    ngx_http_simplekv_check_count
};


static ngx_conf_enum_t  ngx_http_simplekv_read_fanouts[] = {
    { ngx_string("all"), NGX_HTTP_SIMPLEKV_FANOUT_ALL },
    { ngx_string("quorum"), NGX_HTTP_SIMPLEKV_FANOUT_QUORUM },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_simplekv_commands[] = {

    { ngx_string("simplekv_node"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_simplekv_node,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("simplekv_token_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_simplekv_token_file,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("simplekv_epoch"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_simplekv_main_conf_t, epoch),
      NULL },

    { ngx_string("simplekv_max_clock_skew"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_simplekv_main_conf_t, max_clock_skew),
      NULL },

    { ngx_string("simplekv_namespace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_simplekv_namespace,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("simplekv_replica_location"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_simplekv_replica_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("simplekv_storage_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, storage_connect_timeout),
      NULL },

    { ngx_string("simplekv_storage_send_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, storage_send_timeout),
      NULL },

    { ngx_string("simplekv_storage_read_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, storage_read_timeout),
      NULL },

    { ngx_string("simplekv_storage_buffer_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, storage_buffer_size),
      NULL },

    { ngx_string("simplekv_error"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_simplekv_error_location,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("simplekv"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_simplekv,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("simplekv_replicas"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, replicas),
      &ngx_http_simplekv_count_post },

    { ngx_string("simplekv_write_quorum"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, write_quorum),
      &ngx_http_simplekv_count_post },

    { ngx_string("simplekv_read_quorum"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, read_quorum),
      &ngx_http_simplekv_count_post },

    { ngx_string("simplekv_max_value_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_off_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, max_value_size),
      NULL },

    { ngx_string("simplekv_stream_threshold"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, stream_threshold),
      NULL },

    { ngx_string("simplekv_replica_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, replica_timeout),
      NULL },

    { ngx_string("simplekv_straggler_grace"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, straggler_grace),
      NULL },

    { ngx_string("simplekv_read_fanout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, read_fanout),
      &ngx_http_simplekv_read_fanouts },

    { ngx_string("simplekv_read_hedge"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_simplekv_loc_conf_t, read_hedge),
      NULL },

    { ngx_string("simplekv_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_simplekv_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("simplekv_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_simplekv_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("simplekv_dashboard"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_simplekv_dashboard,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_simplekv_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_simplekv_postconfiguration,   /* postconfiguration */

    ngx_http_simplekv_create_main_conf,    /* create main configuration */
    ngx_http_simplekv_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_simplekv_create_loc_conf,     /* create location configuration */
    ngx_http_simplekv_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_simplekv_module = {
    NGX_MODULE_V1,
    &ngx_http_simplekv_module_ctx,         /* module context */
    ngx_http_simplekv_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_simplekv_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_simplekv_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_simplekv_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt            *h;
    ngx_http_core_main_conf_t      *cmcf;
    ngx_http_simplekv_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_simplekv_module);

    if (mcf->nodes.nelts == 0) {
        return NGX_OK;
    }

    if (ngx_http_simplekv_init_body_filter() != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_simplekv_init_replica_filter() != NGX_OK) {
        return NGX_ERROR;
    }

    /* upstream blocks may follow simplekv_node, and locations are merged
     * only now */
    if (ngx_http_simplekv_check_conf(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_simplekv_shm_add(cf, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_simplekv_log_handler;

    return NGX_OK;
}


/* N, W and R: 1..SKV_PLACE_MAX. */
static char *
ngx_http_simplekv_check_count(ngx_conf_t *cf, void *post, void *data)
{
    ngx_uint_t  *np = data;

    if (*np == 0) {
        return "must be at least 1: a quorum or replica count of 0 "
               "promises nothing";
    }

    if (*np > SKV_PLACE_MAX) {
        return "must be at most 64";
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_simplekv_init_process(ngx_cycle_t *cycle)
{
    ngx_http_simplekv_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_simplekv_module);

    ngx_http_simplekv_clock_init(cycle, mcf);

    if (ngx_http_simplekv_probe_init(cycle, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_simplekv_epoch_register(mcf);
}


static void
ngx_http_simplekv_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_simplekv_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_simplekv_module);

    ngx_http_simplekv_probe_exit(cycle);
    ngx_http_simplekv_epoch_unregister(mcf);
}
