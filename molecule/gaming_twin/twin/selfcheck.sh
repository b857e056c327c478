#!/usr/bin/env bash
# End-to-end check of the twin's boundary (issue 10), by hand or from a test: every step must
# fail when the thing it checks is broken. Leaves the twin up (as `twin.sh up` would) with no
# containers of its own running. Prints one "ok:" line per check and the measured times.
#   molecule/gaming_twin/twin/selfcheck.sh [--skip-push]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TWIN="$HERE/twin.sh"
SMI="$HERE/gpu/bin/nvidia-smi"
STATE=/run/homelab-twin/gpu
VLLM=vllm/vllm-openai:v0.32.0
T() { "$TWIN" docker "$@"; }
ok() { printf 'ok: %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }
used() { "$SMI" --query-gpu=memory.used --format=csv,noheader,nounits; }  # one GPU: one line
models() { "$TWIN" exec curl -fs -H 'Authorization: Bearer twin-check' http://127.0.0.1:8000/v1/models 2>/dev/null || true; }
# no `| grep -q` / `grep -m1` on a producer: with pipefail its SIGPIPE would fail the check
first_bridge() { docker run --rm homelab/debian:bookworm python3 -c 'import socket; print(socket.gethostbyname(socket.gethostname()))'; }
cleanup() { T rm -f twin-check-a twin-check-b twin-check-b2 twin-check-c twin-check-d >/dev/null 2>&1 || true; }
trap cleanup EXIT

t=$(now); "$TWIN" up; ok "twin.sh up in $(since "$t") s"
# it ends with down/up: never under someone else's containers (a scenario's twin instance)
others=$(T ps --format '{{.Names}}' | grep -v '^twin-check-' || true)
[ -z "$others" ] || fail "the twin daemon runs other containers ($others): not disturbing them"
ip=$(first_bridge) || fail "the first daemon's default bridge is broken after up"
ok "first daemon: a container on the default bridge runs ($ip) with the twin up"

if [ "${1:-}" != "--skip-push" ]; then
  t=$(now); "$TWIN" push-images; ok "push-images in $(since "$t") s"
fi

# registry: a push through 5055 is pullable from the mirror at once (no blob-descriptor cache)
tag="probe-$(date +%s%N)"
docker tag homelab/debian:bookworm "127.0.0.1:5055/homelab-twin/probe:$tag"
docker push -q "127.0.0.1:5055/homelab-twin/probe:$tag" >/dev/null
docker image rm "127.0.0.1:5055/homelab-twin/probe:$tag" >/dev/null
T pull -q "homelab-twin/probe:$tag" >/dev/null || fail "a fresh push is not pullable through the mirror"
T image rm "homelab-twin/probe:$tag" >/dev/null
ok "pushed homelab-twin/probe:$tag from the first daemon, pulled by the twin daemon"
T image rm "$VLLM" >/dev/null 2>&1 || true
t=$(now); T pull -q "$VLLM" >/dev/null || fail "twin daemon cannot pull $VLLM"
ok "twin daemon pulled $VLLM in $(since "$t") s"
if out=$(T pull vllm/vllm-openai:v9.9.9-never-pushed 2>&1); then fail "a never-pushed tag pulled"; fi
case "$out" in *"not found: manifest unknown"*) ;; *) fail "never-pushed tag failed otherwise: $out";; esac
ok "never-pushed tag fails as a missing image does: $out"

# the GPU hook: device 0 is given, device 3 is refused like nvidia-container-cli
got=$(T run --rm --gpus '"device=0"' debian:bookworm python3 -c \
  'import json; g = json.load(open("/run/twin-gpu/gpu.json"))["gpus"]; print(g[0]["name"], g[0]["cuda_free_mib"])')
ok "--gpus device=0 runs and sees: $got"
if out=$(T run --rm --gpus '"device=3"' debian:bookworm true 2>&1); then fail "device=3 was accepted"; fi
case "$out" in *"nvidia-container-cli: device error: 3: unknown device"*) ;; *) fail "device=3 refused otherwise: $out";; esac
ok "--gpus device=3 refused: ${out##*stderr: }"

# the nvidia_container_toolkit role's probe: nothing GPU-specific in the image, nvidia-smi injected
T pull -q nvidia/cuda:12.4.1-base-ubuntu22.04 >/dev/null
got=$(T run --rm --pull never --gpus all nvidia/cuda:12.4.1-base-ubuntu22.04 nvidia-smi -L)
case "$got" in "GPU 0: NVIDIA GeForce RTX 3090 (UUID: GPU-"*) ok "toolkit probe: nvidia-smi -L in a GPU container: $got";;
  *) fail "toolkit probe got: $got";; esac
if T run --rm nvidia/cuda:12.4.1-base-ubuntu22.04 nvidia-smi -L >/dev/null 2>&1; then
  fail "nvidia-smi ran in a container that was given no GPU"
fi
ok "no --gpus: no nvidia-smi in the container"

# image builds on the twin daemon reach PyPI through the netns NAT (with the host's CA bundle)
T run --rm -v /etc/ssl/certs/ca-certificates.crt:/tmp/ca.crt:ro debian:bookworm python3 -c \
  'import ssl, urllib.request; urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=20, context=ssl.create_default_context(cafile="/tmp/ca.crt")).read(64)' \
  || fail "a twin container cannot reach PyPI"
ok "a twin container reaches PyPI"

