"""What every record of a run carries (machine, versions, command) and how records are written."""
import datetime
import json
import os
import platform
import shlex
import sys


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(command=None):
    """Hardware and software facts: date, command, versions, threads, CPU, device, load."""
    import numpy
    import recbole
    import torch

    import recbole_basrec

    env = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command or " ".join(shlex.quote(a) for a in sys.argv),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "recbole": recbole.__version__,
        "numpy": numpy.__version__,
        "recbole_basrec": recbole_basrec.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    try:
        env["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return env


def rounded(value, digits=5):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


def write_json(record, path, digits=5):
    """Write ``record`` to ``path`` atomically: an interrupted write leaves the old file whole, and
    two processes writing the same file never share a temporary file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(rounded(record, digits) if digits else record, f, indent=2, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)
    return path


def read_json(path, missing=None):
    """The JSON at ``path``; ``missing`` when there is no file (a record not written yet)."""
    if not os.path.isfile(path):
        return missing
    with open(path, encoding="utf-8") as f:
        return json.load(f)
