"""ClickHouse table definitions: DDL templates (``*.sql``) and their renderer (:mod:`.ddl`)."""
