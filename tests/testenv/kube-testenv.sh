#!/usr/bin/env bash
# A real Kubernetes control plane (etcd + kube-apiserver, no nodes) on loopback, for tests.
#
#   kube-testenv.sh build        build kube-apiserver once from Debian's `kubernetes` source package
#   kube-testenv.sh up DIR       start etcd and kube-apiserver; certs, logs, pids, kubeconfig and env in DIR
#   kube-testenv.sh down DIR     stop what `up DIR` started; succeeds if nothing is running
#   kube-testenv.sh status DIR   report on DIR's control plane; exits 0 only if the apiserver is ready
#
# After `up`, tests use DIR/kubeconfig, or source DIR/env (KUBECONFIG, STRATA_KUBE_SERVER,
# STRATA_KUBE_CA, STRATA_KUBE_TOKEN).
#
# Environment:
#   STRATA_CACHE                  cache root (default: $HOME/.cache/strata)
#   STRATA_TESTENV_READY_TIMEOUT  seconds to wait for etcd and for the apiserver each (default: 60)
#
# Debian bookworm ships no kube-apiserver binary, but it ships the Kubernetes 1.20.2 source with its
# vendor/ tree, etcd 3.4 and Go 1.19: scripts/install-deps.sh installs those and enables deb-src.
set -euo pipefail

readonly kCacheDir="${STRATA_CACHE:-$HOME/.cache/strata}/kube-apiserver"
readonly kReadyTimeoutSeconds="${STRATA_TESTENV_READY_TIMEOUT:-60}"
readonly kStopTimeoutSeconds=15
readonly kPortAttempts=3
readonly kServiceCidr=10.96.0.0/24

log() { printf 'kube-testenv: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '2,7s/^# \{0,1\}//p' "$0" >&2
  exit 2
}

