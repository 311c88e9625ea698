#!/bin/bash
# The checks of `make test-host`, run inside the guest by
# rt-host-checks.service: one `PASS name` or `FAIL name` line each on the
# serial console (a failure's output follows, indented with "  | "), then
# "RT-HOST done" and poweroff. Each manager runs at its default settings.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
only=$(cat /usr/local/lib/rt-host/only 2>/dev/null || true)
# HOST_CORE=1 (CI's run) leaves out these, each a manager's own plumbing
# around a path other checks take through rt (the classic builder beside
# BuildKit's and Podman's builds; docker commit/push/pull, Docker's image
# plumbing, whose runs are docker runs; Podman's volumes beside Docker's
# named volume): about 2 minutes of CI's budget under emulation. None sets
# up anything a later check uses; make test-host runs them.
core=$(cat /usr/local/lib/rt-host/core 2>/dev/null || echo 0)
EXTENDED="docker_classic_build_runs_on_rt docker_commit_push_pull_run podman_run_v_volume_persists"
RT=/usr/local/bin/rt
IMG=localhost/busybox
W=/tmp/rt-host
mkdir -p $W

say() { echo "$*" >/dev/ttyS0; }
fail() { echo "$*"; return 1; }
check() {
	local name=$1
	shift
	if [ -n "$only" ] && ! echo "$name" | grep -Eq "$only"; then
		return 0
	fi
	if [ "$core" = 1 ] && [[ " $EXTENDED " == *" $name "* ]]; then
		say "SKIP $name: not in CI's core (make test-host runs it)"
		return 0
	fi
	local out rc t0=$SECONDS
	out=$("$@" 2>&1)
	rc=$?
	# Each check's time under emulation, for what CI can afford.
	if [ $rc = 0 ]; then
		say "PASS $name ($((SECONDS - t0)) s)"
	else
		say "FAIL $name ($((SECONDS - t0)) s)"
		echo "$out" | tail -15 | sed 's/^/  | /' >/dev/ttyS0
	fi
}
# want EXPECTED ACTUAL WHAT
want() { [ "$1" = "$2" ] || fail "$3: want '$1', got '$2'"; }
unit_prop() { systemctl show -P "$2" "$1" 2>&1; }

# A busybox root filesystem, as an image for each manager.
rootfs() {
	rm -rf $W/bb
	mkdir -p $W/bb/bin $W/bb/etc $W/bb/tmp $W/bb/proc $W/bb/sys $W/bb/dev
	cp /bin/busybox $W/bb/bin/
	for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox $W/bb/bin/$a; done
	echo 'root:x:0:0:root:/root:/bin/sh' >$W/bb/etc/passwd
	echo 'root:x:0:' >$W/bb/etc/group
	tar -C $W/bb -cf $W/bb.tar .
}

wait_docker() {
	for _ in $(seq 120); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
	fail "dockerd did not answer"
}

drun() { docker run --runtime rt --network none "$@"; }

# --- Docker, with its default systemd cgroup driver and AppArmor profile

docker_setup() {
	wait_docker || return 1
	want systemd "$(docker info -f '{{.CgroupDriver}}')" "docker's cgroup driver" || return 1
	want 2 "$(docker info -f '{{.CgroupVersion}}')" "cgroup version" || return 1
	docker import -c 'CMD ["/bin/sh"]' $W/bb.tar $IMG >/dev/null
}

docker_run_prints_and_exits() {
	out=$(docker run --rm --runtime rt $IMG echo hello from rt) || fail "docker run: $out" || return 1
	want "hello from rt" "$out" "output"
}

docker_run_exit_code_is_kept() {
	drun --rm $IMG sh -c 'exit 7'
	want 7 "$?" "exit code"
}

docker_run_d_then_exec() {
	drun -d --name ex $IMG sleep 1000 >/dev/null || return 1
	out=$(docker exec ex sh -c 'echo in; cat /proc/1/cmdline | tr "\0" " "')
	want "in
sleep 1000 " "$out" "exec output"
}

docker_logs_has_the_output() {
	drun -d --name lg $IMG sh -c 'echo logged line; sleep 1000' >/dev/null || return 1
	for _ in $(seq 20); do docker logs lg 2>&1 | grep -q 'logged line' && return 0; sleep 0.5; done
	fail "docker logs: $(docker logs lg 2>&1)"
}

docker_stop_stops_it() {
	docker stop -t 2 ex >/dev/null || return 1
	want exited "$(docker inspect -f '{{.State.Status}}' ex)" "status after stop"
}

docker_rm_removes_container_and_scope() {
	id=$(docker inspect -f '{{.Id}}' ex) || return 1
	docker rm ex >/dev/null || return 1
	docker rm -f lg >/dev/null || return 1
	[ -z "$(docker ps -aq -f name=ex)" ] || fail "ex still listed"
	st=$(unit_prop docker-$id.scope ActiveState)
	[ "$st" = inactive ] || fail "docker-$id.scope: ActiveState $st after rm"
	[ ! -d /sys/fs/cgroup/system.slice/docker-$id.scope ] || fail "scope cgroup left"
}

docker_container_runs_in_its_systemd_scope() {
	drun -d --name sc $IMG sleep 1000 >/dev/null || return 1
	id=$(docker inspect -f '{{.Id}}' sc)
	u=docker-$id.scope
	want active "$(unit_prop $u ActiveState)" "$u ActiveState" || return 1
	want yes "$(unit_prop $u Delegate)" "$u Delegate" || return 1
	want system.slice "$(unit_prop $u Slice)" "$u Slice" || return 1
	pid=$(docker inspect -f '{{.State.Pid}}' sc)
	want "0::/system.slice/$u" "$(cat /proc/$pid/cgroup)" "cgroup of the init" || return 1
	# In its own cgroup namespace the container sees the scope as its root.
	want "0::/" "$(docker exec sc cat /proc/self/cgroup)" "cgroup of an exec, inside" || return 1
	docker exec -d sc sleep 777 || return 1
	for _ in $(seq 20); do epid=$(pgrep -f '^sleep 777$') && break; sleep 0.2; done
	want "0::/system.slice/$u" "$(cat /proc/$epid/cgroup)" "cgroup of an exec, from the host" || return 1
	docker rm -f sc >/dev/null
}

docker_apparmor_label_is_docker_default() {
	docker info -f '{{.SecurityOptions}}' | grep -q apparmor || fail "docker does not use AppArmor: $(docker info -f '{{.SecurityOptions}}')" || return 1
	want "docker-default (enforce)" "$(drun --rm $IMG cat /proc/self/attr/current)" "the init's label" || return 1
	drun -d --name aa $IMG sleep 1000 >/dev/null || return 1
	want "docker-default (enforce)" "$(docker exec aa cat /proc/self/attr/current)" "an exec's label"
	r=$?
	docker rm -f aa >/dev/null
	return $r
}

docker_memory_64m_holds() {
	want 67108864 "$(drun --rm --memory 64m $IMG cat /sys/fs/cgroup/memory.max)" "memory.max" || return 1
	drun --rm --memory 64m --memory-swap 64m $IMG sh -c 'head -c 300m /dev/zero | tail >/dev/null'
	want 137 "$?" "exit code of a 300 MB hog"
}

docker_memory_is_a_unit_property() {
	drun -d --name mp --memory 64m $IMG sleep 1000 >/dev/null || return 1
	id=$(docker inspect -f '{{.Id}}' mp)
	want 67108864 "$(unit_prop docker-$id.scope MemoryMax)" "MemoryMax"
	r=$?
	docker rm -f mp >/dev/null
	return $r
}

docker_cpus_half_is_cpu_max() {
	want "50000 100000" "$(drun --rm --cpus 0.5 $IMG cat /sys/fs/cgroup/cpu.max)" "cpu.max"
}

