# tests/dashboard/build.mk - the router's dashboard (simplekv_dashboard) in
# headless Chromium against a live cluster (tests/dashboard/test_dashboard.py):
# every node up, one killed shows down, back up; a screenshot goes to
# build/dashboard-test.png.  First checks that the page's generated header
# is in sync with ngx_simplekv_module/dashboard/.  Loopback ports
# 19600-19609 (SKV_DASHBOARD_PORT_BASE moves them).
#
#   make test-dashboard         (builds the module and storaged first)

TEST_TARGETS += test-dashboard

.PHONY: test-dashboard
test-dashboard:
	ngx_simplekv_module/dashboard/gen-page-header.sh --check
	$(MAKE) --no-print-directory $(NGX_MODULE_SO) $(STORAGED_BIN)
	$(PYTHON) -m pytest -q tests/dashboard
