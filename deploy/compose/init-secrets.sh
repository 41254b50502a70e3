#!/usr/bin/env bash
# Creates the secret files docker-compose.yml reads, once, with random values. Existing files
# are kept, so running it again changes nothing. The folder is git-ignored and only its owner
# may enter it; the files inside are world-readable because compose bind-mounts them into
# containers that run as their own non-root users (uid 10001, grafana 472).
#   usage: deploy/compose/init-secrets.sh [folder]   (default: deploy/compose/secrets)
set -euo pipefail
dir="${1:-$(dirname "$0")/secrets}"
mkdir -p "$dir"
chmod 700 "$dir"
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
write() { # name value: write only when missing
  if [ ! -s "$dir/$1" ]; then (umask 022; printf '%s' "$2" > "$dir/$1"); echo "created $dir/$1"; fi
}
write postgres_password "$(random)"
write database_url "postgresql://ripples:$(cat "$dir/postgres_password")@postgres:5432/ripples"
write ingest_api_keys "$(random)"
write notifier_webhook_secret "$(random)"
write grafana_admin_password "$(random)"