docker_pids_limit_20_holds() {
	out=$(drun --rm --pids-limit 20 $IMG sh -c '
		cat /sys/fs/cgroup/pids.max
		for i in $(seq 40); do sleep 30 & done 2>/dev/null
		cat /sys/fs/cgroup/pids.current')
	want 20 "$(echo "$out" | head -1)" "pids.max" || return 1
	n=$(echo "$out" | tail -1)
	[ "$n" -le 20 ] || fail "pids.current $n after a fork loop"
}

docker_update_changes_the_limits() {
	drun -d --name up --memory 64m $IMG sleep 1000 >/dev/null || return 1
	id=$(docker inspect -f '{{.Id}}' up)
	docker update --memory 128m --memory-swap 256m --cpus 0.25 --pids-limit 30 up >/dev/null || return 1
	want 134217728 "$(docker exec up cat /sys/fs/cgroup/memory.max)" "memory.max" || return 1
	want "25000 100000" "$(docker exec up cat /sys/fs/cgroup/cpu.max)" "cpu.max" || return 1
	want 30 "$(docker exec up cat /sys/fs/cgroup/pids.max)" "pids.max" || return 1
	want 134217728 "$(unit_prop docker-$id.scope MemoryMax)" "MemoryMax" || return 1
	want 30 "$(unit_prop docker-$id.scope TasksMax)" "TasksMax"
}

docker_stats_reads_the_cgroup() {
	out=$(docker stats --no-stream --format '{{.MemUsage}} {{.PIDs}}' up) || return 1
	echo "$out" | grep -Eq '^[0-9.]+[KMG]i?B / 128MiB 1$' || fail "docker stats: '$out'"
}

daemon_reload_keeps_limits() {
	systemctl daemon-reload
	sleep 1
	want 134217728 "$(docker exec up cat /sys/fs/cgroup/memory.max)" "memory.max after daemon-reload" || return 1
	want "25000 100000" "$(docker exec up cat /sys/fs/cgroup/cpu.max)" "cpu.max after daemon-reload" || return 1
	want 30 "$(docker exec up cat /sys/fs/cgroup/pids.max)" "pids.max after daemon-reload" || return 1
	# Devices: /dev/sda is not in a container's rules; /dev/null is.
	docker exec up sh -c 'echo x >/dev/null' || fail "/dev/null not writable after daemon-reload"
	# The guest's disk: no rule lets a container read it, even through a
	# node it makes itself.
	dev=$(cat /sys/block/vda/dev)
	head -c1 /dev/vda >/dev/null || fail "the host cannot read its own disk" || return 1
	docker exec up sh -c "mknod /tmp/m b ${dev%:*} ${dev#*:} && head -c1 /tmp/m >/dev/null" && fail "the disk is readable from the container after daemon-reload" && return 1
	docker rm -f up >/dev/null
}

# --- Docker's default network, published ports, volumes and builds, with
# rt as its default runtime (daemon.json's default-runtime, nothing else
# changed): no --runtime, no --network.

# A small web server in a busybox container: `serve NAME` is its command.
SERVE='mkdir -p /www && echo "hello from $0" >/www/index.html && exec httpd -f -p 80 -h /www'
# get HOST PORT: the page's body, from the host, once the server answers
# (bounded); bash's /dev/tcp, so no client of the guest's is in the way.
get() {
	local out
	for _ in $(seq 60); do
		out=$(timeout 10 bash -c 'exec 3<>/dev/tcp/$0/$1 && printf "GET / HTTP/1.0\r\n\r\n" >&3 && cat <&3' "$1" "$2" 2>&1) &&
			[ -n "$out" ] && { echo "$out" | tr -d '\r' | sed '1,/^$/d'; return 0; }
		sleep 0.5
	done
	fail "no answer from $1:$2: $out"
}
# on_rt ROOTS PATTERN: a process whose command line is PATTERN appears and
# is the init of a container in rt's state under one of ROOTS (a glob;
# bounded).
on_rt() {
	local pid r seen=
	for _ in $(seq 240); do
		for pid in $(pgrep -fx "$2"); do
			seen="pid $pid, parent: $(ps -o args= -p "$(ps -o ppid= -p "$pid" | tr -d ' ')" 2>&1)"
			for r in $1; do
				$RT --root "$r" list --format json 2>/dev/null |
					jq -e --argjson p "$pid" 'any((. // [])[]; .pid == $p)' >/dev/null && return 0
				seen="$seen; rt list under $r: $($RT --root "$r" list 2>&1 | tail -n +2 | tr '\n' ' ')"
			done
		done
		sleep 0.25
	done
	fail "no container of rt under $1 ran '$2' (${seen:-no such process})"
}

# Docker keeps each runtime's state in a root of its own.
DROOTS="/run/docker/runtime-*/moby"
# In a container: GET / from an address with busybox nc, the body's line
# (busybox-static's wget crashes resolving without the host's NSS modules).
NCGET='printf "GET / HTTP/1.0\r\n\r\n" | nc -w 10 "$0" 80 | tail -1'

docker_default_runtime_is_rt() {
	want rt "$(docker info -f '{{.DefaultRuntime}}')" "docker's default runtime" || return 1
	docker run -d --name web -p 127.0.0.1:8080:80 $IMG sh -c "$SERVE" web >/dev/null || return 1
	want rt "$(docker inspect -f '{{.HostConfig.Runtime}}' web)" "the container's runtime" || return 1
	id=$(docker inspect -f '{{.Id}}' web)
	for r in $DROOTS; do
		$RT --root "$r" state "$id" 2>/dev/null | jq -e '.status == "running"' >/dev/null && return 0
	done
	fail "$id is in no rt state under $DROOTS"
}

docker_published_port_answers() {
	want "hello from web" "$(get 127.0.0.1 8080)" "page through 127.0.0.1:8080"
}

docker_container_reaches_another_by_ip() {
	ip=$(docker inspect -f '{{.NetworkSettings.IPAddress}}' web)
	[ -n "$ip" ] || fail "web has no IP on the default bridge" || return 1
	out=$(docker run --rm $IMG sh -c "$NCGET" "$ip" 2>&1) || fail "GET / from $ip in a second container: $out" || return 1
	want "hello from web" "$out" "page from $ip"
}

docker_exec_it_has_a_terminal() {
	# script's stdin stays open and silent: at EOF script sends the tty's
	# EOF character on, which docker's raw terminal forwards as a NUL that
	# the exec's pty may echo ("^@") before the output, whatever the runtime.
	rm -f $W/exec-in
	mkfifo $W/exec-in
	sleep 300 >$W/exec-in 2>/dev/null &
	local sp=$!
	out=$(script -qec "docker exec -it web sh -c 'tty; echo in-web'" /dev/null <$W/exec-in | tr -d '\r')
	kill $sp
	rm -f $W/exec-in
	echo "$out" | grep -q '^/dev/pts/[0-9]' || fail "tty in exec -it: $out" || return 1
	echo "$out" | grep -qx in-web || fail "exec -it output: $out"
}

docker_stop_start_restart_keep_serving() {
	docker stop -t 2 web >/dev/null || return 1
	want exited "$(docker inspect -f '{{.State.Status}}' web)" "status after stop" || return 1
	docker start web >/dev/null || return 1
	want "hello from web" "$(get 127.0.0.1 8080)" "page after start" || return 1
	docker restart -t 2 web >/dev/null || return 1
	want "hello from web" "$(get 127.0.0.1 8080)" "page after restart" || return 1
	docker logs web >/dev/null 2>&1 || fail "docker logs web"
}

docker_named_volume_outlives_its_container() {
	docker volume create keep >/dev/null || return 1
	docker run --name vw -v keep:/data $IMG sh -c 'echo kept >/data/f' || return 1
	docker rm vw >/dev/null || return 1
	want kept "$(docker run --rm -v keep:/data $IMG cat /data/f)" "the volume's file in a new container" || return 1
	docker volume rm keep >/dev/null
}

# A Dockerfile with FROM, RUN, COPY, CMD and ENTRYPOINT; its RUN step
# sleeps so that the check can see which runtime runs it.
build_context() { # DIR TAG
	rm -rf "$1"
	mkdir -p "$1"
	echo "copied in" >"$1/hello.txt"
	cat >"$1/Dockerfile" <<DF
FROM $IMG
RUN echo "run by $2" >/built && sleep $3
COPY hello.txt /hello.txt
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /built /hello.txt"]
DF
}

docker_classic_build_runs_on_rt() {
	build_context $W/ctx1 classic 31
	DOCKER_BUILDKIT=0 docker build -q -t localhost/built:classic $W/ctx1 >$W/build1.out 2>&1 &
	b=$!
	on_rt "$DROOTS" "sleep 31"
	seen=$?
	wait $b || fail "docker build: $(cat $W/build1.out)" || return 1
	[ $seen = 0 ] || return 1
	want "run by classic
copied in" "$(docker run --rm localhost/built:classic)" "the built image's output"
}

# Docker 20.10's BuildKit runs its RUN steps with the `runc` it finds on
# its PATH, whatever the default runtime (moby/moby#42665): the way to
# put them on rt is rt installed as that runc, which this check does for
# its own build and undoes.
docker_buildkit_build_runs_on_rt_as_runc() {
	ln -sf $RT /usr/local/sbin/runc
	systemctl restart docker && wait_docker || { rm -f /usr/local/sbin/runc; return 1; }
	build_context $W/ctx2 buildkit 32
	DOCKER_BUILDKIT=1 docker build --progress plain -t localhost/built:buildkit $W/ctx2 >$W/build2.out 2>&1 &
	b=$!
	# BuildKit names no --root: rt's default.
	on_rt /run/rt "sleep 32"
	seen=$?
	wait $b
	rc=$?
	rm -f /usr/local/sbin/runc
	systemctl restart docker && wait_docker || return 1
	[ $rc = 0 ] || fail "docker build (BuildKit): $(tail -20 $W/build2.out)" || return 1
	[ $seen = 0 ] || return 1
	want "run by buildkit
copied in" "$(docker run --rm localhost/built:buildkit)" "the built image's output"
}

docker_commit_push_pull_run() {
	# Debian's docker-registry service asks for htpasswd logins: a
	# registry of the check's own, without, on 127.0.0.1:5000.
	systemctl stop docker-registry 2>/dev/null
	printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: 127.0.0.1:5000\n' $W >$W/registry.yml
	docker-registry serve $W/registry.yml >$W/registry.log 2>&1 &
	REG=$!
	for _ in $(seq 60); do timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/5000' 2>/dev/null && break; sleep 0.5; done
	commit_push_pull
	r=$?
	kill $REG
	wait $REG 2>/dev/null
	return $r
}

commit_push_pull() {
	docker run --name cm $IMG sh -c 'echo committed >/c' || return 1
	docker commit cm localhost:5000/committed:1 >/dev/null || return 1
	docker rm cm >/dev/null
	out=$(docker push -q localhost:5000/committed:1 2>&1) || fail "docker push: $out; registry: $(tail -3 $W/registry.log)" || return 1
	docker rmi localhost:5000/committed:1 >/dev/null || return 1
	out=$(docker pull -q localhost:5000/committed:1 2>&1) || fail "docker pull: $out" || return 1
	want committed "$(docker run --rm localhost:5000/committed:1 cat /c)" "the pulled image's file"
}

docker_rm_and_container_prune() {
	docker rm -f web >/dev/null || return 1
	docker run --name pr1 $IMG true || return 1
	docker container prune -f >/dev/null || return 1
	want "" "$(docker ps -aq -f name=web -f name=pr1)" "containers after rm and prune" || return 1
	for r in $DROOTS; do
		[ -z "$($RT --root "$r" list -q 2>/dev/null)" ] || fail "left in rt's state under $r: $($RT --root "$r" list)" || return 1
	done
}

# --- checkpoint and restore through CRIU (issue 33)

criu_check_passes() {
	out=$(criu check 2>&1)
	echo "criu check: $out" | head -5
	echo "$out" | grep -q "Looks good" || fail "criu check: $out"
}

# A counter writing 1, 2, 3... to /tmp/count in its root, once a second.
criu_bundle() { # DIR
	bundle $1 "" sh -c 'exec </dev/null >/dev/null 2>&1; i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 1; done'
	jq '.linux.resources = {} | .root.readonly = false' $1/config.json >$1/c.json && mv $1/c.json $1/config.json
}
count() { cat $1/rootfs/tmp/count 2>/dev/null || echo 0; }

# Runs the counter ID of $W/ID (criu_bundle) and dumps it into $W/ID.img
# with the checkpoint FLAGS; a failure removes the container.
criu_run_and_dump() { # ID [FLAGS...]
	local id=$1
	shift
	$RT run -d --bundle $W/$id $id </dev/null >$W/$id.out 2>&1 || fail "run: $(cat $W/$id.out)" || return 1
	sleep 2
	$RT checkpoint "$@" --image-path $W/$id.img $id >$W/$id.out 2>&1 || { $RT delete -f $id; fail "checkpoint: $(cat $W/$id.out)"; return 1; }
}

criu_counter_continues_after_restore() {
	criu_bundle $W/k1
	$RT run -d --bundle $W/k1 k1 </dev/null >$W/k1.out 2>&1 || fail "run: $(cat $W/k1.out)" || return 1
	sleep 3
	$RT checkpoint --image-path $W/k1.img k1 >$W/k1.out 2>&1 || { $RT delete -f k1; fail "checkpoint: $(cat $W/k1.out)"; return 1; }
	$RT state k1 >/dev/null 2>&1 && { $RT delete -f k1; fail "the container is still there after checkpoint"; return 1; }
	before=$(count $W/k1)
	sleep 2
	[ "$(count $W/k1)" = "$before" ] || fail "the counter ran on after the dump" || return 1
	$RT restore -d --image-path $W/k1.img --bundle $W/k1 k1 </dev/null >$W/k1.out 2>&1 || fail "restore: $(cat $W/k1.out) $(grep Error $W/k1.img/restore.log | head -3)" || return 1
	want running "$($RT state k1 | jq -r .status)" "status after restore" || { $RT delete -f k1; return 1; }
	sleep 3
	after=$(count $W/k1)
	$RT exec k1 true || { $RT delete -f k1; fail "exec in the restored container"; return 1; }
	$RT delete -f k1
	echo "count $before at the dump, $after 3 s after the restore"
	[ "$after" -gt "$before" ] && [ "$after" -lt $((before + 10)) ] || fail "the count did not continue: $before then $after"
}

# prestart and createRuntime hooks run again on restore (as runc runs
# them), with the restored init's pid and the status "creating".
criu_restore_runs_the_create_hooks() {
	criu_bundle $W/k8
	cat >$W/k8/hook.sh <<-'EOF'
	#!/bin/sh
	echo "$1 $(jq -r '"\(.pid) \(.status)"')" >>"$(dirname "$0")/hooks.log"
	EOF
	chmod +x $W/k8/hook.sh
	jq --arg p $W/k8/hook.sh '.hooks = {
		prestart: [{path: $p, args: ["hook.sh", "prestart"]}],
		createRuntime: [{path: $p, args: ["hook.sh", "createRuntime"]}]}' \
		$W/k8/config.json >$W/k8/c.json && mv $W/k8/c.json $W/k8/config.json
	criu_run_and_dump k8 || return 1
	: >$W/k8/hooks.log
	$RT restore -d --image-path $W/k8.img --bundle $W/k8 k8 </dev/null >$W/k8.out 2>&1 || fail "restore: $(cat $W/k8.out)" || return 1
	pid=$($RT state k8 | jq -r .pid)
	got=$(cat $W/k8/hooks.log)
	echo "hooks on restore: $(echo $got)"
	want "prestart $pid creating
createRuntime $pid creating" "$got" "the hooks' log after the restore" || { $RT delete -f k8; return 1; }
	# A failing createRuntime hook fails the restore in one line, and
	# CRIU undoes it: no container, process, mount or cgroup is left.
	$RT checkpoint --image-path $W/k8.img2 k8 >$W/k8.out 2>&1 || { $RT delete -f k8; fail "second checkpoint: $(cat $W/k8.out)"; return 1; }
	jq '.hooks.createRuntime = [{path: "/bin/false"}]' $W/k8/config.json >$W/k8/c.json && mv $W/k8/c.json $W/k8/config.json
	if $RT restore -d --image-path $W/k8.img2 --bundle $W/k8 k8 </dev/null >$W/k8.out 2>&1; then
		$RT delete -f k8
		fail "restore with a failing createRuntime hook succeeded"
		return 1
	fi
	echo "failing hook: $(cat $W/k8.out)"
	[ "$(wc -l <$W/k8.out)" = 1 ] && grep -q "createRuntime hook" $W/k8.out || fail "not one line naming the hook: $(cat $W/k8.out)" || return 1
	$RT state k8 >/dev/null 2>&1 && { $RT delete -f k8; fail "k8 exists after the failed restore"; return 1; }
	left=$(pgrep -f 'tmp/count' || true)
	[ -z "$left" ] || fail "restored processes left: $left" || return 1
	grep -q criu-root /proc/self/mountinfo && { fail "a criu-root mount is left"; return 1; }
	cg=$(find /sys/fs/cgroup -type d -name k8 2>/dev/null)
	[ -z "$cg" ] || fail "cgroup left: $cg"
}

