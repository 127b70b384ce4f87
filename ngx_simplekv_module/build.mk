# ngx_simplekv_module/build.mk - builds the router as an nginx dynamic
# module against Debian's nginx-dev sources.
#
# The nginx source tree is copied once to build/nginx-src and configured with
# Debian's own flags (conf_flags: --with-compat above all, so the .so loads
# into /usr/sbin/nginx) plus --add-dynamic-module=<repo>.  configure runs
# again only when the top-level `config` changes; `make modules` then
# recompiles only what changed.

NGX_DEBIAN_SRC := /usr/share/nginx/src
NGX_SRC        := $(BUILD)/nginx-src
NGX_MODULE_SO  := $(BUILD)/ngx_http_simplekv_module.so
NGX_CC_OPT     := -g -O2 -fstack-protector-strong -Wformat \
                  -Werror=format-security -fPIC -Wdate-time \
                  -D_FORTIFY_SOURCE=2
NGX_LD_OPT     := -Wl,-z,relro -Wl,-z,now -fPIC
NGX_MODULE_SRCS := $(wildcard ngx_simplekv_module/*.c ngx_simplekv_module/*.h)

# `config` picks up core/*.c when configure runs: configure again when that
# set of files changes (the list file is rewritten only then).
NGX_SRC_LIST   := $(BUILD)/ngx-module-sources.txt
NGX_SRC_NAMES  := $(sort $(CORE_SRCS) $(wildcard ngx_simplekv_module/*.c))
$(shell mkdir -p $(BUILD) && echo '$(NGX_SRC_NAMES)' | cmp -s - $(NGX_SRC_LIST) \
        || echo '$(NGX_SRC_NAMES)' > $(NGX_SRC_LIST))

all: $(NGX_MODULE_SO)

$(NGX_SRC)/configure:
	@mkdir -p $(BUILD)
	rm -rf $(NGX_SRC).tmp
	cp -r $(NGX_DEBIAN_SRC) $(NGX_SRC).tmp
	mv $(NGX_SRC).tmp $(NGX_SRC)

$(NGX_SRC)/objs/Makefile: config $(NGX_SRC_LIST) $(NGX_SRC)/configure
	cd $(NGX_SRC) && flock ../.ngx-module.lock bash -c '. ./conf_flags && \
	    ./configure "$${NGX_CONF_FLAGS[@]}" \
	        --with-cc-opt="$(NGX_CC_OPT)" --with-ld-opt="$(NGX_LD_OPT)" \
	        --add-dynamic-module="$(CURDIR)"' > configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }

# Several `make` runs may share this tree (test suites start with `make
# all`): one at a time compiles and links, or a half-written object gets
# linked into the module.
NGX_LOCK := flock $(BUILD)/.ngx-module.lock

$(NGX_MODULE_SO): $(NGX_SRC)/objs/Makefile $(NGX_MODULE_SRCS) $(CORE_SRCS) $(CORE_HDRS)
	$(NGX_LOCK) sh -c '$(MAKE) -C $(NGX_SRC) -f objs/Makefile modules \
	    && cp $(NGX_SRC)/objs/ngx_http_simplekv_module.so $@.tmp \
	    && mv -f $@.tmp $@'

.PHONY: module
module: $(NGX_MODULE_SO)

# The dashboard's page is compiled in from a committed header (see
# ngx_http_simplekv_dashboard.c), which nginx's `config` builds use as it
# is: after editing a page file, regenerate the header
# (ngx_simplekv_module/dashboard/gen-page-header.sh) and commit both.  The
# build refuses a stale header rather than rewriting a committed file.
NGX_DASHBOARD_HDR   := ngx_simplekv_module/ngx_http_simplekv_dashboard_page.h
NGX_DASHBOARD_GEN   := ngx_simplekv_module/dashboard/gen-page-header.sh
NGX_DASHBOARD_FILES := $(wildcard ngx_simplekv_module/dashboard/dashboard.*)

$(NGX_DASHBOARD_HDR): $(NGX_DASHBOARD_FILES) $(NGX_DASHBOARD_GEN)
	$(NGX_DASHBOARD_GEN) --check
	@touch $@
