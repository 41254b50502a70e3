#!/bin/sh
# The PostgreSQL roles of a deployment (deploy/README.md "PostgreSQL roles"), from the secret
# files deploy/compose/init-secrets.sh makes: one login role per service (its password is the
# one in <service>_database_url) and ripples_grafana (grafana_database_password). Run it
# before the first migration run: the migrations 0090_* grant each role its privileges.
#   usage: deploy/postgres/roles.sh [folder]   prints the SQL (default folder: deploy/k8s/secrets)
# In the compose postgres container it runs from /docker-entrypoint-initdb.d at the first
# start and applies the SQL itself (folder /run/secrets).
set -eu
if [ -n "${POSTGRES_USER:-}" ] && [ -d /docker-entrypoint-initdb.d ]; then
  dir=/run/secrets
else
  dir="${1:-$(dirname "$0")/../k8s/secrets}"
fi
password() { sed -E 's#^[a-z]+://[^:/@]+:([^@]+)@.*#\1#' "$dir/$1_database_url"; }
sql() {
  for service in ingest attribution notifier; do
    echo "create role ripples_$service login password '$(password "$service")';"
  done
  echo "create role ripples_grafana login password '$(cat "$dir/grafana_database_password")';"
}
if [ "$dir" = /run/secrets ]; then
  sql | psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB"
else
  sql
fi
