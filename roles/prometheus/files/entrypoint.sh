#!/bin/sh
# Write the scrape keys from the environment into the container's tmpfs (mode 0600, never in the
# image or a host file), drop them from the environment, then run Prometheus with the arguments given
# (retention and the like). `--check` tests the configuration with promtool instead (the image build's
# check; placeholder keys stand in for the real ones, which the build never sees).
set -eu
umask 077
mkdir -p /tmp/secrets
if [ -n "${PROMETHEUS_VLLM_API_KEY:-}" ]; then printf '%s' "$PROMETHEUS_VLLM_API_KEY" > /tmp/secrets/vllm_api_key; fi
if [ -n "${PROMETHEUS_IMAGE_SERVER_API_KEY:-}" ]; then printf '%s' "$PROMETHEUS_IMAGE_SERVER_API_KEY" > /tmp/secrets/image_server_api_key; fi
if [ -n "${PROMETHEUS_ROUTER_API_KEY:-}" ]; then printf '%s' "$PROMETHEUS_ROUTER_API_KEY" > /tmp/secrets/router_api_key; fi
unset PROMETHEUS_VLLM_API_KEY PROMETHEUS_IMAGE_SERVER_API_KEY PROMETHEUS_ROUTER_API_KEY
if [ "${1:-}" = "--check" ]; then
  for name in vllm_api_key image_server_api_key router_api_key; do
    [ -s "/tmp/secrets/$name" ] || printf 'placeholder' > "/tmp/secrets/$name"
  done
  exec promtool check config /etc/prometheus/prometheus.yml
fi
exec prometheus --config.file=/etc/prometheus/prometheus.yml --storage.tsdb.path=/prometheus \
  --web.listen-address=:9090 "$@"
