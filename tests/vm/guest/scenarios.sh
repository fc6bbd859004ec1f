# Guest side of the VM scenarios, sourced by /init. Each scenario_NAME runs
# with the HXFR_* variables taken from the kernel command line (HXFR_PORT,
# HXFR_FRAMES, HXFR_SIZE, HXFR_BLOCK, ...), prints the JSON summary of the
# program under test between @@HXFR-BEGIN@@ and @@HXFR-END@@, and sends
# the bytes it received back to the host through the virtio-serial port
# org.hxfr.out (a file on the host), announcing their size and SHA-256 so
# that the host can tell a complete copy from a truncated one.

# Runs a command with its stdout between the result markers; returns its
# exit status.
result() {
    echo "@@HXFR-BEGIN@@"
    rc=0
    "$@" || rc=$?
    echo "@@HXFR-END $rc@@"
    return $rc
}

# Copies FILE to the host through org.hxfr.out.
send_output() {
    port_link org.hxfr.out || return 1
    [ -f "$1" ] || { echo "scenario: no output file $1"; return 1; }
    cat "$1" > /dev/virtio-ports/org.hxfr.out || return 1
    echo "@@HXFR-OUT $(wc -c < "$1") $(sha256sum "$1" | cut -d' ' -f1)@@"
}

# QEMU user-mode networking: the guest is 10.0.2.15, the host 10.0.2.2.
net_up() {
    ip link set lo up
    ip link set eth0 up || return 1
    ip addr add 10.0.2.15/24 dev eth0 || return 1
    ip route add default via 10.0.2.2
}

# Starts a guest-side server in the background and waits until it prints
# the line PATTERN (it says so once it listens), at most about 20 s.
# Stores its pid in bg_pid and its output in /tmp/bg.log.
start_bg() {
    pattern=$1
    shift
    "$@" > /tmp/bg.log 2>&1 &
    bg_pid=$!
    i=0
    while [ $i -lt 200 ]; do
        grep -q "$pattern" /tmp/bg.log 2>/dev/null && return 0
        kill -0 $bg_pid 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "scenario: background server did not start:"
    cat /tmp/bg.log
    return 1
}

# --- plumbing checks with hxfr-vm-probe (no hxfr code involved) ---

scenario_probe_serial() {
    port_link org.hxfr.0 || return 1
    result hxfr-vm-probe echo serial:/dev/virtio-ports/org.hxfr.0 \
        "$HXFR_FRAMES" "$HXFR_BLOCK" /tmp/out.bin || return 1
    send_output /tmp/out.bin
}

scenario_probe_tcp() {
    net_up || return 1
    result hxfr-vm-probe echo "tcp:10.0.2.2:$HXFR_PORT" \
        "$HXFR_FRAMES" "$HXFR_BLOCK" /tmp/out.bin || return 1
    send_output /tmp/out.bin
}

scenario_probe_vsock() {
    start_bg listening hxfr-vm-probe echo-server "vsock:$HXFR_PORT" || return 1
    result hxfr-vm-probe echo "vsock:1:$HXFR_PORT" \
        "$HXFR_FRAMES" "$HXFR_BLOCK" /tmp/out.bin || return 1
    wait $bg_pid || { echo "scenario: echo server failed"; cat /tmp/bg.log; return 1; }
    send_output /tmp/out.bin
}

scenario_probe_ivshmem() {
    result hxfr-vm-probe ivshmem /tmp/out.bin || return 1
    send_output /tmp/out.bin
}
