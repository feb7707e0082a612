"""How long each DAG file takes to import, next to a one-task baseline DAG file (goal: under 0.5 s each).

Each file is imported in a fresh interpreter after ``airflow.sdk`` is already imported (the DAG
processor has Airflow loaded), so the figure is what the file itself costs: its own imports
(include.campaign, pydantic, pyyaml...) and building its DAGs. Heavy libraries (pandas,
great_expectations, scikit-learn) must be imported inside tasks, so they must not show up here.

    python benchmarks/dag_parse.py
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = 3
GOAL_SECONDS = 0.5
PROBE = r"""
import importlib.util, sys, time
import airflow.sdk  # already paid by the DAG processor
path = sys.argv[1]
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
heavy = [name for name in ("pandas", "great_expectations", "sklearn", "nltk", "sacrebleu") if name in sys.modules]
print(f"{elapsed:.4f} {','.join(heavy) or '-'}")
"""
BASELINE = '''
from airflow.sdk import DAG, task
with DAG(dag_id="baseline", schedule=None) as dag:
    @task
    def hello():
        return 1
    hello()
'''


def measure(path: Path, env: dict[str, str]) -> tuple[float, str]:
    times, heavy = [], "-"
    for _ in range(REPEATS):
        out = subprocess.run([sys.executable, "-c", PROBE, str(path)], env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]))
        heavy = out[1]
    return statistics.median(times), heavy


def main() -> int:
    home = tempfile.mkdtemp(prefix="dag-parse-")
    env = dict(os.environ, AIRFLOW_HOME=home, AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"), PYTHONPATH=str(ROOT))
    baseline_file = Path(home) / "baseline_dag.py"
    baseline_file.write_text(BASELINE)
    base, _ = measure(baseline_file, env)
    print(f"{'DAG file':<34} {'import s':>9} {'baseline s':>11} {'heavy modules loaded':>22}  verdict")
    worst = 0.0
    for path in sorted((ROOT / "dags").glob("*.py")):
        seconds, heavy = measure(path, env)
        worst = max(worst, seconds)
        verdict = "ok" if seconds < GOAL_SECONDS and heavy == "-" else "TOO SLOW" if seconds >= GOAL_SECONDS else "heavy import"
        print(f"{path.name:<34} {seconds:>9.3f} {base:>11.3f} {heavy:>22}  {verdict}")
    print(f"median of {REPEATS} fresh interpreters per file; goal < {GOAL_SECONDS} s per file; worst {worst:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