# By hand, `rt restore -d` hands the restored init to an rt-shim as
# `rt create` does: its exit status is recorded for `rt wait` and
# `rt state`.
criu_restored_container_is_held_by_rt_shim() {
	criu_bundle $W/k9
	criu_run_and_dump k9 || return 1
	$RT restore -d --image-path $W/k9.img --bundle $W/k9 k9 </dev/null >$W/k9.out 2>&1 || fail "restore: $(cat $W/k9.out)" || return 1
	pid=$($RT state k9 | jq -r .pid)
	parent=$(cat /proc/$(awk '/^PPid:/ {print $2}' /proc/$pid/status)/comm)
	$RT kill k9 KILL
	code=$(timeout 30 $RT wait k9 2>&1)
	st=$($RT state k9 | jq -c '[.status, .exitStatus]')
	$RT delete -f k9
	echo "restored init $pid, its parent $parent; rt wait: $code; state $st"
	want rt-shim "$parent" "the restored init's parent" || return 1
	want 137 "$code" "rt wait after KILL" || return 1
	want '["stopped",137]' "$st" "state after the exit"
}

criu_leave_running_keeps_it_running() {
	criu_bundle $W/k2
	criu_run_and_dump k2 --leave-running || return 1
	a=$(count $W/k2); sleep 2; b=$(count $W/k2)
	st=$($RT state k2 | jq -r .status)
	$RT delete -f k2
	want running "$st" "status after --leave-running" || return 1
	[ "$b" -gt "$a" ] || fail "the counter stopped: $a then $b"
}

criu_restore_into_a_new_id() {
	criu_bundle $W/k3
	criu_run_and_dump k3 || return 1
	$RT restore -d --image-path $W/k3.img --bundle $W/k3 k3new </dev/null >$W/k3.out 2>&1 || fail "restore: $(cat $W/k3.out) $(grep Error $W/k3.img/restore.log | head -3)" || return 1
	st=$($RT state k3new | jq -r .status)
	pids=$($RT ps --format json k3new)
	$RT kill k3new KILL
	sleep 1
	$RT delete -f k3new
	want running "$st" "status of k3new" || return 1
	[ "$pids" != "[]" ] || fail "rt ps lists no process of k3new"
}

criu_pre_dump_then_dump() {
	criu_bundle $W/k4
	rm -rf $W/k4.pre $W/k4.img
	$RT run -d --bundle $W/k4 k4 </dev/null >$W/k4.out 2>&1 || fail "run: $(cat $W/k4.out)" || return 1
	sleep 2
	$RT checkpoint --pre-dump --image-path $W/k4.pre k4 >$W/k4.out 2>&1 || { $RT delete -f k4; fail "pre-dump: $(cat $W/k4.out)"; return 1; }
	st=$($RT state k4 | jq -r .status)
	want running "$st" "status after --pre-dump" || { $RT delete -f k4; return 1; }
	$RT checkpoint --parent-path ../k4.pre --image-path $W/k4.img k4 >$W/k4.out 2>&1 || { $RT delete -f k4; fail "dump on the pre-dump: $(cat $W/k4.out)"; return 1; }
	[ -L $W/k4.img/parent ] || fail "no parent link in the image" || return 1
	before=$(count $W/k4)
	$RT restore -d --image-path $W/k4.img --bundle $W/k4 k4 </dev/null >$W/k4.out 2>&1 || fail "restore: $(cat $W/k4.out)" || return 1
	sleep 3
	after=$(count $W/k4)
	$RT delete -f k4
	echo "count $before at the dump, $after 3 s after the restore"
	[ "$after" -gt "$before" ] || fail "the count did not continue: $before then $after"
}

# A TCP connection inside the container (its loopback): a client sends a
# line a second to a server that writes them to /tmp/got. CRIU refuses an
# established connection unless asked to keep it.
criu_tcp_connection_kept_with_tcp_established() {
	bundle $W/k5 "" sh -c 'exec </dev/null >/dev/null 2>&1; ip link set lo up; sleep 100000 | nc -l -p 7000 >/tmp/got & sleep 1; i=0; while true; do i=$((i+1)); echo $i; sleep 1; done | nc 127.0.0.1 7000'
	jq '.linux.resources = {} | .root.readonly = false | .process.capabilities.bounding += ["CAP_NET_ADMIN"] | .process.capabilities.effective += ["CAP_NET_ADMIN"] | .process.capabilities.permitted += ["CAP_NET_ADMIN"]' $W/k5/config.json >$W/k5/c.json && mv $W/k5/c.json $W/k5/config.json
	rm -rf $W/k5.img $W/k5.bad
	$RT run -d --bundle $W/k5 k5 </dev/null >$W/k5.out 2>&1 || fail "run: $(cat $W/k5.out)" || return 1
	sleep 4
	got() { tail -1 $W/k5/rootfs/tmp/got 2>/dev/null || echo 0; }
	[ "$(got)" -gt 0 ] || { $RT delete -f k5; fail "the connection carried nothing before the dump"; return 1; }
	if $RT checkpoint --image-path $W/k5.bad k5 >$W/k5.out 2>&1; then
		$RT delete -f k5
		fail "a dump of an established connection without --tcp-established succeeded"
		return 1
	fi
	echo "without --tcp-established: $(cat $W/k5.out)"
	want running "$($RT state k5 | jq -r .status)" "status after the refused dump" || { $RT delete -f k5; return 1; }
	$RT checkpoint --tcp-established --image-path $W/k5.img k5 >$W/k5.out 2>&1 || { $RT delete -f k5; fail "checkpoint --tcp-established: $(cat $W/k5.out)"; return 1; }
	before=$(got)
	$RT restore -d --tcp-established --image-path $W/k5.img --bundle $W/k5 k5 </dev/null >$W/k5.out 2>&1 || fail "restore: $(cat $W/k5.out) $(grep Error $W/k5.img/restore.log | head -3)" || return 1
	sleep 4
	after=$(got)
	$RT delete -f k5
	echo "line $before received at the dump, $after 4 s after the restore"
	[ "$after" -gt "$before" ] || fail "the connection carried nothing after the restore: $before then $after"
}

# A console receiver: takes the pty master from --console-socket and
# appends what it reads to a file until killed.
recvtty() { # SOCKET OUT
	cat >$W/recvtty.py <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(1)
c, _ = s.accept()
_, fds, _, _ = socket.recv_fds(c, 4096, 1)
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        try:
            b = os.read(fds[0], 4096)
        except OSError:
            break
        if not b:
            break
        f.write(b)
PY
	rm -f $1
	python3 $W/recvtty.py $1 $2 </dev/null >/dev/null 2>&1 &
	echo $!
}

criu_terminal_container_gets_a_new_console() {
	bundle $W/k6 "" sh -c 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done'
	jq '.linux.resources = {} | .process.terminal = true' $W/k6/config.json >$W/k6/c.json && mv $W/k6/c.json $W/k6/config.json
	rm -rf $W/k6.img $W/k6.tty1 $W/k6.tty2
	r1=$(recvtty $W/k6.sock1 $W/k6.tty1)
	for _ in $(seq 50); do [ -S $W/k6.sock1 ] && break; sleep 0.1; done
	$RT run -d --console-socket $W/k6.sock1 --bundle $W/k6 k6 </dev/null >$W/k6.out 2>&1 || { kill $r1; fail "run: $(cat $W/k6.out)"; return 1; }
	sleep 3
	$RT checkpoint --image-path $W/k6.img k6 >$W/k6.out 2>&1 || { kill $r1; $RT delete -f k6; fail "checkpoint: $(cat $W/k6.out)"; return 1; }
	kill $r1
	last1=$(grep -o 'tick [0-9]*' $W/k6.tty1 | tail -1)
	r2=$(recvtty $W/k6.sock2 $W/k6.tty2)
	for _ in $(seq 50); do [ -S $W/k6.sock2 ] && break; sleep 0.1; done
	$RT restore -d --console-socket $W/k6.sock2 --image-path $W/k6.img --bundle $W/k6 k6 </dev/null >$W/k6.out 2>&1 || { kill $r2; fail "restore: $(cat $W/k6.out) $(grep Error $W/k6.img/restore.log | head -3)"; return 1; }
	sleep 3
	last2=$(grep -o 'tick [0-9]*' $W/k6.tty2 | tail -1)
	$RT delete -f k6
	kill $r2
	echo "old console's last line '$last1', new console's '$last2'"
	[ -n "$last1" ] || fail "the first console got nothing" || return 1
	[ "${last2#tick }" -gt "${last1#tick }" ] 2>/dev/null || fail "the new console did not get the ticks that follow: '$last1' then '$last2'"
}

criu_restore_into_a_systemd_scope() {
	criu_bundle $W/k7
	jq '.linux.cgroupsPath = "system.slice:rt:k7" | .linux.resources = {"pids": {"limit": 30}}' $W/k7/config.json >$W/k7/c.json && mv $W/k7/c.json $W/k7/config.json
	rm -rf $W/k7.img
	$RT --systemd-cgroup run -d --bundle $W/k7 k7 </dev/null >$W/k7.out 2>&1 || fail "run: $(cat $W/k7.out)" || return 1
	sleep 2
	$RT --systemd-cgroup checkpoint --image-path $W/k7.img k7 >$W/k7.out 2>&1 || { $RT --systemd-cgroup delete -f k7; fail "checkpoint: $(cat $W/k7.out)"; return 1; }
	want inactive "$(systemctl is-active rt-k7.scope)" "rt-k7.scope after the checkpoint" || return 1
	$RT --systemd-cgroup restore -d --image-path $W/k7.img --bundle $W/k7 k7 </dev/null >$W/k7.out 2>&1 || fail "restore: $(cat $W/k7.out) $(grep Error $W/k7.img/restore.log | head -3)" || return 1
	pid=$($RT state k7 | jq -r .pid)
	cg=$(cat /proc/$pid/cgroup)
	active=$(systemctl is-active rt-k7.scope)
	pids_max=$(unit_prop rt-k7.scope TasksMax)
	$RT --systemd-cgroup delete -f k7
	want "0::/system.slice/rt-k7.scope" "$cg" "the restored init's cgroup" || return 1
	want active "$active" "rt-k7.scope after the restore" || return 1
	want 30 "$pids_max" "TasksMax of the restored scope" || return 1
	want inactive "$(systemctl is-active rt-k7.scope)" "rt-k7.scope after delete"
}

