"""Signals of the sync engine. Sent after the transaction commits, so receivers
only ever hear of what really happened (and may talk to the outside world).

- ``conflict_detected(sender=Conflict, conflicts=[Conflict, ...])``: a push
  recorded these pending conflicts.
- ``conflict_resolved(sender=Conflict, conflict=Conflict, resolution=str,
  by=User)``: a conflict was resolved through the API or the admin.
"""

from django.dispatch import Signal

conflict_detected = Signal()
conflict_resolved = Signal()
