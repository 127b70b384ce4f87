# tests/deploy/build.mk - deployment: Debian packages, containers, token
# rotation.  Loopback ports 26000-26999 (test_token_rotation.py here
# 26100-26199, SKV_DEPLOY_PORT_BASE moves them; the packages' container
# 26700-26799 inside its own network namespace; the compose router
# published on 127.0.0.1:26880, SKV_CONTAINERS_PORT moves it).
#
#   make deb              build/deb/*.deb: libnginx-mod-http-simplekv,
#                         simplekv-storaged, simplekv-client (dpkg-buildpackage
#                         on a copy of the tree), then lintian
#   make test-deb         the packages installed in a clean debian:12
#                         container (podman): storaged and nginx from their
#                         installed paths, the seed's curl examples,
#                         systemd-analyze verify of the unit
#   make test-containers  docker/: both images built with podman, the compose
#                         cluster up, requests, a node stopped and started,
#                         down and up (the volumes keep the data), down -v
#   make test-deploy      the man pages against --help, and a token rotation
#                         on a live cluster under load (no containers)
#
# test-deb and test-containers run util/containers-setup.sh first (root:
# it installs podman and makes the debian:12 base images with debootstrap).

# the version of the newest debian/changelog entry: "simplekv (0.1.0) ..."
DEB_VERSION := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
DEB_DIR     := $(BUILD)/deb
DEB_TREE    := $(DEB_DIR)/simplekv-$(DEB_VERSION)
DEB_ARCH    := $(shell dpkg --print-architecture 2>/dev/null)
DEB_CHANGES := $(DEB_DIR)/simplekv_$(DEB_VERSION)_$(DEB_ARCH).changes
# Everything a package is made of: a change to any of these rebuilds them.
DEB_INPUTS  := $(shell find debian core storaged cli ngx_simplekv_module conf \
                 docs/man docs/deploying.md docs/router.md config Makefile \
                 -type f 2>/dev/null) $(wildcard */build.mk)

TEST_TARGETS += test-deploy test-deb test-containers

.PHONY: deb test-deb test-containers test-deploy containers-setup

deb: $(DEB_CHANGES)

# dpkg-buildpackage writes its results next to the tree it builds, so it
# builds a copy under build/deb (without build/, run/ and .git), and the
# .debs land in build/deb.
$(DEB_CHANGES): $(DEB_INPUTS)
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_TREE)
	tar -c --exclude=./build --exclude=./run --exclude=./.git \
	    --exclude='./t/servroot*' --exclude=__pycache__ . \
	    | tar -x -C $(DEB_TREE)
	cd $(DEB_TREE) && dpkg-buildpackage -b -us -uc -j2 \
	    > ../dpkg-buildpackage.log 2>&1 \
	    || { tail -40 ../dpkg-buildpackage.log; exit 1; }
	lintian --info --display-info --pedantic $(DEB_CHANGES) \
	    | tee $(DEB_DIR)/lintian.txt
	@! grep -q '^[EW]:' $(DEB_DIR)/lintian.txt \
	    || { echo "lintian: errors or warnings above" >&2; rm -f $@; exit 1; }

containers-setup:
	@util/containers-setup.sh

test-deb: deb containers-setup
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/deploy/test_deb.py

test-containers: containers-setup $(CLI_BIN)
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/deploy/test_containers.py

test-deploy: $(CLI_BIN) $(BUILD)/storaged $(NGX_MODULE_SO)
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/deploy/test_manpages.py \
	    tests/deploy/test_token_rotation.py
