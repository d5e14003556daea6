"""CRM integration and events out (001 "пишет результат обратно в CRM", 003 §10.6): adapters behind one interface
(:mod:`dialer.crm.base`), the outbox filled in the same transaction as results (:mod:`dialer.crm.outbox`), the
delivery worker (:mod:`dialer.crm.worker`), signed webhooks (:mod:`dialer.crm.webhook`), reads into contact lists
(:mod:`dialer.crm.reader`) and the integration API. See docs/crm.md."""
