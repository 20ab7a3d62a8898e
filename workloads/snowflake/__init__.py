"""The Snowflake deep dive: the lab's tables and SQL steps written as Snowflake SQL, checked on DuckDB."""
