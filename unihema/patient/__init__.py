"""Patient level: from a patient's cells to one patient embedding, a diagnosis and retrieval.

* :mod:`.features`: cell embeddings of patient bags with a unihema model (cached on disk);
* :mod:`.encoder`: the gated attention-MIL patient encoder, saved as safetensors + JSON;
* :mod:`.train`: its training (diagnosis + contrastive alignment with the findings text);
* :mod:`.probes`: kNN, logistic regression, balanced accuracy, retrieval scores;
* :mod:`.protocol`: the k-fold patient-level protocol and its table;
* :mod:`.cohort`: a cohort folder with a model (protocol run, encoder training, retrieval);
* :mod:`.verdict`: one patient's verdict (``pipe.patient``, ``unihema analyze
  --patient-encoder``).

The package sits above the model, the pipeline, the data and the analysis (it reads a
``SmearAnalysis``) and below the API and the command line. docs/patient.md describes it.
"""

from unihema.patient.encoder import EncoderConfig, PatientEncoder, PatientOutput
from unihema.patient.train import fit_encoder, info_nce

__all__ = ["EncoderConfig", "PatientEncoder", "PatientOutput", "fit_encoder", "info_nce"]
