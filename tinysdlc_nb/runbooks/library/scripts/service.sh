#!/usr/bin/env bash
# Start, stop and switch the sample service of one service root, for the runbooks in the
# folder above.
#
# Usage:
#   service.sh status ROOT            print the state; exit 0 running, 3 not running
#   service.sh current ROOT           print the version `current` points at (empty if none)
#   service.sh stop ROOT              stop the service and wait until it has exited
#   service.sh start ROOT PORT        start bin/serve of the current release in its own session
#   service.sh restart ROOT PORT      stop, then start
#   service.sh switch ROOT VERSION    point `current` at releases/VERSION atomically
#
# Layout of ROOT: releases/VERSION/ (bin/serve and VERSION in each), current (a symbolic
# link to releases/VERSION), previous (the version before current; may be empty),
# run/service.pid and run/service.log.
set -euo pipefail

STOP_TIMEOUT_S=10
START_TIMEOUT_S=5

usage() {
    echo "usage: service.sh status|current|stop ROOT | start|restart ROOT PORT |" \
        "switch ROOT VERSION" >&2
    exit 2
}

fail() {
    echo "service.sh: $*" >&2
    exit 1
}

# Succeed when process $1 exists and has not exited. On Linux, /proc shows a zombie
# (exited, not yet reaped by its parent), which kill -0 still finds.
is_alive() {
    local pid=$1 state
    kill -0 "$pid" 2>/dev/null || return 1
    [ -r "/proc/$pid/stat" ] || return 0

    state=$(sed -E 's/^.*\) (.).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$state" != Z ]
}

# Succeed when process $1 is alive and runs bin/serve, so a pid that a crash left in the
# pid file and the system has since given to another program is never stopped.
is_service() {
    local pid=$1
    is_alive "$pid" || return 1
    [ -r "/proc/$pid/cmdline" ] || return 0

    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'bin/serve'
}

# Print the pid from the pid file when that process is the running service.
running_pid() {
    local pid
    [ -s "$pid_file" ] || return 1
    pid=$(cat "$pid_file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    is_service "$pid" || return 1
    echo "$pid"
}

current_version() {
    local target
    target=$(readlink "$root/current" 2>/dev/null) || return 0
    basename "$target"
}

check_version_name() {
    case "$1" in
        '' | . | .. | */* | .*) fail "version '$1' is invalid; use a plain folder name such as 1.2.0" ;;
    esac
}

do_status() {
    local pid
    if pid=$(running_pid); then
        echo "running: pid $pid, release $(current_version)"
        return 0
    fi

    echo "not running: no live service pid in $pid_file (current release:" \
        "$(current_version || true))"
    return 3
}

do_stop() {
    local pid i
    if ! pid=$(running_pid); then
        rm -f "$pid_file"
        echo "not running: nothing to stop"
        return 0
    fi

    echo "stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_TIMEOUT_S * 10; i++)); do
        if ! is_service "$pid"; then
            rm -f "$pid_file"
            echo "stopped pid $pid"
            return 0
        fi
        sleep 0.1
    done

    echo "pid $pid still running after ${STOP_TIMEOUT_S}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        if ! is_service "$pid"; then
            rm -f "$pid_file"
            echo "killed pid $pid"
            return 0
        fi
        sleep 0.1
    done
    fail "pid $pid did not exit after SIGKILL; look at it with: ps -o pid,stat,cmd -p $pid"
}

do_start() {
    local port=$1 release serve pid i offset
    [[ $port =~ ^[0-9]+$ ]] || fail "port '$port' is invalid; give a number from 1 to 65535"
    # The link is resolved once here, so a switch while the interpreter is still starting
    # cannot change the release that starts.
    release=$(readlink -f "$root/current") || fail "no current link in $root; deploy a release first"
    serve="$release/bin/serve"
    [ -x "$serve" ] || fail "$serve is missing or not executable; deploy a release first"
    if pid=$(running_pid); then
        fail "the service is already running as pid $pid; use restart"
    fi

    mkdir -p "$root/run"
    offset=$(stat -c %s "$log_file" 2>/dev/null || echo 0)
    # setsid gives the service its own session, so it outlives the step that started it
    # and a step timeout, which kills the step's process group, does not reach it. All
    # three standard streams are redirected so the step's output closes when the step ends.
    PORT=$port setsid nohup "$serve" >>"$log_file" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$pid_file"

    # serve logs "(pid N)" once it listens; a START_FAIL file or a busy port ends it first.
    for ((i = 0; i < START_TIMEOUT_S * 10; i++)); do
        # Not is_service: until exec runs, the child's command line is this script's.
        if ! is_alive "$pid"; then
            rm -f "$pid_file"
            echo "--- last lines of $log_file ---" >&2
            tail -n 5 "$log_file" >&2 || true
            fail "the service exited at start (pid $pid); see the lines above"
        fi
        if tail -c +$((offset + 1)) "$log_file" | grep -qF "(pid $pid)"; then
            echo "started pid $pid, release $(current_version), port $port"
            return 0
        fi
        sleep 0.1
    done
    fail "pid $pid is running but did not log that it listens within ${START_TIMEOUT_S}s;" \
        "read $log_file"
}

do_switch() {
    local version=$1 link="$root/current.new"
    check_version_name "$version"
    [ -d "$root/releases/$version" ] || fail "release folder $root/releases/$version not found"

    # rename(2) replaces the link in one step, so no reader ever sees `current` missing.
    ln -sfn "releases/$version" "$link"
    mv -T "$link" "$root/current"
    echo "current -> releases/$version"
}

[ $# -ge 2 ] || usage
action=$1
root=$2
pid_file="$root/run/service.pid"
log_file="$root/run/service.log"

case "$action" in
    status) do_status ;;
    current) current_version ;;
    stop) do_stop ;;
    start) [ $# -eq 3 ] || usage; do_start "$3" ;;
    restart) [ $# -eq 3 ] || usage; do_stop; do_start "$3" ;;
    switch) [ $# -eq 3 ] || usage; do_switch "$3" ;;
    *) usage ;;
esac