gaming_args=(--model Qwen/Qwen3-32B-AWQ --served-model-name qwen3-32b-awq --quantization awq_marlin
  --dtype float16 --max-model-len 7936 --gpu-memory-utilization 0.9 --max-num-seqs 16
  --reasoning-parser qwen3 --host 0.0.0.0)

echo 1536 >"$STATE/desktop_mib"
[ "$(used)" -eq 1536 ] || fail "nvidia-smi used $(used) MiB with only the desktop (1536)"
t=$(now)
T run -d --name twin-check-a --gpus '"device=0"' -e VLLM_API_KEY=twin-check -p 127.0.0.1:8000:8000 \
  --shm-size 2g "$VLLM" "${gaming_args[@]}" --port 8000 >/dev/null
for _ in $(seq 1 150); do
  case "$(models)" in *'"id":"qwen3-32b-awq"'*) break;; esac
  [ "$(T inspect -f '{{.State.Running}}' twin-check-a)" = true ] || { T logs twin-check-a 2>&1 | tail -20; fail "vLLM stand-in exited"; }
  sleep 2
done
case "$(models)" in *'"id":"qwen3-32b-awq"'*) ;; *) fail "vLLM stand-in did not serve /v1/models";; esac
ok "vLLM stand-in at 0.9 with the desktop at 1536 MiB passed the check and serves /v1/models (ready in $(since "$t") s)"
line=$(T logs twin-check-a 2>&1 | grep 'STAND-IN' || true); printf '%s\n' "${line:0:400}"
[ "$(used)" -eq $((1536 + 22119)) ] || fail "nvidia-smi used $(used) MiB, expected 1536 + 22119 with vLLM up"
ok "nvidia-smi shows $(used) MiB used (desktop 1536 + vLLM 22119)"

if out=$(T run --name twin-check-b --gpus '"device=0"' "$VLLM" "${gaming_args[@]}" --port 8001 2>&1); then
  fail "a second vLLM started beside the first"
fi
case "$out" in *"ValueError: Free memory on device cuda:0 (0.9/24.0 GiB) on startup is less than desired GPU memory utilization (0.9, 21.6 GiB)"*) ;;
  *) fail "second vLLM failed otherwise: $out";; esac
ok "second vLLM refused: $(printf '%s\n' "$out" | grep ValueError)"

# the planner's real gaming arguments (0.86 + --kv-cache-memory-bytes) beside the running vLLM
if out=$(T run --name twin-check-b2 --gpus '"device=0"' "$VLLM" --model Qwen/Qwen3-32B-AWQ --quantization awq_marlin \
    --max-model-len 7936 --gpu-memory-utilization 0.86 --kv-cache-memory-bytes 2094006272 --port 8003 2>&1); then
  fail "a vLLM with --kv-cache-memory-bytes started beside the first"
fi
case "$out" in *"on startup is less than desired GPU memory utilization (0.86, 20.64 GiB)"*) ok "planner-style vLLM (0.86 + kv bytes) refused beside the first";;
  *) fail "planner-style vLLM failed otherwise: $out";; esac
T rm twin-check-b twin-check-b2 >/dev/null

T stop twin-check-a >/dev/null
[ "$(used)" -eq 1536 ] || fail "nvidia-smi used $(used) MiB after vLLM stopped (expected 1536)"
ok "after stopping vLLM nvidia-smi shows $(used) MiB used"

echo 4608 >"$STATE/desktop_mib"
if out=$(T run --name twin-check-c --gpus '"device=0"' "$VLLM" "${gaming_args[@]}" --port 8002 2>&1); then
  fail "vLLM at 0.9 started with 4608 MiB on the desktop"
fi
case "$out" in *"(19.5/24.0 GiB) on startup is less than desired GPU memory utilization (0.9, 21.6 GiB)"*) ;;
  *) fail "desktop-4608 vLLM failed otherwise: $out";; esac
ok "desktop at 4608 MiB: vLLM at 0.9 refused"
echo 1536 >"$STATE/desktop_mib"

# alone, the planner-style arguments pass and hold weights + KV bytes + runtime (21961 MiB)
T run -d --name twin-check-d --gpus '"device=0"' "$VLLM" --model Qwen/Qwen3-32B-AWQ --quantization awq_marlin \
  --max-model-len 7936 --gpu-memory-utilization 0.86 --kv-cache-memory-bytes 2094006272 --port 8004 >/dev/null
for _ in $(seq 1 30); do [ "$(used)" -gt 1536 ] && break; sleep 1; done
[ "$(used)" -eq $((1536 + 21961)) ] || fail "planner-style vLLM: nvidia-smi used $(used), expected 1536 + 21961"
ok "planner-style vLLM alone passes; nvidia-smi shows $(used) MiB used"
T rm -f twin-check-d >/dev/null

if out=$(T run --rm "$VLLM" --model x --no-such-flag 2>&1); then fail "a bad flag was accepted"; fi
case "$out" in *"unrecognized arguments: --no-such-flag"*) ok "bad flag refused by vLLM's parser";;
  *) fail "bad flag failed otherwise: $out";; esac

cleanup
t=$(now); "$TWIN" down; ok "twin.sh down in $(since "$t") s"
ip=$(first_bridge) || fail "the first daemon's default bridge is broken after down"
ok "first daemon: a container on the default bridge runs ($ip) after down"
"$TWIN" up
echo "selfcheck passed"
