#!/bin/sh
# Render the nginx config from the template (only our variables: nginx's own $vars stay), test it,
# then run nginx in the foreground. Everything it writes lives under /tmp (read-only root fs).
# With arguments it runs them instead (the image build's check command, debugging).
set -eu
if [ "$#" -gt 0 ]; then exec "$@"; fi
mkdir -p /tmp/nginx
envsubst '${DASHBOARD_PORT} ${VLLM_UPSTREAM} ${IMAGE_SERVER_UPSTREAM} ${DASHBOARD_RESOLVER}' \
  < /etc/nginx/templates/nginx.conf.template > /tmp/nginx/nginx.conf
nginx -e stderr -t -q -c /tmp/nginx/nginx.conf
exec nginx -e stderr -c /tmp/nginx/nginx.conf -g 'daemon off;'
