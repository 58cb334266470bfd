"""Trust per cell: calibrated probabilities, conformal prediction sets, unknown-cell scores and
a referral threshold, fitted on held-out cells and saved beside the model.

The core (:mod:`~unihema.trust.state`, :mod:`~unihema.trust.conformal`,
:mod:`~unihema.trust.unknown`, :mod:`~unihema.trust.metrics`) works on tensors of logits and
embeddings and imports nothing above :mod:`unihema.registry` and :mod:`unihema.utils`, so any
layer may use it. :mod:`unihema.benchmark.trust_cells` and :mod:`unihema.benchmark.trust` run a
loaded model over configured data (``unihema trust fit|eval``); docs/trust.md explains the
numbers.
"""

from unihema.trust.state import TRUST_JSON, TRUST_TENSORS, CellTrust, TrustState
from unihema.trust.unknown import UNKNOWN_SCORERS

__all__ = ["CellTrust", "TRUST_JSON", "TRUST_TENSORS", "TrustState", "UNKNOWN_SCORERS"]
