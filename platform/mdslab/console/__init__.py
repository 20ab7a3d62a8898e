"""The lab console (``mdslab console``): one web page over the whole lab: services and UIs with their health,
tables, runs, quarantine, SQL, questions to the RAG index, the catalog and lineage.

It is a roof, like the CLI and the API app: every panel is a library call the CLI already makes (`mdslab
status`, `tables`, `sql`, `ask`, `catalog show`, `lineage`), rendered as HTML on the server."""
