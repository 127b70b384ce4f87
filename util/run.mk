# util/run.mk - a local cluster in one command.
#
#   make run     build what is needed, then start 3 storaged
#                (127.0.0.1:7001-7003) and nginx with the module
#                (127.0.0.1:8080) under run/; only what is not already
#                running is started.  The nodes require the token in
#                run/token (random, made once), which nginx sends;
#                clients of the router need none
#   make stop    stop all of it
#   make add-node NAME=d PORT=7004   add a storage node to the running
#                cluster: transition, skv rebalance, final configuration,
#                skv cleanup (docs/membership.md)
#   make remove-node NAME=c          the reverse; the node is stopped
#                once it holds no keys
#
# The work is done by util/run-cluster.sh; nothing outside run/ is touched.

.PHONY: run stop run-status add-node remove-node

# deps first, as its own step: on a fresh machine the build needs them.
run: deps
	@$(MAKE) --no-print-directory $(BUILD)/storaged $(NGX_MODULE_SO) $(BUILD)/skv
	@util/run-cluster.sh start

stop:
	@util/run-cluster.sh stop

run-status:
	@util/run-cluster.sh status

add-node: $(BUILD)/skv
	@test -n "$(NAME)" -a -n "$(PORT)" || \
		{ echo "usage: make add-node NAME=d PORT=7004" >&2; exit 2; }
	@util/run-cluster.sh add "$(NAME)" "$(PORT)"

remove-node: $(BUILD)/skv
	@test -n "$(NAME)" || { echo "usage: make remove-node NAME=c" >&2; exit 2; }
	@util/run-cluster.sh remove "$(NAME)"
