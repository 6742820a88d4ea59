"""The real deployments (``make test-deploy``), left out of ``make test``.

They need what ``scripts/test-deploy.sh`` builds first (Kubernetes binaries under
``~/.cache/kva``), and minutes: ``make test-deploy`` sets ``KVA_TEST_DEPLOY=1``.
"""

import os

collect_ignore_glob = [] if os.environ.get("KVA_TEST_DEPLOY") == "1" else ["test_*.py"]
