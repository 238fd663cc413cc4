"""Rasa's command line (`rasa run …`, `rasa shell …`), with skops imported before Rasa.

skops, which Rasa's LogisticRegressionClassifier loads its model with, builds its list of
trusted types when it is imported, looking each numpy ufunc up in every module loaded at
that moment. Rasa imports it only when it loads the model, after TensorFlow: ~6,000 modules
and ~7 CPU-seconds of every start-up. Imported here first, with ~1,400 modules loaded, it
takes ~1 s; the list it builds is the same. scripts/run.sh starts Rasa through this module
(`rasa run` is up in ~7 s instead of ~16 here), and `make train` trains with it.
"""

import skops.io  # noqa: F401  (first, for the reason above)
from rasa.__main__ import main

if __name__ == "__main__":
    main()
