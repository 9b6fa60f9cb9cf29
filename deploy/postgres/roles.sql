-- Least-privilege roles for Flokie on PostgreSQL (docs/deployment.md, "Database").
-- Run once as a superuser, connected to the application database, with psql:
--   psql -v ON_ERROR_STOP=1 -v app_password="$FLOKIE_APP_PASSWORD" \
--        -v migrator_password="$FLOKIE_MIGRATOR_PASSWORD" -d flokie -f roles.sql
-- flokie_migrator owns the schema objects and runs `npx flokie migrate` (DDL).
-- flokie_app is what the service logs in as: it reads and writes rows, and can neither create,
-- alter, drop nor truncate anything.
CREATE ROLE flokie_migrator LOGIN PASSWORD :'migrator_password'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE ROLE flokie_app LOGIN PASSWORD :'app_password'
  NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 200;

-- Nobody else connects or makes temporary tables in this database.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO flokie_migrator, flokie_app', current_database()) \gexec

-- Only the migrator creates objects in the schema (PostgreSQL < 15 lets everyone by default).
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO flokie_migrator;
GRANT USAGE ON SCHEMA public TO flokie_app;

-- Every table and sequence the migrator creates, now or later: rows only, for the service.
ALTER DEFAULT PRIVILEGES FOR ROLE flokie_migrator IN SCHEMA public
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO flokie_app;
ALTER DEFAULT PRIVILEGES FOR ROLE flokie_migrator IN SCHEMA public
  GRANT USAGE, SELECT ON SEQUENCES TO flokie_app;
-- Objects that already exist (a database migrated before these roles were made).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO flokie_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO flokie_app;
