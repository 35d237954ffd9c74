"""Airflow as a Kubernetes platform runs it: the runbook's ``kubectl exec … DagBag()`` and
``kubectl cp /local/dags/`` done through the exec API in the scheduler's pod, with the
pod's own interpreter and configuration; the metadata database and the REST API reached at
the profile's addresses."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path

from drtests.airflow import probe as probe_module
from drtests.airflow.deployment import ProbeResult
from drtests.errors import EnvironmentUnavailable
from drtests.platform.kubernetes import KubernetesPlatform
from drtests.redaction import Redactor

#: the probe module's source, run as ``python -c`` (the pod has Airflow, not drtests)
PROBE_SOURCE = Path(probe_module.__file__).read_text(encoding="utf-8")
#: reads a JSON map of DAG file name → base64 content from stdin (its length in argv[2], so
#: it does not depend on end of input, which the v4 exec protocol cannot send), writes the
#: files that are missing or differ into argv[1] (empty: the DAG folder Airflow is configured
#: with) each by rename, prints their names
SYNC_SOURCE = """
import base64, json, os, sys
folder, size = sys.argv[1], int(sys.argv[2])
if not folder:
    from airflow.configuration import conf
    folder = conf.get("core", "dags_folder")
data = b""
while len(data) < size:
    chunk = sys.stdin.buffer.read(size - len(data))
    if not chunk:
        break
    data += chunk
os.makedirs(folder, exist_ok=True)
copied = []
for name, content in sorted(json.loads(data).items()):
    raw, path = base64.b64decode(content), os.path.join(folder, os.path.basename(name))
    try:
        with open(path, "rb") as f:
            same = f.read() == raw
    except OSError:
        same = False
    if not same:
        with open(path + ".drtests-new", "wb") as f:
            f.write(raw)
        os.replace(path + ".drtests-new", path)
        copied.append(name)
print(json.dumps(copied))
"""


@dataclass
class AirflowInPods:
    """Airflow's interpreter in a Ready pod of ``runs_in`` (the scheduler)."""

    platform: KubernetesPlatform
    runs_in: str
    dsn: str
    api_url: str
    container: str | None = None
    python: str = "python"
    #: where the DAG files go; None: the folder the pod's Airflow is configured with
    dags_folder: str | None = None
    timeout: float = 300.0

    def _redact(self, text: str) -> str:
        password = self.dsn.split("://", 1)[-1].split("@", 1)[0].partition(":")[2]
        return Redactor([self.dsn, password])(text)

    def probe(self) -> ProbeResult:
        """The runbook's ``DagBag()``, the installed migration heads and ``airflow db
        check``, by the pod's Airflow."""
        result = self.platform.exec_in(
            self.runs_in,
            [self.python, "-c", PROBE_SOURCE],
            action="run Airflow's DagBag() and db check in",
            container=self.container,
            timeout=self.timeout,
        )
        out = result.stdout.decode("utf-8", errors="replace")
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if result.returncode != 0 or not lines:
            raise EnvironmentUnavailable(
                f"Airflow probe in pod {result.pod} exited {result.returncode}: "
                f"{self._redact(result.stderr_tail())}"
            )
        return ProbeResult.from_line(lines[-1])

    def sync_dags(self, source: Path) -> list[str]:
        """The runbook's ``kubectl cp /local/dags/ …:/opt/airflow/dags/``: the DAG files
        that are missing or differ; returns their names."""
        files = {
            path.name: base64.b64encode(path.read_bytes()).decode("ascii")
            for path in sorted(source.glob("*.py"))
        }
        payload = json.dumps(files).encode()
        result = self.platform.exec_in(
            self.runs_in,
            [self.python, "-c", SYNC_SOURCE, self.dags_folder or "", str(len(payload))],
            action=f"copy {len(files)} DAG files into the DAG folder of",
            container=self.container,
            stdin=payload,
            timeout=self.timeout,
        )
        out = result.stdout.decode("utf-8", errors="replace").strip().splitlines()
        if result.returncode != 0 or not out:
            raise EnvironmentUnavailable(
                f"DAG sync into pod {result.pod} exited {result.returncode}: "
                f"{self._redact(result.stderr_tail())}"
            )
        return [str(name) for name in json.loads(out[-1])]
