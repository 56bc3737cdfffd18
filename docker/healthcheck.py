"""HEALTHCHECK: exit 0 when the server in this container answers /ready with 200."""
import os
import sys
import urllib.request

url = "http://127.0.0.1:%s/ready" % os.environ.get("PTR_PORT", "8080")
try:
    with urllib.request.urlopen(url, timeout=3) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
