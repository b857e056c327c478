#!/bin/sh
# Render the nginx config from the template (only our variables: nginx's own $vars stay), test it,
# then run nginx in the foreground. Everything it writes lives under /tmp (read-only root fs).
# `--check` renders and tests the config only (the image build's check command); other arguments
# run instead (debugging).
set -eu
if [ "$#" -gt 0 ] && [ "$1" != "--check" ]; then exec "$@"; fi
mkdir -p /tmp/nginx
envsubst '${DASHBOARD_PORT} ${VLLM_UPSTREAM} ${IMAGE_SERVER_UPSTREAM} ${PROMETHEUS_UPSTREAM} ${DASHBOARD_RESOLVER} ${DASHBOARD_RATE_LIMIT} ${DASHBOARD_RATE_BURST} ${DASHBOARD_CONN_LIMIT}' \
  < /etc/nginx/templates/nginx.conf.template > /tmp/nginx/nginx.conf
if [ "$#" -gt 0 ]; then exec nginx -e stderr -t -c /tmp/nginx/nginx.conf; fi
nginx -e stderr -t -q -c /tmp/nginx/nginx.conf
exec nginx -e stderr -c /tmp/nginx/nginx.conf -g 'daemon off;'
