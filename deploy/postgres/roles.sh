#!/bin/sh
# Login role of Grafana's datasource: a member of parkenergy_grafana (migration
# 0004: SELECT on the api views only). Run once the migrations are applied;
# idempotent (the password is reset to GRAFANA_DB_PASSWORD on every run).
set -eu
: "${GRAFANA_DB_USER:?}" "${GRAFANA_DB_PASSWORD:?}"
psql -v ON_ERROR_STOP=1 \
     -v grafana_user="$GRAFANA_DB_USER" -v grafana_password="$GRAFANA_DB_PASSWORD" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'grafana_user')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'grafana_user') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'grafana_user', :'grafana_password') \gexec
SELECT format('GRANT parkenergy_grafana TO %I', :'grafana_user') \gexec
SQL
echo "role $GRAFANA_DB_USER ready (member of parkenergy_grafana)"
