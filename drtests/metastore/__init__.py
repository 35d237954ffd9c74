"""The Hive Metastore's PostgreSQL database: schema, seed, checks."""
