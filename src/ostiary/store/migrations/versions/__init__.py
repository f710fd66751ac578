"""Schema revisions, oldest first. Each is frozen once released: change the schema in a new one."""
