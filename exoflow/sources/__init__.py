"""Sources produce listing parts: Arrow tables with one row per entry (see ``entries``)."""