# Podman at its defaults (systemd cgroups, conmon) checkpoints through rt.
criu_podman_checkpoint_restore_and_export() {
	podman --runtime $RT run -d --name pk --network none $IMG sh -c 'i=0; while true; do i=$((i+1)); echo $i >/tmp/count; sleep 1; done' >/dev/null || return 1
	sleep 3
	podman container checkpoint pk >$W/pk.out 2>&1 || { podman rm -f pk >/dev/null; fail "checkpoint: $(cat $W/pk.out)"; return 1; }
	want exited "$(podman inspect -f '{{.State.Status}}' pk)" "status after checkpoint" || { podman rm -f pk >/dev/null; return 1; }
	podman container restore pk >$W/pk.out 2>&1 || { podman rm -f pk >/dev/null; fail "restore: $(cat $W/pk.out)"; return 1; }
	want running "$(podman inspect -f '{{.State.Status}}' pk)" "status after restore" || { podman rm -f pk >/dev/null; return 1; }
	a=$(podman exec pk cat /tmp/count); sleep 2; b=$(podman exec pk cat /tmp/count)
	[ "$b" -gt "$a" ] || { podman rm -f pk >/dev/null; fail "the count stopped after restore: $a then $b"; return 1; }
	rm -f $W/pk.tar.gz
	podman container checkpoint --export $W/pk.tar.gz pk >$W/pk.out 2>&1 || { podman rm -f pk >/dev/null; fail "checkpoint --export: $(cat $W/pk.out)"; return 1; }
	podman rm -f pk >/dev/null
	podman container restore --import $W/pk.tar.gz >$W/pk.out 2>&1 || fail "restore --import: $(cat $W/pk.out)" || return 1
	st=$(podman inspect -f '{{.State.Status}}' pk)
	rtm=$(podman inspect -f '{{.OCIRuntime}}' pk)
	c=$(podman exec pk cat /tmp/count)
	podman rm -f pk >/dev/null
	want running "$st" "status after restore --import" || return 1
	want $RT "$rtm" "runtime of the imported container" || return 1
	echo "count $b before the export, $c after the import"
	[ "$c" -ge "$b" ] || fail "the imported container did not carry the count: $b then $c"
}

# containerd 1.6 through containerd-shim-rt-v2: `ctr c checkpoint --task`
# (the shim's Checkpoint: CRIU dumps it, the task keeps running), then the
# container and task removed and `ctr c restore --live` (a task created
# from the checkpoint, restored by its Start). The counter runs on from
# where it was. Its stdio is its own /dev/null, as in the checks above.
# Every ctr call is bounded (ckt): a step that hangs fails the check
# with its name instead of holding the boot.
ckt() { timeout 90 ctr -n default "$@"; }
ck_count() { ckt task exec --exec-id rd$RANDOM ck1 cat /tmp/count 2>/dev/null || echo 0; }
ck_cleanup() {
	ckt task kill -s KILL ck1 >/dev/null 2>&1
	for _ in $(seq 50); do ckt task ls | grep -q "^ck1 .*RUNNING" || break; sleep 0.2; done
	ckt task rm -f ck1 >/dev/null 2>&1
	ckt container rm ck1 >/dev/null 2>&1
	ckt image rm localhost/ck1:ckpt >/dev/null 2>&1
}
# What containerd and the shim said, and CRIU's log, for a failed step.
ck_why() {
	fail "$1: $(cat $W/ck1.out)"
	journalctl -u containerd --no-pager | grep -iE 'ck1|checkpoint|restore|criu|level=error' | tail -12
	for l in $(ls -t /run/containerd/io.containerd.runtime.v2.task/default/ck1/criu-work/*.log /tmp/ctd-*/*.log 2>/dev/null | head -2); do
		echo "--- $l"; tail -15 "$l"
	done
	ck_cleanup
	return 1
}
criu_containerd_checkpoint_through_rt_v2() {
	ck_cleanup
	ckt run -d --runtime io.containerd.rt.v2 $IMG:latest ck1 \
		sh -c 'exec </dev/null >/dev/null 2>&1; i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 1; done' \
		</dev/null >$W/ck1.out 2>&1 || { ck_why "ctr run"; return 1; }
	sleep 6
	ckt container checkpoint --task ck1 localhost/ck1:ckpt >$W/ck1.out 2>&1 || { ck_why "checkpoint"; return 1; }
	# CRIU's work directory (its dump.log) is the shim's, gone after a dump.
	ls -d /run/containerd/io.containerd.runtime.v2.task/default/ck1/criu-work >$W/ck1.out 2>&1 && { ck_why "criu-work left in the bundle"; return 1; }
	ckt task ls | grep -q "^ck1 .*RUNNING" || { echo "$(ckt task ls)" >$W/ck1.out; ck_why "not running after the checkpoint"; return 1; }
	ckt task kill -s KILL ck1 >$W/ck1.out 2>&1 || { ck_why "kill"; return 1; }
	for _ in $(seq 50); do ckt task ls | grep -q "^ck1 .*STOPPED" && break; sleep 0.2; done
	ckt task rm ck1 >$W/ck1.out 2>&1 || { ck_why "task rm"; return 1; }
	ckt container rm ck1 >$W/ck1.out 2>&1 || { ck_why "container rm"; return 1; }
	ckt container restore --live ck1 localhost/ck1:ckpt </dev/null >$W/ck1.out 2>&1 || { ck_why "restore"; return 1; }
	sleep 2
	before=$(ck_count)
	sleep 3
	after=$(ck_count)
	st=$(ckt task ls | grep "^ck1 ")
	ck_cleanup
	echo "task after the restore: $st; count $before, then $after 3 s later"
	echo "$st" | grep -q RUNNING || fail "ck1 is not RUNNING after the restore: $st" || return 1
	[ "$before" -ge 5 ] || fail "the counter started again ($before right after the restore)" || return 1
	[ "$after" -gt "$before" ] || fail "the counter stopped: $before then $after"
}

# --- rt by hand, --systemd-cgroup

bundle() { # DIR CGROUPSPATH ARGS...
	local d=$1 cg=$2
	shift 2
	rm -rf $d
	mkdir -p $d
	cp -a $W/bb $d/rootfs
	(cd $d && $RT spec)
	args=$(printf '%s\n' "$@" | jq -R . | jq -s .)
	jq --argjson a "$args" '.process.args = $a | .process.terminal = false' $d/config.json >$d/c.json && mv $d/c.json $d/config.json
	jq --arg cg "$cg" '.linux.cgroupsPath = $cg | .linux.resources = {"memory": {"limit": 67108864}, "pids": {"limit": 25}, "cpu": {"quota": 20000, "period": 100000}}' $d/config.json >$d/c.json && mv $d/c.json $d/config.json
}

