"""Fields, contact lists, contacts, and getting contacts in and out (import, export) — 000 §3–§5, 002 §5.5.

* :mod:`.service` — fields, lists and contacts (validation, phones, filters, deletes).
* :mod:`.indexes` — the per-field expression indexes, built concurrently after commit.
* :mod:`.importer` — streaming CSV/XLSX import with COPY (:func:`.importer.run_import`).
* :mod:`.exporter` — streaming CSV/XLSX export.
* :mod:`.phonelookup` — region / zones / carrier of a number: phone codes first, then ``phonenumbers``.
* :mod:`.cli` — ``dialer import`` and ``dialer bench import``; :mod:`.bench` — the import benchmark.
"""
