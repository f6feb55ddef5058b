"""The web UI of ``baton server``: server-rendered pages and fragments over the read store, one
live stream per page. See ``baton/ui/README.md`` for what each module holds."""