rt_create_makes_a_scope_with_the_limits() {
	bundle $W/b1 system.slice:rt-test:c1 sleep 1000
	# The container's stdio: not this check's output pipe, which it would
	# hold open.
	$RT --systemd-cgroup create --bundle $W/b1 c1 </dev/null >$W/c1.out 2>&1 || fail "create: $(cat $W/c1.out)" || return 1
	u=rt-test-c1.scope
	want active "$(unit_prop $u ActiveState)" "ActiveState" || return 1
	want yes "$(unit_prop $u Delegate)" "Delegate" || return 1
	want 67108864 "$(unit_prop $u MemoryMax)" "MemoryMax" || return 1
	want 25 "$(unit_prop $u TasksMax)" "TasksMax" || return 1
	want 200ms "$(unit_prop $u CPUQuotaPerSecUSec)" "CPUQuotaPerSecUSec" || return 1
	# rt spec's device rules (deny all, then the defaults) as systemd's
	# allow list, so that systemd's own device program allows them too.
	want strict "$(unit_prop $u DevicePolicy)" "DevicePolicy" || return 1
	unit_prop $u DeviceAllow | grep -qx '/dev/char/1:3 rwm' || fail "DeviceAllow has no /dev/null: $(unit_prop $u DeviceAllow | tr '\n' ,)" || return 1
	unit_prop $u DeviceAllow | grep -qx 'char-pts rwm' || fail "DeviceAllow has no char-pts: $(unit_prop $u DeviceAllow | tr '\n' ,)" || return 1
	pid=$($RT state c1 | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p')
	want "0::/system.slice/$u" "$(cat /proc/$pid/cgroup)" "cgroup of the init" || return 1
	want 67108864 "$(cat /sys/fs/cgroup/system.slice/$u/memory.max)" "memory.max" || return 1
	want "20000 100000" "$(cat /sys/fs/cgroup/system.slice/$u/cpu.max)" "cpu.max" || return 1
	# Only the init: the placeholder that held the scope is gone.
	want "$pid" "$(cat /sys/fs/cgroup/system.slice/$u/cgroup.procs)" "cgroup.procs"
}

rt_start_and_update_set_unit_properties() {
	$RT --systemd-cgroup start c1 || return 1
	$RT --systemd-cgroup update --memory 134217728 --pids-limit 40 c1 || return 1
	u=rt-test-c1.scope
	want 134217728 "$(unit_prop $u MemoryMax)" "MemoryMax" || return 1
	want 40 "$(unit_prop $u TasksMax)" "TasksMax" || return 1
	want 134217728 "$(cat /sys/fs/cgroup/system.slice/$u/memory.max)" "memory.max" || return 1
	systemctl daemon-reload
	want 134217728 "$(cat /sys/fs/cgroup/system.slice/$u/memory.max)" "memory.max after daemon-reload" || return 1
	want "20000 100000" "$(cat /sys/fs/cgroup/system.slice/$u/cpu.max)" "cpu.max after daemon-reload" || return 1
	# systemd re-applies its device program (from DeviceAllow) at a
	# reload: /dev/null stays usable (daemon_reload_keeps_limits checks
	# that a disk stays out of reach).
	$RT exec c1 sh -c 'echo x >/dev/null' || fail "/dev/null not writable after daemon-reload"
}

rt_pause_and_resume_in_the_scope() {
	$RT --systemd-cgroup pause c1 || return 1
	$RT state c1 | grep -q '"status": *"paused"' || fail "not paused: $($RT state c1)" || return 1
	want 1 "$(cat /sys/fs/cgroup/system.slice/rt-test-c1.scope/cgroup.freeze)" "cgroup.freeze" || return 1
	$RT --systemd-cgroup resume c1 || return 1
	$RT state c1 | grep -q '"status": *"running"' || fail "not running: $($RT state c1)"
}

rt_delete_stops_the_unit() {
	$RT --systemd-cgroup delete --force c1 || return 1
	st=$(unit_prop rt-test-c1.scope ActiveState)
	want inactive "$st" "ActiveState after delete" || return 1
	[ ! -d /sys/fs/cgroup/system.slice/rt-test-c1.scope ] || fail "scope cgroup left"
}

rt_failed_create_leaves_no_unit() {
	bundle $W/b2 system.slice:rt-test:bad /no/such/program
	out=$($RT --systemd-cgroup create --bundle $W/b2 bad 2>&1) && fail "create succeeded" && return 1
	echo "$out" | grep -q '/no/such/program' || fail "error: $out" || return 1
	want inactive "$(unit_prop rt-test-bad.scope ActiveState)" "ActiveState" || return 1
	systemctl list-units --all --no-legend 'rt-test-bad*' | grep -q . && fail "unit listed: $(systemctl list-units --all 'rt-test-bad*')"
	[ ! -d /sys/fs/cgroup/system.slice/rt-test-bad.scope ] || fail "scope cgroup left" || return 1
	[ ! -d /run/rt/bad ] || fail "state left"
}

rt_run_without_a_path_uses_rt_scope() {
	bundle $W/b3 "" sleep 1000
	$RT --systemd-cgroup run -d --bundle $W/b3 c3 </dev/null >$W/c3.out 2>&1 || fail "run: $(cat $W/c3.out)" || return 1
	pid=$($RT state c3 | jq .pid)
	want "0::/system.slice/rt-c3.scope" "$(cat /proc/$pid/cgroup)" "cgroup of the init" || return 1
	$RT --systemd-cgroup delete --force c3 || return 1
	want inactive "$(unit_prop rt-c3.scope ActiveState)" "ActiveState after delete"
}

rt_features_lists_apparmor_and_systemd() {
	out=$($RT features)
	want "true true" "$(echo "$out" | jq -r '[.linux.apparmor.enabled, .linux.cgroup.systemd] | join(" ")')" "apparmor.enabled, cgroup.systemd"
}

rt_apparmor_profile_not_loaded_is_named() {
	bundle $W/b4 system.slice:rt-test:aa true
	jq '.process.apparmorProfile = "no-such-profile"' $W/b4/config.json >$W/c.json && mv $W/c.json $W/b4/config.json
	out=$($RT --systemd-cgroup run --bundle $W/b4 aa 2>&1) && fail "run succeeded" && return 1
	want 1 "$(echo "$out" | wc -l)" "error lines ($out)" || return 1
	echo "$out" | grep -q '"no-such-profile" is not loaded' || fail "error: $out" || return 1
	want inactive "$(unit_prop rt-test-aa.scope ActiveState)" "ActiveState"
}

rt_apparmor_profile_applies() {
	bundle $W/b5 system.slice:rt-test:ab cat /proc/self/attr/current
	jq '.process.apparmorProfile = "docker-default"' $W/b5/config.json >$W/c.json && mv $W/c.json $W/b5/config.json
	out=$($RT --systemd-cgroup run --bundle $W/b5 ab 2>&1) || fail "run: $out" || return 1
	want "docker-default (enforce)" "$out" "label" || return 1
	# run removed it.
	[ -z "$($RT list -q)" ] || fail "left: $($RT list)"
}

# --- containerd with SystemdCgroup = true

ctr_setup() {
	docker save $IMG -o $W/bb-docker.tar || return 1
	ctr -n default image import --all-platforms --base-name $IMG $W/bb-docker.tar >/dev/null || return 1
	ctr -n default image ls -q | grep -q busybox || fail "image not imported: $(ctr -n default image ls)"
}

ctr_runc_shim_with_rt_and_systemd_cgroup() {
	out=$(ctr -n default run --rm --runc-binary $RT --runc-systemd-cgroup \
		--cgroup system.slice:ctr:t1 $IMG:latest t1 cat /proc/self/cgroup 2>&1) || fail "ctr run: $out" || return 1
	want "0::/system.slice/ctr-t1.scope" "$out" "cgroup" || return 1
	want inactive "$(unit_prop ctr-t1.scope ActiveState)" "scope after --rm"
}

ctr_memory_limit_through_systemd() {
	# ctr's spec mounts no cgroup filesystem: read the scope from here.
	ctr -n default run -d --runc-binary $RT --runc-systemd-cgroup --memory-limit 67108864 \
		--cgroup system.slice:ctr:t2 $IMG:latest t2 sleep 1000 >/dev/null || return 1
	want 67108864 "$(cat /sys/fs/cgroup/system.slice/ctr-t2.scope/memory.max)" "memory.max" || return 1
	want 67108864 "$(unit_prop ctr-t2.scope MemoryMax)" "MemoryMax" || return 1
	ctr -n default task kill -s KILL t2 || return 1
	for _ in $(seq 50); do ctr -n default task ls | grep -q "^t2 .*STOPPED" && break; sleep 0.2; done
	ctr -n default task rm t2 >/dev/null || return 1
	ctr -n default container rm t2 || return 1
	want inactive "$(unit_prop ctr-t2.scope ActiveState)" "scope after task rm"
}

ctr_rt_shim_publishes_tasks_oom() {
	ctr -n default events >$W/events 2>&1 &
	ev=$!
	sleep 1
	ctr -n default run --rm --runtime io.containerd.rt.v2 --memory-limit 33554432 \
		$IMG:latest t4 sh -c 'head -c 200m /dev/zero | tail >/dev/null'
	rc=$?
	sleep 1
	kill $ev
	want 137 "$rc" "exit code of a 200 MB hog under 32 MB" || return 1
	grep -q '/tasks/oom' $W/events || fail "no /tasks/oom event: $(grep -o '/tasks/[a-z]*' $W/events | sort | uniq -c | tr '\n' ' ')"
}

cri_images() {
	docker import -c 'ENTRYPOINT ["/bin/sleep", "inf"]' $W/bb.tar localhost/pause:3.9 >/dev/null || return 1
	docker save localhost/pause:3.9 -o $W/pause.tar || return 1
	ctr -n k8s.io image import --all-platforms $W/pause.tar >/dev/null || return 1
	ctr -n k8s.io image import --all-platforms $W/bb-docker.tar >/dev/null || return 1
	n=$(ctr -n k8s.io image ls -q | grep -c -E 'localhost/(pause|busybox)')
	[ "$n" -ge 2 ] || fail "images in k8s.io: $(ctr -n k8s.io image ls -q)"
}

cri_pod_with_limits_in_systemd_scopes() {
	cri-check /run/containerd/containerd.sock rt $IMG:latest || {
		journalctl -u containerd --no-pager | grep -iE 'cri|level=error' | tail -8
		return 1
	}
}

cri_pod_on_the_rt_v2_handler_in_systemd_scopes() {
	# containerd-shim-rt-v2: containerd passes it no SystemdCgroup option,
	# and the slice:prefix:name path the CRI plugin writes says systemd.
	cri-check /run/containerd/containerd.sock rt-v2 $IMG:latest || {
		journalctl -u containerd --no-pager | grep -iE 'cri|level=error' | tail -8
		return 1
	}
}

# A pod with its own network on the node's CNI bridge (Debian's
# containernetworking-plugins, run.sh's conflist), as kubelet runs any pod
# without hostNetwork: the node fetches a page from the pod's IP.
cri_pod_ip_answers_on_the_rt_handler() {
	cri-check /run/containerd/containerd.sock rt $IMG:latest --pod-network || {
		journalctl -u containerd --no-pager | grep -iE 'cni|level=error' | tail -8
		return 1
	}
}

cri_pod_ip_answers_on_the_rt_v2_handler() {
	cri-check /run/containerd/containerd.sock rt-v2 $IMG:latest --pod-network || {
		journalctl -u containerd --no-pager | grep -iE 'cni|level=error' | tail -8
		return 1
	}
}

# --- Podman, its systemd cgroup manager

podman_setup() {
	podman import -q $W/bb.tar $IMG >/dev/null
}

podman_run_memory_and_default_pids_limit() {
	out=$(podman --runtime $RT run --rm --network none --memory 64m $IMG \
		cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>&1) || fail "podman run: $out" || return 1
	want "67108864
2048" "$out" "memory.max, pids.max (podman's default)"
}

podman_run_d_in_a_libpod_scope_then_exec() {
	podman --runtime $RT run -d --name pe --network none $IMG sleep 1000 >/dev/null || return 1
	id=$(podman inspect -f '{{.Id}}' pe)
	pid=$(podman inspect -f '{{.State.Pid}}' pe)
	u=libpod-$id.scope
	want "0::/machine.slice/$u" "$(cat /proc/$pid/cgroup)" "cgroup of the init" || return 1
	want active "$(unit_prop $u ActiveState)" "$u ActiveState" || return 1
	want hi "$(podman --runtime $RT exec pe echo hi)" "exec"
}

podman_stop_and_rm() {
	id=$(podman inspect -f '{{.Id}}' pe)
	podman --runtime $RT stop -t 2 pe >/dev/null || return 1
	want exited "$(podman inspect -f '{{.State.Status}}' pe)" "status" || return 1
	podman --runtime $RT rm pe >/dev/null || return 1
	want inactive "$(unit_prop libpod-$id.scope ActiveState)" "scope after rm"
}

# --- Podman's default network and builds (root): rt named with --runtime,
# as Podman users do; builds through a wrapper that logs each call and
# runs rt, to show that Buildah's RUN steps reach rt.

podman_published_port_answers() {
	podman --runtime $RT run -d --name pw -p 127.0.0.1:8081:80 $IMG sh -c "$SERVE" pw >/dev/null || return 1
	want "hello from pw" "$(get 127.0.0.1 8081)" "page through 127.0.0.1:8081" || return 1
	ip=$(podman inspect -f '{{.NetworkSettings.IPAddress}}' pw)
	[ -n "$ip" ] || fail "pw has no IP on podman's default network" || return 1
	out=$(podman --runtime $RT run --rm $IMG sh -c "$NCGET" "$ip" 2>&1) || fail "GET / from $ip in a second container: $out" || return 1
	want "hello from pw" "$out" "page from $ip" || return 1
	podman --runtime $RT rm -f -t 0 pw >/dev/null
}

podman_build_runs_on_rt() {
	printf '#!/bin/sh\necho "$*" >>%s/traced.log\nexec %s "$@"\n' $W $RT >$W/rt-traced
	chmod 755 $W/rt-traced
	rm -f $W/traced.log
	build_context $W/ctx3 podman 1
	out=$(podman build --runtime $W/rt-traced -q -t localhost/built:podman $W/ctx3 2>&1) || fail "podman build: $out" || return 1
	grep -Eq '(^| )(run|create) .*--bundle' $W/traced.log || fail "the RUN step did not reach rt: $(cat $W/traced.log 2>&1)" || return 1
	want "run by podman
copied in" "$(podman --runtime $RT run --rm localhost/built:podman)" "the built image's output"
}

podman_run_v_volume_persists() {
	mkdir -p $W/pv && rm -f $W/pv/f
	podman --runtime $RT run --rm -v $W/pv:/data $IMG sh -c 'echo from-podman >/data/f' || return 1
	want from-podman "$(cat $W/pv/f)" "the bind volume's file on the host" || return 1
	podman volume create pkeep >/dev/null || return 1
	podman --runtime $RT run --rm -v pkeep:/data $IMG sh -c 'echo kept >/data/f' || return 1
	want kept "$(podman --runtime $RT run --rm -v pkeep:/data $IMG cat /data/f)" "the named volume's file" || return 1
	podman volume rm pkeep >/dev/null
}

# --- Rootless: a plain user with subuids, its systemd user manager
# (user@.service, Delegate=yes) from lingering, rootless Podman on rt
# with its default network (slirp4netns) and a --memory limit.

RU_NAME=rtu
ru_id() { id -u $RU_NAME; }
# As the user, with its runtime dir and session bus, in its home.
asu() {
	local u
	u=$(ru_id)
	runuser -u $RU_NAME -- env -i HOME=/home/$RU_NAME PATH=$PATH XDG_RUNTIME_DIR=/run/user/$u \
		DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/$u/bus sh -c "cd; $1"
}

rootless_setup() {
	id $RU_NAME >/dev/null 2>&1 || useradd -m -s /bin/sh $RU_NAME || return 1
	grep -q "^$RU_NAME:" /etc/subuid || fail "useradd gave $RU_NAME no subuid range" || return 1
	loginctl enable-linger $RU_NAME || return 1
	local u
	u=$(ru_id)
	for _ in $(seq 120); do
		[ "$(unit_prop user@$u.service ActiveState)" = active ] && [ -S /run/user/$u/bus ] && break
		sleep 1
	done
	want active "$(unit_prop user@$u.service ActiveState)" "user@$u.service" || return 1
	want yes "$(unit_prop user@$u.service Delegate)" "user@$u.service Delegate" || return 1
	asu "podman import -q /tmp/rt-host/bb.tar $IMG" >/dev/null
}

rootless_rt_run_as_the_user() {
	out=$(asu "rm -rf b && mkdir -p b/rootfs && tar -C b/rootfs -xf /tmp/rt-host/bb.tar && cd b &&
		$RT spec --rootless && sed -i 's/\"terminal\": true/\"terminal\": false/; s/\"sh\"/\"id\", \"-u\"/' config.json &&
		$RT run r1" 2>&1) || fail "rt run: $out" || return 1
	want 0 "$out" "id -u in the rootless container"
}

# Podman at its defaults with a user session: its systemd cgroup manager,
# so rt (root only inside Podman's user namespace) asks the user's
# manager over the user's bus, authenticated as the user outside, for a
# libpod-<id>.scope with the limit; the scope goes with `podman rm`.
rootless_podman_systemd_manager_scope_with_memory() {
	out=$(asu "podman --runtime $RT run -d --name ps --network none --memory 64m $IMG sleep 600" 2>&1) ||
		fail "podman run: $out" || return 1
	id=$(asu "podman inspect -f '{{.Id}}' ps")
	local ok=0
	{
		want active "$(asu "systemctl --user show -P ActiveState libpod-$id.scope" 2>&1)" "user scope libpod-$id.scope" &&
			cg=$(asu "systemctl --user show -P ControlGroup libpod-$id.scope") &&
			want 67108864 "$(cat /sys/fs/cgroup$cg/memory.max 2>&1)" "memory.max of $cg" &&
			want 67108864 "$(asu "podman exec ps cat /sys/fs/cgroup/memory.max" 2>&1)" "memory.max in the container" &&
			ok=1
	}
	out=$(asu "podman --runtime $RT rm -f -t 0 ps" 2>&1) || fail "podman rm: $out" || return 1
	[ $ok = 1 ] || return 1
	want inactive "$(asu "systemctl --user show -P ActiveState libpod-$id.scope" 2>&1)" "user scope after rm"
}

PCG="--cgroup-manager cgroupfs"

rootless_podman_slirp4netns_default_network() {
	out=$(asu "podman --runtime $RT $PCG run --rm $IMG sh -c 'grep -o tap0 /proc/net/dev'" 2>&1) ||
		fail "podman run: $out" || return 1
	echo "$out" | grep -qx tap0 || fail "no slirp4netns tap0: $out"
}

# Rootless Podman's default network with a published port: rootlessport
# listens on the host and forwards into slirp4netns.
rootless_podman_published_port_answers() {
	out=$(asu "podman --runtime $RT $PCG run -d --name rw -p 127.0.0.1:8090:80 $IMG sh -c '$SERVE' rw" 2>&1) || fail "podman run -p: $out" || return 1
	got=$(get 127.0.0.1 8090)
	r=$?
	asu "podman --runtime $RT $PCG rm -f -t 0 rw" >/dev/null 2>&1
	[ $r = 0 ] || fail "$got" || return 1
	want "hello from rw" "$got" "page through 127.0.0.1:8090"
}

# In a scope of the user's manager (delegated), rt puts the container
# (Podman's cgroupfs manager names no cgroup) beside its own cgroup, in
# the delegated parent, and sets the limit there.
rootless_podman_memory_in_the_delegated_user_slice() {
	out=$(asu "systemd-run --user --scope -q podman --runtime $RT $PCG run --rm --network none --memory 64m $IMG cat /sys/fs/cgroup/memory.max" 2>&1) ||
		fail "podman run --memory: $out" || return 1
	want 67108864 "$out" "memory.max"
}

# A second user with subuids but no user manager (no linger, no login):
# no cgroup is delegated to it, so the limit cannot be set, and rt says so
# in one line instead of running the container without it.
rootless_podman_memory_refused_without_delegation() {
	id rtu2 >/dev/null 2>&1 || useradd -m -s /bin/sh rtu2 || return 1
	local d=/tmp/rtu2-run
	mkdir -p $d && chown rtu2 $d && chmod 700 $d
	as2() { runuser -u rtu2 -- env -i HOME=/home/rtu2 PATH=$PATH XDG_RUNTIME_DIR=$d sh -c "cd; $1"; }
	as2 "podman import -q /tmp/rt-host/bb.tar $IMG" >/dev/null || return 1
	out=$(as2 "podman --runtime $RT $PCG run --rm --network none --memory 64m $IMG cat /sys/fs/cgroup/memory.max" 2>&1) &&
		fail "podman run --memory ran without a delegated cgroup: $out" && return 1
	echo "$out" | grep -q "not delegated to this user" || fail "no clear refusal: $out" || return 1
	want "" "$(as2 "podman ps -aq")" "containers left"
}

rootless_podman_memory_limit_holds() {
	# 64m, and the container asks for more: the kernel kills it (137).
	out=$(asu "systemd-run --user --scope -q podman --runtime $RT $PCG run --rm --network none --memory 64m --memory-swap 64m $IMG sh -c 'head -c 200000000 /dev/zero | tail >/dev/null'" 2>&1)
	rc=$?
	want 137 "$rc" "exit of a container over its limit ($out)"
}

# runc 1.3.5's own integration suite against rt, and against runc 1.3.5 in
# the same run when asked (scripts/runc-suite.sh from the repository: a failure of rt's
# not in tests/runc-suite/expected-failures{,-cgroup2}.txt fails it). The
# figures go to the console; the TAP logs to /var/log/rt-host, which
# run.sh copies out.
runc_suite_rt_as_runc() {
	local out=/var/log/rt-host/runc-suite.out runner rc
	mkdir -p /var/log/rt-host
	rm -f /var/tmp/runc-suite/bats.log
	(cd /usr/local/lib/rt-host/repo &&
		RT_BIN=$RT RUNC_SUITE_DIR=/usr/local/lib/runc-suite \
			RUNC_SUITE_RUNC=$(cat /usr/local/lib/rt-host/runc-suite-runc) \
			BATS_TEST_TIMEOUT=600 RUNC_SUITE_TIMEOUT=14400 \
			bash scripts/runc-suite.sh $(cat /usr/local/lib/rt-host/runc-suite-files)) >$out 2>&1 &
	runner=$!
	# Each test's result on the console as it comes (the runs are long
	# under software emulation); tail ends with the runner.
	tail -F --pid=$runner /var/tmp/runc-suite/bats.log 2>/dev/null |
		grep --line-buffered -E '^((not )?ok |# )' | sed -u 's/\r$//; s/^/INFO runc-suite /' >/dev/ttyS0 &
	wait $runner
	rc=$?
	cp /var/tmp/runc-suite/bats-*.log /var/log/rt-host/ 2>/dev/null
	grep -E '^test-runc-suite: (rt|runc|side by side):' $out | sed 's/^/INFO /' >/dev/ttyS0
	grep -vE '^test-runc-suite: (rt|runc) \(' $out
	return $rc
}

# --- containerd 2.3.4 beside Debian's 1.6: integration/critest/run.sh (make
# test-critest's) runs a containerd 2.3.4 of its own (config version 3,
# its root, state and sockets under a scratch directory, SystemdCgroup =
# true, the CNI bridge crit0, the offline registry with the stand-in
# images) and, with that containerd up, this script again with the
# argument containerd23, which runs the checks named in CTD23_CHECKS;
# then it stops everything it started.
CTD23_BUNDLE=/usr/local/lib/containerd-2.3-bundle
CTD23_CHECKS="containerd23_crictl_info_shows_rt_v2_user_namespaces
containerd23_starts_rt_v2_through_the_bootstrap_protocol
containerd23_userns_pod_on_rt containerd23_userns_pod_on_rt_v2
containerd23_recursive_read_only_mount_on_rt containerd23_recursive_read_only_mount_on_rt_v2
containerd23_recursive_read_only_mount_on_runc
containerd23_oom_killed_reason_on_rt_v2
containerd23_oom_killed_reason_with_cgroupfs_on_three_handlers
containerd23_ctr_task_on_runc containerd23_ctr_task_on_rt containerd23_ctr_task_on_rt_v2"
BUSYBOX23=docker.io/library/busybox:1.36.1
MAP65536='[{"host_id": 65536, "container_id": 0, "length": 65536}]'

critest_run() { # SECONDS, then settings of critest/run.sh as VAR=VALUE
	local t=$1
	shift
	(cd /usr/local/lib/rt-host/repo && env CONTAINERD23_DIR=$CTD23_BUNDLE \
		CRITEST_INSTALL=/usr/local/lib/containerd-2.3 RT_BIN_DIR=/usr/local/bin \
		CRITEST_STANDIN=/usr/local/lib/rt-host/standin "$@" \
		timeout "$t" bash integration/critest/run.sh)
}

# critest in make test-host: its core, for the three handlers side by
# side (make test-host-critest runs all of it, about an hour more under
# emulation). Nine specs, one per path of the runtime a pod takes and the
# ones that found rt's bugs: execSync, a tty exec, attach, rshared
# propagation, a shared pid namespace (the kill --all of its containers),
# a read-only root, the default seccomp profile, an AppArmor profile, a
# user-namespaced pod. (Not MaskedPaths: the stand-in busybox runs ls as
# its own applet, so every handler fails it. Not the OOM spec: containerd's
# runc shim loses the OOMKilled reason now and then under systemd, a race
# of its own that would fail the check for the rt handler.)
CRITEST_CORE='should support execSync \[Conformance\]|Streaming runtime should support streaming interfaces runtime should support (exec with tty=true and stdin=true|attach) |mount with .rshared. should support propagation|NamespaceOption runtime should support PodPID|Security Context bucket runtime should support that ReadOnlyRootfs is true|SeccompProfilePath should support seccomp default on the container|AppArmor runtime should support apparmor field should enforce a apparmor_profile blocking writes|when Host idmap mount support is needed runtime should support NamespaceMode_POD'
CRITEST_OUT=/var/log/rt-host/critest.out

# The run that hosts critest and the checks below: its containerd, then
# critest (its core, or all of it with HOST_CRITEST=1), then the checks;
# what it leaves once it is done is what a user would find, so nothing of
# it may be left. critest's figures are judged by
# containerd23_critest_on_three_handlers.
containerd23_up() {
	local runner focus=$CRITEST_CORE t=2400
	if [ "$(cat /usr/local/lib/rt-host/critest 2>/dev/null)" = 1 ]; then
		focus='' t=13000
	fi
	mkdir -p /var/log/rt-host
	critest_run $t CRITEST_HANDLERS="runc rt rt-v2" CRITEST_FOCUS="$focus" CRITEST_IMAGES=$([ -n "$focus" ] && echo pod || echo all) \
		CRITEST_WORK=/var/tmp/critest \
		CRITEST_THEN="bash /usr/local/lib/rt-host/checks.sh containerd23" >$CRITEST_OUT 2>&1 &
	runner=$!
	# Its progress on the console as it comes (each handler takes long
	# under software emulation); tail ends with the run.
	tail -F --pid=$runner $CRITEST_OUT 2>/dev/null | grep --line-buffered -E '^test-critest: (critest |[a-z0-9-]+: [0-9]+ passed)' |
		while read -r l; do say "INFO $(date +%T) $l"; done &
	wait $runner
	# Each handler's results and junit report (every spec's time), and
	# containerd's log (the shims log there), come back with the logs.
	cp /var/tmp/critest/*.results /var/tmp/critest/*.xml /var/tmp/critest/critest-*.log /var/tmp/critest/containerd.log /var/log/rt-host/ 2>/dev/null
	# And what the kernel and systemd said of OOM kills (the OOM spec).
	journalctl -o short-precise --no-pager 2>/dev/null | grep -iE 'oom|killed process' >/var/log/rt-host/oom.log
	rm -rf /var/tmp/critest
	grep -q '^test-critest: running CRITEST_THEN' $CRITEST_OUT || fail "containerd 2.3.4 did not come up: $(tail -5 $CRITEST_OUT)" || return 1
	for p in /proc/[0-9]*; do
		c=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)
		case $c in
		*/containerd-2.3/bin/* | */var/tmp/critest/*) fail "left running: $c" || return 1 ;;
		esac
	done
	! ip link show crit0 >/dev/null 2>&1 || fail "the bridge crit0 is left"
}

# critest's table per handler on the console; a spec that passes with runc
# (Debian's 1.1.5) and fails with rt or rt-v2 fails the check
# (critest/run.sh's REGRESSION lines).
containerd23_critest_on_three_handlers() {
	grep -E '^(handler|runc|rt|rt-v2) ' $CRITEST_OUT | sed 's/^/INFO critest /' >/dev/ttyS0
	grep -E '^(REGRESSION|expected on this host|failed on)' $CRITEST_OUT | sed 's/^/INFO critest /' >/dev/ttyS0
	grep -q '^handler ' $CRITEST_OUT || fail "critest gave no table: $(grep '^test-critest' $CRITEST_OUT | tail -3)" || return 1
	! grep '^REGRESSION' $CRITEST_OUT
}

# In the containerd23 run (CRITEST_* from critest/run.sh).
cr() { timeout 120 "$CRITEST_BIN/crictl" --config "$CRI_CONFIG_FILE" --timeout 100s "$@"; }
ctd23_log() { echo "containerd.log:"; grep -E 'level=(error|warning)' "$CRITEST_WORK/containerd.log" | tail -6; }

# A pod of HANDLER (NAME; LINUX: the pod's linux.security_context fields)
# with one container sleeping (CTR_LINUX: its linux fields; CTR: more of
# its fields), started; prints the pod's and the container's ids. The
# pods go in test.slice, which critest/run.sh stops.
pod_with_sleeper() { # HANDLER NAME LINUX CTR_LINUX [CTR]
	local d=$W/ctd23-$2 pod ctr
	mkdir -p "$d"
	printf '{"metadata": {"name": "%s", "namespace": "rt-host", "uid": "%s-uid", "attempt": 0},
 "log_directory": "%s/logs",
 "linux": {"cgroup_parent": "test.slice", "security_context": {%s}}}\n' "$2" "$2" "$d" "$3" >"$d/pod.json"
	printf '{"metadata": {"name": "sleeper"}, "image": {"image": "%s"},
 "command": ["sleep", "3600"], "log_path": "sleeper.log", "linux": {%s}%s}\n' "$BUSYBOX23" "$4" "${5:+, $5}" >"$d/ctr.json"
	pod=$(cr runp --runtime "$1" "$d/pod.json" 2>&1) || fail "runp on $1: $pod" || return 1
	echo "$pod"
	ctr=$(cr create "$pod" "$d/ctr.json" "$d/pod.json" 2>&1) || fail "create on $1: $ctr" || return 1
	echo "$ctr"
	out=$(cr start "$ctr" 2>&1) || fail "start on $1: $out"
}
rm_pod() { [[ ! $1 =~ ^[0-9a-f]{64}$ ]] || cr rmp -f "$1" >/dev/null; }

containerd23_crictl_info_shows_rt_v2_user_namespaces() {
	cr info >$W/ctd23-info.json || fail "crictl info: $(cat $W/ctd23-info.json)" || return 1
	f=$(jq -c '.runtimeHandlers[] | select(.name == "rt-v2") | .features' $W/ctd23-info.json)
	want '{"recursive_read_only_mounts":true,"user_namespaces":true}' "$f" "rt-v2's features in crictl info"
}

containerd23_starts_rt_v2_through_the_bootstrap_protocol() {
	local ids pod line r=0
	ids=$(pod_with_sleeper rt-v2 bootstrap '' '')
	r=$?
	pod=$(echo "$ids" | head -1)
	if [ $r = 0 ]; then
		# BootstrapResult's task API v3, and the socket in the directory
		# the BootstrapParams named (a legacy start gets neither).
		line=$(grep "msg=\"connecting to shim $pod\"" "$CRITEST_WORK/containerd.log")
		echo "$line" | grep -q 'version=3' || { fail "no version=3: $line"; r=1; }
		echo "$line" | grep -qF "address=\"unix://$CRITEST_WORK/s/" || { fail "socket not in $CRITEST_WORK/s: $line"; r=1; }
	else
		echo "$ids"
		ctd23_log
	fi
	rm_pod "$pod"
	return $r
}

# What kubelet sends for hostUsers: false: userns mode POD with the pod's
# id mappings, on the pod and its containers.
userns_pod() { # HANDLER NAME
	local sc ids pod ctr out pid r=0
	sc="\"namespace_options\": {\"userns_options\": {\"mode\": 0, \"uids\": $MAP65536, \"gids\": $MAP65536}}"
	ids=$(pod_with_sleeper "$1" "$2" "$sc" "\"security_context\": {$sc}")
	r=$?
	pod=$(echo "$ids" | head -1)
	if [ $r = 0 ]; then
		ctr=$(echo "$ids" | sed -n 2p)
		out=$(cr exec -s "$ctr" sh -c 'cat /proc/self/uid_map /proc/self/gid_map; stat -c "%u %g" /bin/busybox; id -u' 2>&1 |
			tr -s ' \t' ' ' | sed 's/^ //')
		want "0 65536 65536
0 65536 65536
0 0
0" "$out" "uid_map, gid_map, the image's owner and id -u in the container" || r=1
		pid=$(cr inspect "$ctr" | jq -r .info.pid)
		want 65536 "$(ps -o uid= -p "$pid" | tr -d ' ')" "the container's uid on the host" || r=1
	else
		echo "$ids"
		ctd23_log
	fi
	rm_pod "$pod" || r=1
	return $r
}
containerd23_userns_pod_on_rt() { userns_pod rt userns-rt; }
containerd23_userns_pod_on_rt_v2() { userns_pod rt-v2 userns-rt-v2; }

# A host directory with a tmpfs below it, mounted read-only recursively:
# the tmpfs is read-only in the container too (a plain read-only bind
# leaves it writable).
rro_mount() { # HANDLER NAME
	local d=$W/ctd23-rro-$1 ids pod ctr out r=0
	mkdir -p "$d/sub"
	mount -t tmpfs -o size=1m tmpfs "$d/sub" || return 1
	ids=$(pod_with_sleeper "$1" "$2" '' '' "\"mounts\": [{\"container_path\": \"/mnt\", \"host_path\": \"$d\",
		\"readonly\": true, \"recursive_read_only\": true}]")
	r=$?
	pod=$(echo "$ids" | head -1)
	if [ $r = 0 ]; then
		ctr=$(echo "$ids" | sed -n 2p)
		out=$(cr exec -s "$ctr" sh -c 'touch /mnt/sub/f 2>&1; touch /mnt/f 2>&1; awk "\$5 == \"/mnt/sub\" {print \$6}" /proc/self/mountinfo | cut -d, -f1' 2>&1)
		want "touch: /mnt/sub/f: Read-only file system
touch: /mnt/f: Read-only file system
ro" "$out" "writes below the mount, its submount read-only in mountinfo" || r=1
		[ ! -e "$d/sub/f" ] || { fail "the file reached the host"; r=1; }
	else
		echo "$ids"
		ctd23_log
	fi
	rm_pod "$pod" || r=1
	umount "$d/sub" || r=1
	return $r
}
containerd23_recursive_read_only_mount_on_rt() { rro_mount rt rro-rt; }
containerd23_recursive_read_only_mount_on_rt_v2() { rro_mount rt-v2 rro-rt-v2; }
containerd23_recursive_read_only_mount_on_runc() { rro_mount runc rro-runc; }

# critest's OOM spec as kubelet meets it, three times over: a container
# whose memory limit (15 MiB, no swap) its first allocation (dd's 20 MiB
# buffer) exceeds ends with exit code 137 and the reason OOMKilled (not
# Error). Under the systemd driver the scope's cgroup goes with its last
# process, so the shim must have the kill counted before that (oom.rs).
# There only rt-v2: containerd's runc shim (the runc and rt handlers)
# loses the reason now and then in this race, and containerd's own CI
# skips the spec under the systemd driver for that reason (containerd
# PRs 12714 and 12819). With the cgroupfs driver, where containerd judges
# it, on all three handlers.
oom_killed() { # HANDLER NAME [CGROUP_PARENT]
	local d=$W/ctd23-$2 parent=${3:-test.slice} pod ctr out st i r=0
	mkdir -p "$d"
	printf '{"metadata": {"name": "%s", "namespace": "rt-host", "uid": "%s-uid", "attempt": 0},
 "log_directory": "%s/logs", "linux": {"cgroup_parent": "%s"}}\n' "$2" "$2" "$d" "$parent" >"$d/pod.json"
	pod=$(cr runp --runtime "$1" "$d/pod.json" 2>&1) || { fail "runp on $1: $pod"; return 1; }
	for i in 1 2 3; do
		printf '{"metadata": {"name": "oom-%s"}, "image": {"image": "%s"},
 "command": ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=20M"], "log_path": "oom-%s.log",
 "linux": {"resources": {"memory_limit_in_bytes": 15728640, "memory_swap_limit_in_bytes": 15728640}}}\n' \
			"$i" "$BUSYBOX23" "$i" >"$d/ctr.json"
		ctr=$(cr create "$pod" "$d/ctr.json" "$d/pod.json" 2>&1) || { fail "create on $1: $ctr"; r=1; break; }
		out=$(cr start "$ctr" 2>&1) || { fail "start on $1: $out"; r=1; break; }
		for _ in $(seq 60); do
			st=$(cr inspect "$ctr" | jq -r '.status | "\(.state) \(.exitCode) \(.reason)"')
			[ "${st%% *}" = CONTAINER_EXITED ] && break
			sleep 1
		done
		want "CONTAINER_EXITED 137 OOMKilled" "$st" "try $i: the state, exit code and reason of the container killed by the OOM killer" || { r=1; ctd23_log; }
	done
	rm_pod "$pod" || r=1
	return $r
}
containerd23_oom_killed_reason_on_rt_v2() { oom_killed rt-v2 oom-rt-v2; }
# The same with the cgroupfs driver (handlers runc-cgroupfs and
# rt-cgroupfs: containerd's runc shim with SystemdCgroup = false; rt-v2
# takes the driver from the path containerd gives it), each pod under a
# cgroup of its own below the root, removed after.
containerd23_oom_killed_reason_with_cgroupfs_on_three_handlers() {
	local h r=0
	for h in runc-cgroupfs rt-cgroupfs rt-v2; do
		oom_killed "$h" "oomfs-$h" "/rt-host-oomfs-$h" || { say "INFO oom cgroupfs: $h failed"; r=1; }
		rmdir "/sys/fs/cgroup/rt-host-oomfs-$h" 2>/dev/null
		[ ! -d "/sys/fs/cgroup/rt-host-oomfs-$h" ] || { fail "left: /sys/fs/cgroup/rt-host-oomfs-$h"; r=1; }
	done
	return $r
}

# A task through containerd 2.3.4's ctr, as a user drives one by hand (its
# default cgroup, /k8s.io/ID, cgroupfs; the image crictl pulled): exec with
# its exit status, pause and resume (the cgroup frozen and thawed), metrics
# (the cgroup v2 set), containerd restarted under it (the task still
# running, the same pid, exec again), then kill (SIGKILL: a TERM to the
# pid 1 of a pid namespace without a handler is dropped), rm; nothing left.
ctr23() { timeout 90 "$CRITEST_BIN/ctr" --address "$CRITEST_SOCK" -n k8s.io "$@"; }
ctr23_task() { ctr23 task ls | awk -v id="$1" -v c="$2" '$1 == id {print $c}'; } # ID COLUMN (2 pid, 3 status)
ctr23_status() { ctr23_task "$1" 3; }
ctr_task() { # ID, then ctr run's runtime options
	local id=$1 pid cg out rc r=0
	shift
	# A run that failed halfway may have left the container (or a task).
	out=$(ctr23 run -d "$@" "$BUSYBOX23" "$id" sleep 3600 2>&1) || {
		ctr23 task rm -f "$id" >/dev/null 2>&1
		ctr23 container rm "$id" >/dev/null 2>&1
		fail "ctr run: $out"
		return 1
	}
	pid=$(ctr23_task "$id" 2)
	cg=/sys/fs/cgroup$(cut -d: -f3 "/proc/$pid/cgroup")
	want "0::/k8s.io/$id" "$(cat "/proc/$pid/cgroup")" "the task's cgroup" || r=1
	out=$(ctr23 task exec --exec-id e1 "$id" sh -c 'echo in $(cat /proc/1/comm); exit 3' 2>&1)
	rc=$?
	want "in sleep" "$out" "exec's output" || r=1
	want 3 "$rc" "exec's exit status" || r=1
	out=$(ctr23 task pause "$id" 2>&1) || { fail "pause: $out"; r=1; }
	want PAUSED "$(ctr23_status "$id")" "status after pause" || r=1
	want "frozen 1" "$(grep frozen "$cg/cgroup.events")" "$cg/cgroup.events after pause" || r=1
	out=$(ctr23 task resume "$id" 2>&1) || { fail "resume: $out"; r=1; }
	want RUNNING "$(ctr23_status "$id")" "status after resume" || r=1
	want "frozen 0" "$(grep frozen "$cg/cgroup.events")" "$cg/cgroup.events after resume" || r=1
	# The cgroup v2 metrics, as the shim reads them from the task's cgroup.
	out=$(ctr23 task metrics --format json "$id" 2>&1)
	want 1 "$(echo "$out" | jq -r '.pids.current' 2>&1)" "metrics' pids.current ($out)" || r=1
	[ "$(echo "$out" | jq -r '.memory.usage // 0' 2>/dev/null)" -gt 0 ] 2>/dev/null ||
		{ fail "metrics' memory.usage: $out"; r=1; }
	out=$("$CRITEST_WORK/restart-containerd" 2>&1) || { fail "$out"; r=1; }
	want RUNNING "$(ctr23_status "$id")" "status after a containerd restart" || r=1
	want "$pid" "$(ctr23_task "$id" 2)" "the task's pid after a containerd restart" || r=1
	out=$(ctr23 task exec --exec-id e2 "$id" echo again 2>&1)
	want again "$out" "exec after a containerd restart" || r=1
	out=$(ctr23 task kill -s KILL "$id" 2>&1) || { fail "kill: $out"; r=1; }
	for _ in $(seq 100); do [ "$(ctr23_status "$id")" = STOPPED ] && break; sleep 0.1; done
	want STOPPED "$(ctr23_status "$id")" "status after kill -s KILL" || r=1
	ctr23 task rm "$id" >/dev/null 2>&1 || ctr23 task rm -f "$id" >/dev/null 2>&1
	ctr23 container rm "$id" >/dev/null 2>&1 || r=1
	! kill -0 "$pid" 2>/dev/null || { fail "process $pid is left"; kill -KILL "$pid"; r=1; }
	[ ! -d "$cg" ] || { fail "cgroup $cg is left"; r=1; }
	[ -z "$(ctr23 container ls -q | grep -x "$id")" ] || { fail "container $id is left"; r=1; }
	return $r
}
containerd23_ctr_task_on_runc() { ctr_task ctr23-runc; }
containerd23_ctr_task_on_rt() { ctr_task ctr23-rt --runc-binary /usr/local/bin/rt; }
containerd23_ctr_task_on_rt_v2() { ctr_task ctr23-rt-v2 --runtime io.containerd.rt.v2; }

# Run by critest/run.sh with its containerd up. Debian's runc 1.1.5, the
# baseline, has no idmapped mounts, so containerd refuses it a
# user-namespaced pod: what it says goes to the console.
containerd23_checks() {
	local c out msg
	out=$(cr pull "$BUSYBOX23" 2>&1) || { say "FAIL containerd23_pull: crictl pull $BUSYBOX23: $out"; return 1; }
	for c in $CTD23_CHECKS; do check "$c" "$c"; done
	if [ -z "$only" ] || echo containerd23_runc_baseline | grep -Eq "$only"; then
		say "INFO containerd23 runc: crictl info's features: $(jq -c '.runtimeHandlers[] | select(.name == "runc") | .features' $W/ctd23-info.json 2>/dev/null)"
		out=$(userns_pod runc userns-runc 2>&1) && out=runs
		msg=$(echo "$out" | grep -o 'failed to validate OCI runtime features: [^"]*' | head -1)
		say "INFO containerd23 runc: userns pod: ${msg:-$(echo "$out" | grep -v '^[0-9a-f]\{64\}$' | head -2 | tr '\n' ' ')}"
	fi
}

if [ "${1:-}" = containerd23 ]; then
	containerd23_checks
	exit 0
fi

say "RT-HOST start $(uname -r) $(systemctl --version | head -1)"
rootfs
check docker_uses_systemd_cgroups_v2 docker_setup
check docker_run_prints_and_exits docker_run_prints_and_exits
check docker_run_exit_code_is_kept docker_run_exit_code_is_kept
check docker_run_d_then_exec docker_run_d_then_exec
check docker_logs_has_the_output docker_logs_has_the_output
check docker_stop_stops_it docker_stop_stops_it
check docker_rm_removes_container_and_scope docker_rm_removes_container_and_scope
check docker_container_runs_in_its_systemd_scope docker_container_runs_in_its_systemd_scope
check docker_apparmor_label_is_docker_default docker_apparmor_label_is_docker_default
check docker_memory_64m_holds docker_memory_64m_holds
check docker_memory_is_a_unit_property docker_memory_is_a_unit_property
check docker_cpus_half_is_cpu_max docker_cpus_half_is_cpu_max
check docker_pids_limit_20_holds docker_pids_limit_20_holds
check docker_update_changes_the_limits docker_update_changes_the_limits
check docker_stats_reads_the_cgroup docker_stats_reads_the_cgroup
check daemon_reload_keeps_limits daemon_reload_keeps_limits
check docker_default_runtime_is_rt docker_default_runtime_is_rt
check docker_published_port_answers docker_published_port_answers
check docker_container_reaches_another_by_ip docker_container_reaches_another_by_ip
check docker_exec_it_has_a_terminal docker_exec_it_has_a_terminal
check docker_stop_start_restart_keep_serving docker_stop_start_restart_keep_serving
check docker_named_volume_outlives_its_container docker_named_volume_outlives_its_container
check docker_classic_build_runs_on_rt docker_classic_build_runs_on_rt
check docker_commit_push_pull_run docker_commit_push_pull_run
check docker_rm_and_container_prune docker_rm_and_container_prune
check docker_buildkit_build_runs_on_rt_as_runc docker_buildkit_build_runs_on_rt_as_runc
check rt_create_makes_a_scope_with_the_limits rt_create_makes_a_scope_with_the_limits
check rt_start_and_update_set_unit_properties rt_start_and_update_set_unit_properties
check rt_pause_and_resume_in_the_scope rt_pause_and_resume_in_the_scope
check rt_delete_stops_the_unit rt_delete_stops_the_unit
check rt_failed_create_leaves_no_unit rt_failed_create_leaves_no_unit
check rt_run_without_a_path_uses_rt_scope rt_run_without_a_path_uses_rt_scope
check rt_features_lists_apparmor_and_systemd rt_features_lists_apparmor_and_systemd
check rt_apparmor_profile_not_loaded_is_named rt_apparmor_profile_not_loaded_is_named
check rt_apparmor_profile_applies rt_apparmor_profile_applies
check ctr_image_import ctr_setup
check ctr_runc_shim_with_rt_and_systemd_cgroup ctr_runc_shim_with_rt_and_systemd_cgroup
check ctr_memory_limit_through_systemd ctr_memory_limit_through_systemd
check ctr_rt_shim_publishes_tasks_oom ctr_rt_shim_publishes_tasks_oom
check cri_images_import cri_images
check cri_pod_with_limits_in_systemd_scopes cri_pod_with_limits_in_systemd_scopes
check cri_pod_on_the_rt_v2_handler_in_systemd_scopes cri_pod_on_the_rt_v2_handler_in_systemd_scopes
check cri_pod_ip_answers_on_the_rt_handler cri_pod_ip_answers_on_the_rt_handler
check cri_pod_ip_answers_on_the_rt_v2_handler cri_pod_ip_answers_on_the_rt_v2_handler
check podman_image_import podman_setup
check podman_run_memory_and_default_pids_limit podman_run_memory_and_default_pids_limit
check podman_run_d_in_a_libpod_scope_then_exec podman_run_d_in_a_libpod_scope_then_exec
check podman_stop_and_rm podman_stop_and_rm
check podman_published_port_answers podman_published_port_answers
check podman_build_runs_on_rt podman_build_runs_on_rt
check podman_run_v_volume_persists podman_run_v_volume_persists
check rootless_user_with_a_delegated_manager rootless_setup
check rootless_rt_run_as_the_user rootless_rt_run_as_the_user
check rootless_podman_systemd_manager_scope_with_memory rootless_podman_systemd_manager_scope_with_memory
check rootless_podman_slirp4netns_default_network rootless_podman_slirp4netns_default_network
check rootless_podman_published_port_answers rootless_podman_published_port_answers
check rootless_podman_memory_in_the_delegated_user_slice rootless_podman_memory_in_the_delegated_user_slice
check rootless_podman_memory_limit_holds rootless_podman_memory_limit_holds
check rootless_podman_memory_refused_without_delegation rootless_podman_memory_refused_without_delegation
check criu_check_passes criu_check_passes
check criu_counter_continues_after_restore criu_counter_continues_after_restore
check criu_leave_running_keeps_it_running criu_leave_running_keeps_it_running
check criu_restore_runs_the_create_hooks criu_restore_runs_the_create_hooks
check criu_restored_container_is_held_by_rt_shim criu_restored_container_is_held_by_rt_shim
check criu_restore_into_a_new_id criu_restore_into_a_new_id
check criu_pre_dump_then_dump criu_pre_dump_then_dump
check criu_tcp_connection_kept_with_tcp_established criu_tcp_connection_kept_with_tcp_established
check criu_terminal_container_gets_a_new_console criu_terminal_container_gets_a_new_console
check criu_restore_into_a_systemd_scope criu_restore_into_a_systemd_scope
check criu_podman_checkpoint_restore_and_export criu_podman_checkpoint_restore_and_export
check criu_containerd_checkpoint_through_rt_v2 criu_containerd_checkpoint_through_rt_v2
if [ -x /usr/local/lib/runc-suite/run.sh ]; then
	check runc_suite_rt_as_runc runc_suite_rt_as_runc
elif [ -z "$only" ] || echo runc_suite_rt_as_runc | grep -Eq "$only"; then
	say "SKIP runc_suite_rt_as_runc: runc's suite was not on the host (../shared/runc-suite)"
fi
ctd23_wanted() {
	[ -z "$only" ] && return 0
	echo "containerd23_up $CTD23_CHECKS containerd23_critest_on_three_handlers" | tr ' ' '\n' | grep -Eq "$only"
}
if [ ! -x $CTD23_BUNDLE/install.sh ]; then
	! ctd23_wanted || say "SKIP containerd23: containerd 2.3 was not on the host (../shared/containerd-2.3)"
elif ctd23_wanted; then
	only='' check containerd23_up containerd23_up
	only='' check containerd23_critest_on_three_handlers containerd23_critest_on_three_handlers
fi
say "RT-HOST done"
systemctl poweroff --force
