#!/usr/bin/env bash
# Creates the secret files docker-compose.yml reads (and deploy/k8s/create-secret.sh turns
# into the Kubernetes Secret), once. Existing files are kept, so running it again changes
# nothing. The folder is git-ignored and only its owner may enter it; the files inside are
# world-readable because compose bind-mounts them into containers that run as their own
# non-root users (uid 10001, grafana 472).
#   usage: deploy/compose/init-secrets.sh [folder]   (default: deploy/compose/secrets)
#
# Values Ripples chooses itself are random. Values a vendor gives you are taken from the
# environment when set (see deploy/README.md "Secrets and settings"), else a random
# placeholder is written: replace the file with the vendor's value before connecting it.
#   GREENHOUSE_SECRET_KEY   the secret key you set on Greenhouse's webhook
#   TEAMTAILOR_SIGNATURE_KEY  the signature key Teamtailor shows for the webhook
#   LEVER_SIGNATURE_TOKEN   the signature token Lever shows for the webhook
#   LEVER_API_KEY           a Lever API key (read opportunities)
#   LINKEDIN_CLIENT_SECRET  the LinkedIn app's client secret
#   TEAMTAILOR_API_KEY      a Teamtailor API key (read job applications, candidates, jobs)
#   RIPPLES_DATABASE_URL    your PostgreSQL (default: compose's postgres service)
set -euo pipefail
dir="${1:-$(dirname "$0")/secrets}"
mkdir -p "$dir"
chmod 700 "$dir"
random() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }
write() { # name value: write only when missing
  if [ ! -s "$dir/$1" ]; then (umask 022; printf '%s' "$2" > "$dir/$1"); echo "created $dir/$1"; fi
}
write postgres_password "$(random)"
# The owner of the schema (the migrations job) and one least-privilege role per service and
# for Grafana (deploy/postgres/roles.sh creates them): RIPPLES_DATABASE_HOST (host:port) and
# RIPPLES_DATABASE_NAME say where your PostgreSQL is (default: compose's postgres service).
host="${RIPPLES_DATABASE_HOST:-postgres:5432}"
database="${RIPPLES_DATABASE_NAME:-ripples}"
write database_url \
  "${RIPPLES_DATABASE_URL:-postgresql://ripples:$(cat "$dir/postgres_password")@$host/$database}"
for service in ingest attribution notifier; do
  write "${service}_database_url" "postgresql://ripples_$service:$(random)@$host/$database"
done
write grafana_database_password "$(random)"
# Bearer keys of the three APIs (comma-separated lists: add a key, roll clients, drop the old).
write ingest_api_keys "$(random)"
write attribution_api_keys "$(random)"
write notifier_api_keys "$(random)"
# The reader keys of ingest's key API (POST /v1/keys:lookup: attribution and the notifier open
# sealed personal fields with them; they use the first): apart from the HR systems' keys.
write key_reader_api_keys "$(random)"
# Ingest: the key that pseudonymises applicant ids, and the connectors' vendor secrets.
write applicant_id_secret "$(random)"
write greenhouse_secret_key "${GREENHOUSE_SECRET_KEY:-$(random)}"
write teamtailor_signature_key "${TEAMTAILOR_SIGNATURE_KEY:-$(random)}"
write lever_signature_token "${LEVER_SIGNATURE_TOKEN:-$(random)}"
write lever_api_key "${LEVER_API_KEY:-$(random)}"
write linkedin_client_secret "${LINKEDIN_CLIENT_SECRET:-$(random)}"
write teamtailor_api_key "${TEAMTAILOR_API_KEY:-$(random)}"
# The LinkedIn connect flow: the HMAC key of invitation links, and the AES-256-GCM key of the
# tokens at rest (services/ingest/tokens.py: URL-safe base64 of 32 random bytes; to rotate,
# put a new key first, comma-separated, and drop the old one once every token is re-encrypted).
write connect_secret "$(random)"
write token_keys "$(random)"
# The employee's page: the HMAC keys of its links (ingest verifies, ingest and the notifier
# sign; comma-separated, the first signs: to rotate, put a new key first, drop the old one
# once the links it signed have expired, 30 days).
write page_link_secrets "$(random)"
# Notifier: the HMAC key of the webhook channel's signatures.
write notifier_webhook_secret "$(random)"
write grafana_admin_password "$(random)"
