"""Call recordings' API (issue #16 §1): search, playback with HTTP Range, download, time-limited links for
integrations, the spool's state; every listen and download is in the audit log (003 §10.1). Files and the worker:
:mod:`dialer.media.recordings`; docs/recordings.md."""
