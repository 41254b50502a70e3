#!/usr/bin/env bash
# Creates (or updates) the Secret ripples-secrets that the Deployments and Jobs mount, from
# the files deploy/compose/init-secrets.sh makes (the same names, `_` → `-` as Secret keys).
#   usage: deploy/k8s/create-secret.sh NAMESPACE [--dry-run] [folder]
#     folder   where the secret files are kept (default: deploy/k8s/secrets, git-ignored);
#              missing files are created; existing ones are kept
#     --dry-run  print the Secret as YAML instead of applying it
# Set RIPPLES_DATABASE_URL to your PostgreSQL before the first run, and the vendor values
# (GREENHOUSE_SECRET_KEY, …) as deploy/compose/init-secrets.sh and deploy/README.md say.
set -euo pipefail
namespace="${1:?usage: create-secret.sh NAMESPACE [--dry-run] [folder]}"
shift
dry_run=""
if [ "${1:-}" = "--dry-run" ]; then dry_run=1; shift; fi
here="$(cd "$(dirname "$0")" && pwd)"
dir="${1:-$here/secrets}"
if [ -n "$dry_run" ] && [ "$#" -eq 0 ]; then
  dir="$(mktemp -d)"; trap 'rm -rf "$dir"' EXIT
fi
bash "$here/../compose/init-secrets.sh" "$dir" >&2
# Kubernetes only: the SCRAM user of the Kafka cluster (KAFKA_SASL_USERNAME, _PASSWORD).
write() { [ -s "$dir/$1" ] || (umask 022; printf '%s' "$2" > "$dir/$1"); }
write kafka_sasl_username "${KAFKA_SASL_USERNAME:-ripples}"
write kafka_sasl_password "${KAFKA_SASL_PASSWORD:-$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')}"
args=()
for file in "$dir"/*; do
  name="$(basename "$file")"
  # compose only (postgres, Grafana); keep grafana_database_password for your Grafana
  case "$name" in postgres_password|grafana_admin_password|grafana_database_password) continue ;; esac
  args+=("--from-file=${name//_/-}=$file")
done
secret() {
  kubectl create secret generic ripples-secrets --namespace "$namespace" "${args[@]}" \
    --dry-run=client -o yaml
}
if [ -n "$dry_run" ]; then secret; else secret | kubectl apply -f -; fi
