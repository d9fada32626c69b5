"""The run store: schema, migrations and every SQL statement, behind typed methods."""
