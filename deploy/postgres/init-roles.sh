#!/bin/sh
# docker-compose.yml mounts this into the postgres image's /docker-entrypoint-initdb.d/: on the
# first start of an empty data volume it creates the two Flokie roles from roles.sql.
set -eu
: "${FLOKIE_APP_PASSWORD:?set FLOKIE_APP_PASSWORD in deploy/postgres.env}"
: "${FLOKIE_MIGRATOR_PASSWORD:?set FLOKIE_MIGRATOR_PASSWORD in deploy/postgres.env}"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$FLOKIE_APP_PASSWORD" -v migrator_password="$FLOKIE_MIGRATOR_PASSWORD" \
  -f /flokie/roles.sql
