"""Campaign configuration: completion codes, strategies, holidays, caller IDs, campaigns, selections, callbacks.

Pure building blocks the dialing engine reuses live in their own modules and do no I/O:
:mod:`~dialer.campaign.status` (the campaign status machine), :mod:`~dialer.campaign.calendar`
(working day or holiday), :mod:`~dialer.campaign.selection` (selection conditions compiled to SQL)
and :mod:`~dialer.campaign.validation` (intervals, times, numbers, schedules, dial parameters).
"""