# Wall clock in milliseconds. EPOCHREALTIME's decimal separator follows the locale: keep digits only.
now_ms() {
  local us=${EPOCHREALTIME//[!0-9]/}
  echo $((us / 1000))
}

format_ms() { printf '%d.%01ds' $(($1 / 1000)) $(($1 % 1000 / 100)); }

# ---------------------------------------------------------------------------------------------------
# build

# The Debian source version keys the cache, so a security update of the package means a rebuild.
# Prints nothing when apt knows no `kubernetes` source (deb-src disabled or never `apt-get update`d).
debian_source_version() {
  local version best=
  while read -r version; do
    if [[ -z $best ]] || dpkg --compare-versions "$version" gt "$best"; then best=$version; fi
  done < <(apt-cache showsrc --only-source kubernetes 2>/dev/null | awk '$1 == "Version:" { print $2 }')
  printf '%s' "$best"
}

# Prints the path of the kube-apiserver binary to use; it may not be built yet. Without apt's source
# lists a binary already in the cache still serves, so a warm machine needs no apt metadata.
apiserver_path() {
  local version
  version=$(debian_source_version)
  if [[ -n $version ]]; then
    printf '%s/%s/kube-apiserver' "$kCacheDir" "$version"
    return 0
  fi
  local cached
  cached=$(find "$kCacheDir" -mindepth 2 -maxdepth 2 -name kube-apiserver -type f -perm -u+x 2>/dev/null |
    sort -V | tail -n 1)
  [[ -n $cached ]] || die "apt knows no 'kubernetes' source package and nothing is cached in $kCacheDir;" \
    "run scripts/install-deps.sh (it enables deb-src and runs apt-get update)"
  printf '%s' "$cached"
}

check_build_tools() {
  local tool missing=()
  for tool in apt-get dpkg-source go make rsync flock; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ]] ||
    missing+=(golang-github-modern-go-reflect2-dev)
  ((${#missing[@]} == 0)) || die "missing ${missing[*]}; run scripts/install-deps.sh"
}

# Runs in a subshell (note the parentheses) so that its lock fd and cleanup trap end with it.
cmd_build() (
  local bin version
  bin=$(apiserver_path)
  version=$(basename "$(dirname "$bin")")
  if [[ -x $bin ]]; then
    log "kube-apiserver (Debian kubernetes $version) is cached: $bin"
    return 0
  fi
  check_build_tools
  mkdir -p "$kCacheDir"

  # Parallel `up`s on a cold cache must neither build twice nor race on the final rename.
  exec {lock_fd}>"$kCacheDir/.lock"
  if ! flock -n "$lock_fd"; then
    log "another build holds $kCacheDir/.lock; waiting for it"
    flock "$lock_fd"
  fi
  if [[ -x $bin ]]; then
    log "kube-apiserver was built by a concurrent run: $bin"
    return 0
  fi
  # Work trees of interrupted builds: with the lock held nobody else is using them.
  rm -rf "$kCacheDir"/.build.*

  # Build under the cache (same filesystem as the result: the final mv is an atomic rename) and
  # delete the ~280 MB tree whatever happens.
  local work
  work=$(mktemp -d "$kCacheDir/.build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  # Bash skips EXIT traps when a signal kills it; turn the usual ones into an exit.
  trap 'exit 130' INT
  trap 'exit 143' TERM

  local start_ms
  start_ms=$(now_ms)
  log "building kube-apiserver from Debian kubernetes $version in $work (several minutes)"
  # apt warns that it downloads unsandboxed: the work dir is root's and _apt cannot write it. Harmless.
  (cd "$work" && apt-get source -q "kubernetes=$version")
  local src
  src=$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n 1)
  [[ -n $src ]] || die "apt-get source left no kubernetes-* directory in $work"

  # The vendored reflect2 1.0.1 crashes ("fatal error: fault" in mapiterinit) on Go >= 1.18;
  # Debian's packaged copy (1.0.2) fixes it. Its tests would only drag in test-only imports.
  local reflect2="$src/vendor/github.com/modern-go/reflect2"
  rm -rf "$reflect2"
  cp -rL /usr/share/gocode/src/github.com/modern-go/reflect2 "$reflect2"
  find "$reflect2" -name '*_test.go' -delete

  # A GOPATH build, as Debian's own packaging (debian/rules) does it; no module downloads happen.
  mkdir -p "$src/.go/src/k8s.io" "$work/home"
  ln -s ../../.. "$src/.go/src/k8s.io/kubernetes"
  (cd "$src" && GOPATH="$src/.go" CGO_ENABLED=0 HOME="$work/home" make WHAT=cmd/kube-apiserver)

  local built="$src/_output/bin/kube-apiserver"
  "$built" --version >/dev/null || die "the built $built does not run"
  mkdir -p "$(dirname "$bin")"
  cp "$built" "$bin.tmp"
  mv -f "$bin.tmp" "$bin"
  log "built $("$bin" --version) (Debian kubernetes $version) in $(format_ms $(($(now_ms) - start_ms))): $bin"
)

# ---------------------------------------------------------------------------------------------------
# processes

# True if PID is a live process (not a zombie) whose command line mentions DIR. Checking DIR guards
# against a stale pid file whose PID the kernel has since given to an unrelated process.
is_ours() {
  local pid=$1 dir=$2 state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dir/"
}

read_pid() { cat "$1" 2>/dev/null || true; }

running_pid() { # running_pid DIR NAME: prints the PID if NAME runs for DIR
  local pid
  pid=$(read_pid "$1/$2.pid")
  if is_ours "$pid" "$1"; then printf '%s' "$pid"; else return 1; fi
}

# spawn DIR NAME CMD...: starts CMD in the background with output in DIR/NAME.log, PID in DIR/NAME.pid.
# setsid puts it in a session of its own: it outlives this script, CTest or a terminal does not
# signal it with ours, and it holds no stdio of the caller (CTest waits for its pipes to close).
# The sh wrapper records its own PID and then execs CMD, so the recorded PID is CMD's even when
# setsid has to fork.
spawn() {
  local dir=$1 name=$2
  shift 2
  local pidfile="$dir/$name.pid"
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $$, $0 and $@ are the inner shell's
  setsid sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
    </dev/null >"$dir/$name.log" 2>&1 &
  local deadline=$(($(now_ms) + 5000))
  until [[ -s $pidfile ]]; do
    (($(now_ms) < deadline)) || die "$name did not start (no $pidfile)"
    sleep 0.05
  done
}

# stop DIR NAME: TERM, wait up to kStopTimeoutSeconds, then KILL. Success if it was not running.
stop() {
  local dir=$1 name=$2 pid
  if pid=$(running_pid "$dir" "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$(($(now_ms) + kStopTimeoutSeconds * 1000))
    while is_ours "$pid" "$dir" && (($(now_ms) < deadline)); do sleep 0.1; done
    if is_ours "$pid" "$dir"; then
      log "$name (pid $pid) ignored TERM for ${kStopTimeoutSeconds}s; sending KILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$(($(now_ms) + 5000))
      while is_ours "$pid" "$dir" && (($(now_ms) < deadline)); do sleep 0.1; done
      ! is_ours "$pid" "$dir" || die "$name (pid $pid) survived KILL"
    fi
    # Once `up` has exited the daemon is an orphan, and its zombie lingers until PID 1 reaps it (up to
    # ~1 s under some container inits). It holds nothing, but give it a moment so that callers
    # checking with pgrep see nothing left.
    deadline=$(($(now_ms) + 3000))
    while [[ -e /proc/$pid ]] && (($(now_ms) < deadline)); do sleep 0.1; done
    log "stopped $name (pid $pid)"
  fi
  rm -f "$dir/$name.pid" "$dir/$name.pid.tmp"
}

stop_all() {
  # The apiserver first: stopped after etcd it would spend its shutdown retrying etcd.
  stop "$1" kube-apiserver
  stop "$1" etcd
}

# wait_until DIR NAME CHECK...: polls CHECK until it succeeds (0), NAME exits (2) or the deadline
# passes (1).
wait_until() {
  local dir=$1 name=$2
  shift 2
  local deadline=$(($(now_ms) + kReadyTimeoutSeconds * 1000))
  while :; do
    if "$@"; then return 0; fi
    running_pid "$dir" "$name" >/dev/null || return 2
    (($(now_ms) < deadline)) || return 1
    sleep 0.2
  done
}

# Three distinct free loopback ports. All sockets stay bound until all are chosen, so the ports
# differ; another run may still grab one before our daemons bind it, which `up` detects and retries.
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

port_conflict() { grep -qi 'address already in use' "$1/$2.log" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------------
# up

generate_credentials() (
  local dir=$1
  umask 077
  cat >"$dir/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = strata-testenv
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
EOF
  openssl req -x509 -config "$dir/openssl.cnf" -extensions ca_ext -newkey rsa:2048 -nodes \
    -subj /CN=strata-testenv-ca -days 365 -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl req -new -config "$dir/openssl.cnf" -newkey rsa:2048 -nodes \
    -subj /CN=localhost -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
  openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 \
    -extfile "$dir/openssl.cnf" -extensions server_ext -out "$dir/tls.crt" 2>/dev/null
  rm -f "$dir/tls.csr"
  # Service-account tokens: the apiserver signs with the private key and verifies with the public one.
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  # Static token auth: one admin in system:masters, which RBAC's bootstrap policy lets do anything.
  local token
  token=$(openssl rand -hex 32)
  printf '%s,strata-admin,strata-admin,"system:masters"\n' "$token" >"$dir/tokens.csv"
)

admin_token() { cut -d, -f1 "$1/tokens.csv"; }

# A subshell, for its umask: the files hold the admin token.
write_client_config() (
  local dir=$1 server=$2 etcd=$3 token
  token=$(admin_token "$dir")
  umask 077
  cat >"$dir/kubeconfig.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: strata-testenv
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 "$dir/ca.crt")
users:
- name: strata-admin
  user:
    token: $token
contexts:
- name: strata-testenv
  context:
    cluster: strata-testenv
    user: strata-admin
    namespace: default
current-context: strata-testenv
EOF
  mv -f "$dir/kubeconfig.tmp" "$dir/kubeconfig"
  # Plain NAME=value lines, so the file can be sourced by a shell and also read by simpler parsers.
  {
    printf 'KUBECONFIG=%q\n' "$dir/kubeconfig"
    printf 'STRATA_KUBE_SERVER=%q\n' "$server"
    printf 'STRATA_KUBE_CA=%q\n' "$dir/ca.crt"
    printf 'STRATA_KUBE_TOKEN=%q\n' "$token"
    printf 'STRATA_ETCD_ENDPOINT=%q\n' "$etcd"
    printf 'export KUBECONFIG STRATA_KUBE_SERVER STRATA_KUBE_CA STRATA_KUBE_TOKEN STRATA_ETCD_ENDPOINT\n'
  } >"$dir/env.tmp"
  mv -f "$dir/env.tmp" "$dir/env"
)

etcd_healthy() { curl -fsS --max-time 2 "$1/health" 2>/dev/null | grep -q '"health":"true"'; }

# The token goes in a header file, not argv, where any local user could read it with ps.
apiserver_ready() { # apiserver_ready DIR SERVER
  curl -fsS --max-time 2 --cacert "$1/ca.crt" \
    -H @<(printf 'Authorization: Bearer %s\n' "$(admin_token "$1")") "$2/readyz" >/dev/null 2>&1
}

start_etcd() { # start_etcd DIR CLIENT_PORT PEER_PORT
  local dir=$1 client="http://127.0.0.1:$2" peer="http://127.0.0.1:$3"
  spawn "$dir" etcd etcd --name strata-testenv --data-dir "$dir/etcd" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
    --initial-cluster "strata-testenv=$peer" --initial-cluster-state new
}

start_apiserver() { # start_apiserver DIR BINARY ETCD_PORT SECURE_PORT
  local dir=$1 bin=$2
  # --cert-dir keeps it from writing to /var/run/kubernetes. --endpoint-reconciler-type=none: there
  # are no other apiservers, and the `kubernetes` Service's endpoints cannot hold a loopback address.
  # --allow-privileged=true as every real cluster sets it (kubeadm, kind, ...): the chart's node
  # DaemonSets (CSI node plugin) run privileged containers.
  spawn "$dir" kube-apiserver "$bin" \
    --etcd-servers="http://127.0.0.1:$3" \
    --bind-address=127.0.0.1 --secure-port="$4" --cert-dir="$dir/apiserver-certs" \
    --tls-cert-file="$dir/tls.crt" --tls-private-key-file="$dir/tls.key" \
    --service-account-key-file="$dir/sa.pub" --service-account-signing-key-file="$dir/sa.key" \
    --service-account-issuer=https://localhost \
    --token-auth-file="$dir/tokens.csv" --authorization-mode=RBAC \
    --service-cluster-ip-range="$kServiceCidr" \
    --endpoint-reconciler-type=none --profiling=false --allow-privileged=true
}

show_logs() {
  local dir=$1 name
  for name in etcd kube-apiserver; do
    [[ -s $dir/$name.log ]] || continue
    log "---- last lines of $dir/$name.log ----"
    tail -n 25 "$dir/$name.log" >&2
  done
}

# Starts etcd and the apiserver once on fresh ports. Returns 0 when ready, 3 when a port was taken
# under us (worth another try with new ports), 1 on any other failure.
# Callers test its status, which turns `set -e` off in here: check each step.
start_control_plane() {
  local dir=$1 bin=$2 etcd_port peer_port api_port rc
  if ! read -r etcd_port peer_port api_port < <(free_ports 3) || [[ -z $api_port ]]; then
    log "could not pick free loopback ports"
    return 1
  fi
  local etcd="http://127.0.0.1:$etcd_port" server="https://127.0.0.1:$api_port"

  # Every `up` starts from an empty cluster.
  rm -rf "$dir/etcd" "$dir/apiserver-certs"
  start_etcd "$dir" "$etcd_port" "$peer_port"
  rc=0
  wait_until "$dir" etcd etcd_healthy "$etcd" || rc=$?
  if ((rc != 0)); then
    if port_conflict "$dir" etcd; then return 3; fi
    log "etcd $( ((rc == 2)) && echo exited || echo "was not healthy after ${kReadyTimeoutSeconds}s")"
    return 1
  fi

  write_client_config "$dir" "$server" "$etcd" || return 1
  local start_ms
  start_ms=$(now_ms)
  start_apiserver "$dir" "$bin" "$etcd_port" "$api_port"
  rc=0
  wait_until "$dir" kube-apiserver apiserver_ready "$dir" "$server" || rc=$?
  if ((rc != 0)); then
    if port_conflict "$dir" kube-apiserver; then return 3; fi
    log "kube-apiserver $( ((rc == 2)) && echo exited || echo "was not ready after ${kReadyTimeoutSeconds}s")"
    return 1
  fi
  log "kube-apiserver ready at $server $(format_ms $(($(now_ms) - start_ms))) after its start" \
    "(etcd at $etcd; pids $(read_pid "$dir/kube-apiserver.pid"), $(read_pid "$dir/etcd.pid"))"
}

is_up() {
  local dir=$1
  [[ -f $dir/env ]] || return 1
  running_pid "$dir" etcd >/dev/null && running_pid "$dir" kube-apiserver >/dev/null || return 1
  local server
  server=$(sed -n 's/^STRATA_KUBE_SERVER=//p' "$dir/env")
  apiserver_ready "$dir" "$server"
}

cmd_up() {
  local dir=$1
  mkdir -p "$dir"
  # Absolute: the daemons' flags, the kubeconfig and the pid checks must not depend on our cwd.
  dir=$(cd "$dir" && pwd)
  if is_up "$dir"; then
    log "already up: $(sed -n 's/^STRATA_KUBE_SERVER=//p' "$dir/env") (source $dir/env)"
    return 0
  fi
  # Leftovers of a crashed or half-finished run would hold the ports or the data dir.
  stop_all "$dir"
  rm -f "$dir/env" "$dir/kubeconfig"

  command -v etcd >/dev/null || die "etcd not found; run scripts/install-deps.sh"
  local tool
  for tool in openssl curl python3 setsid; do
    command -v "$tool" >/dev/null || die "$tool not found; run scripts/install-deps.sh"
  done
  cmd_build
  local bin
  bin=$(apiserver_path)

  # From here on, a failure or an interrupt must not leave daemons behind.
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'up_failed "$dir"' EXIT
  generate_credentials "$dir"
  # Failures leave the daemons running until up_failed has shown their logs: stopped first, the
  # apiserver would bury the cause under the goroutine dump it writes when TERM hits it mid-start.
  local attempt rc
  for ((attempt = 1; ; attempt++)); do
    rc=0
    start_control_plane "$dir" "$bin" || rc=$?
    ((rc == 0)) && break
    ((rc == 3)) || die "control plane in $dir did not come up"
    ((attempt < kPortAttempts)) || die "ports were taken under us $kPortAttempts times in a row"
    log "a port was taken by someone else meanwhile; retrying with new ports ($attempt/$kPortAttempts)"
    stop_all "$dir"
  done
  trap - EXIT INT TERM
  log "up: export KUBECONFIG=$dir/kubeconfig (or: source $dir/env)"
}

up_failed() {
  local rc=$? dir=$1
  ((rc != 0)) || return 0
  log "up failed; stopping what it started"
  show_logs "$dir"
  stop_all "$dir"
  rm -f "$dir/env"
  exit "$rc"
}

# ---------------------------------------------------------------------------------------------------
# down, status

cmd_down() {
  local dir=$1
  if [[ ! -d $dir ]]; then
    log "down: $dir does not exist; nothing runs"
    return 0
  fi
  dir=$(cd "$dir" && pwd)
  stop_all "$dir"
  # Without daemons the env file would point tests at a dead server.
  rm -f "$dir/env"
  log "down: nothing of $dir runs"
}

cmd_status() {
  local dir=$1 name pid server="" ready=1
  [[ -d $dir ]] && dir=$(cd "$dir" && pwd)
  for name in etcd kube-apiserver; do
    if pid=$(running_pid "$dir" "$name"); then
      echo "$name: running (pid $pid)"
    else
      echo "$name: stopped"
    fi
  done
  [[ -f $dir/env ]] && server=$(sed -n 's/^STRATA_KUBE_SERVER=//p' "$dir/env")
  if [[ -n $server ]] && running_pid "$dir" kube-apiserver >/dev/null &&
    apiserver_ready "$dir" "$server"; then
    ready=0
    echo "apiserver: ready at $server (KUBECONFIG=$dir/kubeconfig)"
  else
    echo "apiserver: not ready"
  fi
  return "$ready"
}

main() {
  (($# >= 1)) || usage
  local cmd=$1
  shift
  case $cmd in
  build)
    (($# == 0)) || usage
    cmd_build
    ;;
  up | down | status)
    if (($# != 1)) || [[ -z $1 ]]; then usage; fi
    "cmd_$cmd" "$1"
    ;;
  -h | --help | help) usage ;;
  *) usage ;;
  esac
}

main "$@"
